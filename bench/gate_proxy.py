"""The gate of a training run's checkpoint, as `make model` would ship it, without exporting:
the threshold at the real validation works' 95 % quantile, then the synthetic test glyphs
flagged and every OOD set (synthetic and the validation works' own) caught at it. Use it on
short proxy runs to compare training settings before spending a `make model` on one.

python bench/gate_proxy.py RUN_DIR [RUN_DIR ...] [--data data/glyphs] [--real data/real/vd-sbb]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from corpus.folders import read_named_classes, read_ood_folders
from corpus.load import load_glyph_data
from training.module import JEMModule


def gate(ckpt: Path, data: str, real: Path, target_tpr: float = 0.95) -> dict:
    module = JEMModule.load_from_checkpoint(ckpt, map_location="cpu").eval()
    d = load_glyph_data(data)
    x, y, _ = read_named_classes(real / "val", d.classes, "real val")
    e_real = module.energies(x).numpy()
    threshold = float(np.quantile(e_real, target_tpr))
    with torch.no_grad():
        pred = torch.cat([module.net.get_logits(x[i : i + 512]).argmax(1) for i in range(0, len(x), 512)])

    def caught(images: torch.Tensor) -> float:
        return round(float(np.mean(module.energies(images).numpy() > threshold)), 4)

    return {
        "run": str(ckpt.parents[1]),
        "config": {
            k: module.hparams[k]
            for k in (
                "mode",
                "init_real_share",
                "oe_m_out",
                "oe_weight",
                "px_weight",
                "px_plain",
                "sam_rho",
                "generative_warmup_epochs",
            )
            if k in module.hparams
        },
        "threshold": round(threshold, 4),
        "real val accuracy": round(float((pred == y).float().mean()), 4),
        "synthetic test flagged": caught(d.splits["test"][0]),
        "real val caught": {k: caught(v) for k, v in read_ood_folders(real / "val").items()},
        "synthetic caught": {k: caught(v) for k, v in d.ood.items()},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--data", default="data/glyphs")
    p.add_argument("--real", default="data/real/vd-sbb", type=Path)
    args = p.parse_args()
    for run in args.runs:
        print(json.dumps(gate(run / "checkpoints" / "last.ckpt", args.data, args.real)))


if __name__ == "__main__":
    main()
