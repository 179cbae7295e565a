"""The exported network on ONNX Runtime: the one place that opens a session and runs it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

OUTPUTS = ["logits", "energy"]


class OnnxModel:
    """`OnnxModel(path).run(x) -> (logits [N, C], energy [N])` for model inputs [N, 1, 56, 56].

    CUDA first when onnxruntime-gpu and a GPU are there (unless `cpu_only`), else CPU.

    Examples
    --------
    >>> import numpy as np
    >>> from glyphgate.core.contract.artifacts import SHIPPED
    >>> logits, energy = OnnxModel(SHIPPED / "model.onnx", threads=1).run(np.zeros((3, 1, 56, 56), np.float32))
    >>> logits.shape, energy.shape
    ((3, 42), (3,))
    """

    def __init__(self, path: str | Path, threads: int | None = None, cpu_only: bool = False):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        wanted = (
            ["CPUExecutionProvider"]
            if cpu_only
            else [
                p
                for p in ("CUDAExecutionProvider", "CPUExecutionProvider")
                if p in ort.get_available_providers()
            ]
        )
        self.session = ort.InferenceSession(str(path), opts, providers=wanted)
        self.provider = self.session.get_providers()[0]
        self.version = ort.__version__

    def run(self, x: np.ndarray, batch: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(logits, energy); `batch` splits a large input into runs of that size."""
        x = np.ascontiguousarray(x, np.float32)
        if batch is None or len(x) <= batch:
            logits, energy = self.session.run(OUTPUTS, {"image": x})
            return logits, energy
        parts = [self.session.run(OUTPUTS, {"image": x[i : i + batch]}) for i in range(0, len(x), batch)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
