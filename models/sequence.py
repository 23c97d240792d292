"""The next-interest network (PyTorch, training only) and its ONNX export; the job needs only onnxruntime."""
from __future__ import annotations

from pathlib import Path

import torch


class NextInterest(torch.nn.Module):
    """Embedding -> GRU -> linear -> softmax over categories; index 0 of the input is padding."""

    def __init__(self, n_categories: int, dim: int = 16, hidden: int = 32):
        super().__init__()
        self.hidden = hidden
        self.embed = torch.nn.Embedding(n_categories + 1, dim, padding_idx=0)
        self.gru = torch.nn.GRU(dim, hidden, batch_first=True)
        self.out = torch.nn.Linear(hidden, n_categories)

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        h0 = torch.zeros(1, seq.shape[0], self.hidden, dtype=torch.float32)
        h, _ = self.gru(self.embed(seq), h0)
        return torch.softmax(self.out(h[:, -1]), dim=-1)


def export_onnx(model: NextInterest, path: Path, seq_len: int) -> None:
    import warnings

    model.eval()
    example = torch.zeros(2, seq_len, dtype=torch.long)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), str(path), input_names=["sequence"], output_names=["probabilities"],
                          dynamic_axes={"sequence": {0: "batch"}, "probabilities": {0: "batch"}}, opset_version=17,
                          dynamo=False)
