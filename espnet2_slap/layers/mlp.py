"""Multi-layer perceptrons for projectors and predictors."""

from typing import List

import torch
from typeguard import typechecked


class MLP(torch.nn.Sequential):
    """(B, dims[0]) -> (B, dims[-1]): Linear layers with [BatchNorm1d,] ReLU [, Dropout] between them.

    Projectors are ``MLP([in, 512, 512])`` and predictors ``MLP([512, 4096, 512])``. ``bias_before_batchnorm``
    false gives a hidden Linear followed by BatchNorm no bias (BatchNorm's own shift replaces it), as the SLAP
    reference's text projector. Without BatchNorm a two-layer MLP is LAION-CLAP's head: ``0`` Linear, ``1`` ReLU,
    ``2`` Linear.
    """

    @typechecked
    def __init__(
        self, dims: List[int], batchnorm: bool = False, dropout: float = 0.0, bias_before_batchnorm: bool = True
    ):
        if len(dims) < 2:
            raise ValueError(f"MLP needs at least input and output sizes, got dims={dims}")
        layers: List[torch.nn.Module] = []
        for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
            hidden = i < len(dims) - 2
            layers.append(torch.nn.Linear(d_in, d_out, bias=not (hidden and batchnorm and not bias_before_batchnorm)))
            if hidden:
                if batchnorm:
                    layers.append(torch.nn.BatchNorm1d(d_out))
                layers.append(torch.nn.ReLU(inplace=True))
                if dropout > 0:
                    layers.append(torch.nn.Dropout(dropout))
        super().__init__(*layers)
