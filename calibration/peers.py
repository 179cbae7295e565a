"""`glyphgate peers`: the JEM's gate beside the scores a user could pick instead, on the same
crops of real pages. One row per score: the JEM's energy (the gate) and -max-softmax, the
classifier baseline's energy (Liu et al. 2020) and -max-softmax, Mahalanobis and k-nearest-
neighbour scores on each network's penultimate features (pytorch-ood; fitted on the training
glyphs only), and Tesseract reading each crop as one character. Columns: accuracy, AUROC per
real kind, and the share of each kind caught at the score's own threshold that flags 5 % of
that collection's glyphs (so every row is compared at the same false-alarm rate).
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from calibration import report as rep
from calibration import tesseract
from calibration.metrics import caught, fit_threshold, ood_metrics
from calibration.scores import all_scores
from corpus.folders import named_class_samples, ood_files, read_named_classes, read_ood_folders
from corpus.load import load_glyph_data, load_real_splits
from glyphgate.core.contract.artifacts import (
    CLASSES_JSON,
    MODEL_ONNX,
    PEERS_JSON,
    load_calibration,
    load_torch_model,
    read_json,
)
from glyphgate.core.contract.scores import SCORES
from glyphgate.core.errors import DataError
from glyphgate.core.scoring.onnx_session import OnnxModel

FLAG_SHARE = 0.05  # every row's threshold flags this share of the collection's glyphs
KNN_K = 50  # the KNN paper's choice for CIFAR-10 (Sun et al. 2022), pytorch-ood's default
NAMES = {"jem": "JEM", "icd": "JEM (icd)", "classifier": "baseline", "ebm": "EBM"}


class Network:
    """One exported network: its ONNX outputs and its torch penultimate features."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.torch = load_torch_model(folder)
        self.runner = OnnxModel(folder / MODEL_ONNX, cpu_only=True)
        self.name = NAMES.get(self.torch.mode, self.torch.mode)

    @torch.no_grad()
    def features(self, x: np.ndarray, batch: int = 512) -> torch.Tensor:
        xt = torch.as_tensor(x)
        return torch.cat([self.torch.net.features(xt[i : i + batch]) for i in range(0, len(xt), batch)])


def fit_feature_detectors(net: Network, x: np.ndarray, y: np.ndarray) -> dict:
    from pytorch_ood.detector import KNN, Mahalanobis

    z = net.features(x)
    labels = torch.as_tensor(y)
    return {
        f"{net.name} Mahalanobis": Mahalanobis(None).fit_features(z, labels),
        f"{net.name} kNN (k = {KNN_K})": KNN(None, k=KNN_K, algorithm="brute").fit_features(z, labels),
    }


def network_rows(net: Network, detectors: dict, x: np.ndarray, ood: dict) -> dict:
    """{row: (predicted labels, glyph scores, {kind: scores})} for one network, energy first."""
    everything = {"": x, **ood}
    scores, pred = {}, None
    for k, v in everything.items():
        logits, energy = net.runner.run(v, batch=256)
        pred = logits.argmax(1) if k == "" else pred
        scores[k] = all_scores(logits, energy)
        z = net.features(v)  # once per set, shared by the feature detectors
        scores[k].update({row: det.predict_features(z).double().numpy() for row, det in detectors.items()})
    names = {f: f"{net.name} {SCORES[f].label}" for f in SCORES if SCORES[f].peer}
    names.update({row: row for row in detectors})
    return {row: (pred, scores[""][f], {k: scores[k][f] for k in ood}) for f, row in names.items()}


def table_row(pred: np.ndarray | None, y: np.ndarray, s_id: np.ndarray, s_ood: dict) -> dict:
    threshold, kept = fit_threshold(s_id, 1 - FLAG_SHARE)
    return {
        "accuracy": None if pred is None else float(np.mean(pred == y)),
        "threshold": threshold,
        "flagged": 1 - kept,
        "auroc": {k: ood_metrics(s_id, s)["auroc"] for k, s in s_ood.items()},
        "caught": {k: caught(s, threshold) for k, s in s_ood.items()},
    }


