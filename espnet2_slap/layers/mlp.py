"""Multi-layer perceptrons for projectors and predictors."""

from typing import List

import torch
from typeguard import typechecked


class MLP(torch.nn.Sequential):
    """(B, dims[0]) -> (B, dims[-1]): Linear layers with [BatchNorm1d,] ReLU [, Dropout] between them.

    Projectors are ``MLP([in, 512, 512])`` and predictors ``MLP([512, 4096, 512])``.
    """

    @typechecked
    def __init__(self, dims: List[int], batchnorm: bool = False, dropout: float = 0.0):
        if len(dims) < 2:
            raise ValueError(f"MLP needs at least input and output sizes, got dims={dims}")
        layers: List[torch.nn.Module] = []
        for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
            layers.append(torch.nn.Linear(d_in, d_out))
            if i < len(dims) - 2:
                if batchnorm:
                    layers.append(torch.nn.BatchNorm1d(d_out))
                layers.append(torch.nn.ReLU(inplace=True))
                if dropout > 0:
                    layers.append(torch.nn.Dropout(dropout))
        super().__init__(*layers)
