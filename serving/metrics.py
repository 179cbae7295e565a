"""What an archive operator watches on /metrics, beside BentoML's request counters: how many
scans are flagged (the flag rate over time is `rate(flagged) / rate(all)`), which glyphs
arrive, and where their energies fall relative to the threshold, so a drift in the
collection shows before the flag rate moves."""

from __future__ import annotations

import bentoml

# Bucket edges relative to the threshold, in energy units: finer near it, where a drifting
# collection first shows.
OFFSETS = (-8.0, -4.0, -3.0, -2.0, -1.5, -1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


class GateMetrics:
    def __init__(self, threshold: float):
        # bentoml.metrics, not prometheus_client: it sets up the multiprocess registry that
        # lets both API workers report into one /metrics.
        self.scans = bentoml.metrics.Counter(
            name="glyphgate_scans",
            documentation="Scans scored, by verdict (glyph or flagged)",
            labelnames=["verdict"],
        )
        self.by_class = bentoml.metrics.Counter(
            name="glyphgate_scans_by_class",
            documentation="Classified scans by predicted label",
            labelnames=["label"],
        )
        self.energy = bentoml.metrics.Histogram(
            name="glyphgate_energy",
            documentation=f"Energy of scored scans (flagged above {threshold:.3f})",
            buckets=[round(threshold + d, 3) for d in OFFSETS],
        )
        self.rejected = bentoml.metrics.Counter(
            name="glyphgate_rejected_uploads", documentation="Uploads refused as unusable images"
        )

    def record(self, results: list[dict]) -> None:
        for r in results:
            self.scans.labels(verdict="flagged" if r["is_ood"] else "glyph").inc()
            self.energy.observe(r["energy"])
            if "label" in r:
                self.by_class.labels(label=r["label"]).inc()