def peers(
    artifacts: str | Path,
    baseline: str | Path,
    data: str | Path,
    real: str | Path | None,
    collections: dict[str, str | Path],
    ocr: bool = True,
    jobs: int = 2,
    log=print,
) -> dict:
    folder, bfolder = Path(artifacts), Path(baseline)
    classes = read_json(folder / CLASSES_JSON)
    if read_json(bfolder / CLASSES_JSON) != classes:
        raise DataError(f"{bfolder}: its classes differ from {folder / CLASSES_JSON}")
    for f in (folder, bfolder):
        load_calibration(f)  # both must be calibrated for the models they hold
    nets = [Network(folder), Network(bfolder)]

    # the training glyphs: the corpus' training split plus the real training works
    t0 = time.perf_counter()
    corpus = load_glyph_data(data)
    x_fit, y_fit = corpus.splits["train"]
    if real is not None:
        xr, yr = load_real_splits(real, classes)["train"]
        x_fit, y_fit = torch.cat([x_fit, xr]), torch.cat([y_fit, yr])
    x_fit, y_fit = x_fit.numpy(), y_fit.numpy()
    detectors = {id(n): fit_feature_detectors(n, x_fit, y_fit) for n in nets}
    log(f"fitted Mahalanobis and kNN on {len(y_fit)} training glyphs in {time.perf_counter() - t0:.1f} s")

    why_not = tesseract.unavailable() if ocr else "left out (--no-ocr)"
    out = {
        "flag_share": FLAG_SHARE,
        "fit": {"n": int(len(y_fit)), "data": [str(data), *([f"{real}/train"] if real else [])]},
        "models": {n.name: {"artifacts": str(n.folder), "mode": n.torch.mode} for n in nets},
        "ocr": {"skipped": why_not} if why_not else {"engine": tesseract.version(), "lang": tesseract.LANG},
        "collections": {},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if why_not:
        log(f"Tesseract rows skipped: {why_not}")
    for name, root in collections.items():
        root = Path(root)
        t0 = time.perf_counter()
        x, y, _ = read_named_classes(root, classes, f"{name} glyphs")
        if len(y) == 0:
            raise DataError(f"{root}: no glyphs of the model's classes")
        x, y = x.numpy(), y.numpy()
        ood = {k: v.numpy() for k, v in read_ood_folders(root).items()}
        rows = {}
        for n in nets:
            rows.update(network_rows(n, detectors[id(n)], x, ood))
        if not why_not:
            files = [p for p, _ in named_class_samples(root, classes)]
            kinds = ood_files(root)
            every = files + [f for k in kinds for f in kinds[k]]
            labels, score = tesseract.read_crops(every, classes, jobs=jobs)
            s_ood, at = {}, len(files)
            for k, fs in kinds.items():
                s_ood[k] = score[at : at + len(fs)]
                at += len(fs)
            rows[f"Tesseract {tesseract.LANG} 100 − confidence"] = (
                labels[: len(files)],
                score[: len(files)],
                s_ood,
            )
        out["collections"][name] = {
            "data": str(root),
            "n_glyphs": int(len(y)),
            "n_ood": {k: int(len(v)) for k, v in ood.items()},
            "rows": {r: table_row(p, y, s, so) for r, (p, s, so) in rows.items()},
        }
        log(
            f"{name}: {len(rows)} rows on {len(y)} glyphs and {sum(map(len, ood.values()))} non-glyphs in {time.perf_counter() - t0:.1f} s"
        )
    out["beaten"] = beaten(out)
    (folder / PEERS_JSON).write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    rep.rerender_index(folder, load_calibration(folder))
    return out


def gate_row(table: dict) -> str:
    """The shipped model's energy: the first row peers() writes."""
    return next(iter(table["rows"]))


def beaten(out: dict, kinds=("words", "fragments", "other_symbols")) -> list[dict]:
    """Every (collection, kind, peer) where a peer's AUROC is above the gate's."""
    found = []
    for name, table in out["collections"].items():
        gate = table["rows"][gate_row(table)]
        for row, r in table["rows"].items():
            for k in kinds:
                if k in r["auroc"] and r["auroc"][k] > gate["auroc"][k]:
                    found.append(
                        {
                            "collection": name,
                            "kind": k,
                            "peer": row,
                            "peer_auroc": r["auroc"][k],
                            "gate_auroc": gate["auroc"][k],
                            "by": r["auroc"][k] - gate["auroc"][k],
                        }
                    )
    return found
