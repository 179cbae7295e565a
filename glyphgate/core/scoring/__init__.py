"""The gate: ONNX Runtime scoring, the score registry, verdicts and p-values."""
