"""`glyphgate export`."""

from __future__ import annotations

import json


def add_export_arguments(p):
    p.add_argument("--ckpt", required=True, help="checkpoint (.ckpt) from `glyphgate train`")
    p.add_argument(
        "--out", required=True, help="artifacts folder to write (model.onnx, model.pt, classes.json)"
    )


def export(args) -> int:
    from training.export import export as run_export

    result = run_export(args.ckpt, args.out)
    print(json.dumps(result, indent=2))
    return 0
