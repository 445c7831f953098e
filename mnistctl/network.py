"""The CNN of the original recipe, as a plain nn.Module (the LightningModule in model.py trains it).

python -c "import torch; from mnistctl.network import CNN; print(CNN()(torch.zeros(2, 1, 28, 28)).shape)"
"""

from __future__ import annotations

import torch
from torch import nn

from mnistctl.dropout import FastDropout


class CNN(nn.Module):
    """Three 5x5 convolutions, two max-pools with dropout, one linear layer; Kaiming-initialised.

    Dropout is `mnistctl.dropout.FastDropout`: torch's semantics, a cheaper mask on CPU.

    Args:
        num_classes: output logits.
        dropout_ratio: dropout probability after each pooled convolution, in [0, 1).
    """

    def __init__(self, num_classes: int = 10, dropout_ratio: float = 0.25) -> None:
        super().__init__()
        # The recipe's conv-ReLU-pool, run as conv-pool-ReLU: ReLU and max-pooling commute exactly (ReLU keeps
        # order), so every output is bit for bit the same and ReLU sees a quarter of the values. Module indices
        # are those of the recipe's order (convolutions at 0, 2, 6), so checkpoints saved before load unchanged.
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=5),  # (B, 1, 28, 28) -> (B, 16, 24, 24)
            nn.ReLU(),
            nn.Conv2d(16, 32, kernel_size=5),  # -> (B, 32, 20, 20)
            nn.MaxPool2d(2),  # -> (B, 32, 10, 10)
            nn.ReLU(),
            FastDropout(dropout_ratio),
            nn.Conv2d(32, 64, kernel_size=5),  # -> (B, 64, 6, 6)
            nn.MaxPool2d(2),  # -> (B, 64, 3, 3)
            nn.ReLU(),
            FastDropout(dropout_ratio),
        )
        self.classifier = nn.Linear(64 * 3 * 3, num_classes)  # (B, 576) -> (B, 10)
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))
