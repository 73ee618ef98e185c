"""MLP probe on frozen representations: one 512-unit ReLU hidden layer, Adam, early stopping on validation loss.

Single-label: cross-entropy, accuracy. Multi-label: binary cross-entropy (only known labels count when a mask is
given), macro ROC-AUC / mAP / mAR as in zero-shot. Trained on ``device`` (default the CPU), seeded: the same inputs
on the same device give the same probe.
"""

import copy
from typing import Dict, Optional, Union

import numpy as np
import torch
from typeguard import typechecked

from espnet2_slap.layers.mlp import MLP
from espnet2_slap.metrics.zeroshot import accuracy, multilabel_metrics


class MLPProbe:
    """Fits ``MLP([dim, hidden, num_classes])`` on (N, dim) features; ``scores`` gives (N, num_classes) logits."""

    @typechecked
    def __init__(
        self,
        dim: int,
        num_classes: int,
        multi_label: bool = False,
        hidden: int = 512,
        lr: float = 1e-3,
        batch_size: int = 64,
        max_epochs: int = 200,
        patience: int = 10,
        seed: int = 0,
        device: Union[str, torch.device] = "cpu",
    ):
        torch.manual_seed(seed)
        self.device = torch.device(device)
        self.net = MLP([dim, hidden, num_classes]).to(self.device)
        self.multi_label, self.lr, self.batch_size = multi_label, lr, batch_size
        self.max_epochs, self.patience, self.seed = max_epochs, patience, seed
        self.epochs_run = self.best_epoch = 0

    def _loss(self, logits: torch.Tensor, targets: torch.Tensor, known: Optional[torch.Tensor]) -> torch.Tensor:
        if not self.multi_label:
            return torch.nn.functional.cross_entropy(logits, targets.long())
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets.float(), reduction="none")
        return loss.mean() if known is None else (loss * known).sum() / known.sum().clamp_min(1)

    def fit(
        self,
        x_train: np.ndarray,
        y_train: np.ndarray,
        x_valid: np.ndarray,
        y_valid: np.ndarray,
        mask_train: Optional[np.ndarray] = None,
        mask_valid: Optional[np.ndarray] = None,
    ) -> "MLPProbe":
        """Adam on mini-batches; after each epoch the validation loss; stop after ``patience`` epochs without a
        new best and keep the best epoch's weights. y: (N,) class indices or (N, C) {0,1}; masks (N, C) known."""
        tensors = [
            torch.as_tensor(np.asarray(a), dtype=torch.float32, device=self.device) if a is not None else None
            for a in (x_train, y_train, x_valid, y_valid, mask_train, mask_valid)
        ]
        x_train, y_train, x_valid, y_valid, mask_train, mask_valid = tensors
        optimizer = torch.optim.Adam(self.net.parameters(), lr=self.lr)
        generator = torch.Generator().manual_seed(self.seed)
        best_loss, best_state, waited = float("inf"), None, 0
        for epoch in range(1, self.max_epochs + 1):
            self.net.train()
            for rows in torch.randperm(len(x_train), generator=generator).to(self.device).split(self.batch_size):
                known = None if mask_train is None else mask_train[rows]
                loss = self._loss(self.net(x_train[rows]), y_train[rows], known)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            self.net.eval()
            with torch.no_grad():
                valid_loss = self._loss(self.net(x_valid), y_valid, mask_valid).item()
            self.epochs_run = epoch
            if valid_loss < best_loss:
                best_loss, best_state, waited = valid_loss, copy.deepcopy(self.net.state_dict()), 0
                self.best_epoch = epoch
            else:
                waited += 1
                if waited >= self.patience:
                    break
        self.net.load_state_dict(best_state)
        return self

    @torch.no_grad()
    def scores(self, x: np.ndarray) -> np.ndarray:
        """(N, dim) -> (N, num_classes) logits."""
        self.net.eval()
        return self.net(torch.as_tensor(np.asarray(x), dtype=torch.float32, device=self.device)).cpu().numpy()

    def evaluate(self, x: np.ndarray, y: np.ndarray, mask: Optional[np.ndarray] = None) -> Dict[str, float]:
        """Accuracy (single-label) or ROC-AUC / mAP / mAR (multi-label) of the probe on (x, y), in %."""
        scores = self.scores(x)
        return multilabel_metrics(scores, np.asarray(y), mask) if self.multi_label else accuracy(scores, y)
