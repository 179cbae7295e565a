"""Every training hyperparameter in one place; each run saves its own copy as config.json."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from glyphgate.core.errors import ConfigError, DataError
from glyphgate.core.model.modes import MODES

# Lightning's names for the strategies a run is tested under (tests/test_ddp.py). "ddp" re-runs
# `glyphgate train` once per extra rank, so every rank is a process of the same command; under
# "ddp_spawn" the launching process is none of the ranks and what they held (metrics.json's
# per-rank record) never reaches it, and sharded strategies (FSDP, DeepSpeed) would split the
# per-rank replay buffer the checkpoint keeps.
STRATEGIES = ("auto", "ddp")


@dataclasses.dataclass
class TrainConfig:
    mode: str = "jem"
    width: int = 16
    batch_size: int = 64
    max_epochs: int = 45
    max_time: str | None = "00:00:29:00"  # DD:HH:MM:SS wall-clock cap (the 30-minute CPU budget)
    lr: float = 1e-3
    weight_decay: float = 0.0
    # sharpness-aware minimisation (Foret et al. 2021), as SADA-JEM trains: each step takes the
    # gradient at the weights moved sam_rho along the normalised gradient (one more forward and
    # backward of the loss, the SGLD negatives reused); 0 = the plain optimiser step
    sam_rho: float = 0.0
    warmup_steps: int = 200
    seed: int = 0
    # p(x) term (Eq. 3 + L2 on both energies)
    px_weight: float = 1.0
    # the p(x) and exposure terms ramp in linearly over the first epochs (0: full from the
    # start), so cross-entropy shapes the features before the energy terms pull on them. At
    # full weight from step 0 the exposure hinge (about 95 at the start, against 3.7 of
    # cross-entropy) sets the early features; 6-epoch proxies with a 2-epoch ramp: real val
    # accuracy 0.776 -> 0.794, real val fragments caught 78 % -> 89 % (training/recipes_tried.json)
    generative_warmup_epochs: float = 3.0
    l2_alpha: float = 0.1
    # SGLD
    sgld_steps: int = 5
    sgld_step_size: float = 1.0
    sgld_noise: float = 0.01
    sgld_grad_clamp: float | None = 0.03
    buffer_size: int = 4096
    reinit_freq: float = 0.05
    reinit_noise: float = 0.5  # of those restarts, the share from smooth noise instead of the init
    init: str = "informative"  # or "noise"
    init_rank: int = 16
    # share of real training glyphs in the images the informative init is fitted on (0: the corpus
    # alone, 1: the real glyphs alone); with --real only. 6-epoch proxies (bench/gate_proxy.py):
    # 0 flags 78 % of synthetic test glyphs at the real-fitted threshold, 0.4 26 %, 0.6-0.7 4-10 %,
    # 1.0 0.1 % but then real non-glyphs pass; see the README.
    init_real_share: float = 0.6
    # data: scan augmentations drawn per sample (corpus/augment.py), real glyphs mixed in at a
    # fixed share of every epoch (`glyphgate train --real`), and outlier exposure
    augment: bool = True
    # SADA-JEM's split (Yang, Su, Ji 2023): the scan augmentations feed the cross-entropy and
    # exposure terms only; p(x) learns from the plain images, so contrastive divergence does not
    # spend capacity on modelling the augmentations' own artefacts.
    px_plain: bool = False
    real_dir: str | None = None
    real_share: float = 0.4
    # Outlier exposure (Liu et al. 2020, energy-based OOD detection): squared hinges push ID
    # energies below oe_m_in and negatives above oe_m_out. Exposure kinds are synthetic OOD sets
    # that stand for what a page segmenter emits besides glyphs (touching pairs ~ words, half
    # glyphs ~ fragments, digits/punctuation ~ other symbols, blank paper, ink blots), plus the
    # real training works' own ood/ folders; every other OOD kind is an evaluation kind, never
    # seen in training. Kinds missing from a data folder are skipped.
    # The non-glyphs of corpus/synth/ood_page.py split the same way: solid shapes, rules and
    # handwriting are exposure kinds; stamps, ornaments, page edges and bleed-through are
    # evaluation kinds, as are Greek/Cyrillic, foreign capitals and rotated/mirrored glyphs.
    exposure_kinds: tuple[str, ...] = (
        "touching_pairs",
        "half_glyphs",
        "digits_punct",
        "blank_paper",
        "ink_blots",
        "solid_shapes",
        "rules_lines",
        "handwriting",
    )
    exposure_share: float = 0.125
    # Share of the exposure draw taken from the synthetic kinds (the rest from the real works'
    # non-glyphs); None pools them by size (4,800 synthetic beside 24,500 real negatives). 6-epoch
    # proxies at 0.3-0.5 caught more synthetic solid shapes and rules but 6-12 points fewer real
    # validation fragments (recipes_tried.json), so the default stays pooled.
    exposure_synthetic_share: float | None = None
    oe_weight: float = 0.1
    oe_m_in: float = -2.0
    # well above where real glyphs end: with 0.5 the margin sat below the real-fitted threshold,
    # so a negative could meet it and still pass (proxies: real fragments caught 41 % at 2.5,
    # 60 % at 4, 78 % at 6)
    oe_m_out: float = 6.0
    # fine-tuning: start from an exported model.pt (its weights, its 42-way head, its informative
    # init for the classes the new data lacks); `glyphgate train --init`
    init_from: str | None = None
    # icd mode: improved contrastive divergence (Du et al. 2021) on top of jem. The KL term
    # L_KL = E_theta-frozen(x~) - entropy_weight * H_nn(x~), where x~ are `icd_kl_batch` of the
    # sampler's outputs taken `icd_kl_steps` more SGLD steps with the graph kept, so its gradient
    # reaches theta through the sampler only; H_nn is the nearest-neighbour entropy estimate in
    # pixel space over that batch. Augmentation transitions (glyphgate/core/transitions.py):
    # buffer chains start from a transformed state; generation jumps every
    # `icd_transition_every` steps.
    icd_kl_weight: float = 1.0
    icd_kl_steps: int = 1
    icd_kl_batch: int = 16
    icd_entropy_weight: float = 0.1
    icd_transitions: bool = True
    icd_transition_every: int = 32
    # DataLoader worker processes; None: one for the classifier on a machine of 2 or more cores
    # (one process), its step on the cores left, since the step is lighter than the augmentation
    # that feeds it and the two then overlap (2 epochs in 22 s instead of 32 on 2 cores); none
    # for the SGLD modes, whose step already keeps every core busy
    loader_workers: int | None = None
    # validation
    ood_val_set: str = "ood_tb"
    divergence_limit: float = 1e4  # |energy| beyond this stops the run
    accelerator: str = "auto"
    # processes on this machine (`glyphgate train --devices N`): each takes a shard of every epoch
    # and keeps its own replay buffer; DDP averages the gradients, so the weights stay one model
    devices: int = 1
    # how the processes run: "auto" (one process, or DDP for devices > 1) or "ddp" (Lightning
    # re-runs the command once per extra rank; gloo on CPU, NCCL on GPUs)
    strategy: str = "auto"
    # torch's deterministic algorithms: same seed, same weights (the tests' tiny runs use it; a
    # long run leaves it off, since some CUDA kernels have no deterministic form)
    deterministic: bool = False

    def data_workers(self) -> int:
        """DataLoader worker processes for this run: loader_workers, or the mode's default."""
        if self.loader_workers is not None:
            return self.loader_workers
        light_step = self.mode == "classifier" and self.augment and self.devices == 1
        return 1 if light_step and (os.cpu_count() or 1) >= 2 else 0

    def __post_init__(self):
        if self.mode not in MODES:
            raise ConfigError(f"mode {self.mode!r}: expected one of {', '.join(MODES)}")
        self.exposure_kinds = tuple(self.exposure_kinds or ())
        if not 0 <= self.init_real_share <= 1:
            raise ConfigError(f"init_real_share {self.init_real_share}: expected a value in [0, 1]")
        if not 0 <= self.real_share < 1 or not 0 <= self.exposure_share < 1:
            raise ConfigError("real_share and exposure_share: expected values in [0, 1)")
        if self.loader_workers is not None and self.loader_workers < 0:
            raise ConfigError(f"loader_workers {self.loader_workers}: expected a count >= 0")
        share = self.exposure_synthetic_share
        if share is not None and not 0 <= share <= 1:
            raise ConfigError(f"exposure_synthetic_share {share}: expected a value in [0, 1]")
        if self.generative_warmup_epochs < 0:
            raise ConfigError(f"generative_warmup_epochs {self.generative_warmup_epochs}: expected >= 0")
        if self.sam_rho < 0:
            raise ConfigError(f"sam_rho {self.sam_rho}: expected a radius >= 0")
        if self.init not in ("informative", "noise"):
            raise ConfigError(f"init {self.init!r}: expected 'informative' or 'noise'")
        if self.devices < 1:
            raise ConfigError(f"devices {self.devices}: expected 1 or more processes")
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"strategy {self.strategy!r}: expected one of {', '.join(STRATEGIES)}")

    @classmethod
    def from_file(cls, path: str | Path, **overrides) -> "TrainConfig":
        path = Path(path)
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DataError(f"{path}: config file not found") from None
        except json.JSONDecodeError as e:
            raise DataError(f"{path}: not valid JSON ({e})") from None
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{path}: unknown setting(s) {', '.join(unknown)}")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def sampler_kwargs(self, chains: str = "persistent") -> dict:
        """This run's SGLD settings, built once for both users: "persistent" for training's
        buffer chains (restarts, transitions from the start), "fresh" for what model.pt keeps
        to sample an export from new chains (/generate, `glyphgate generate`)."""
        kw = dict(
            steps=self.sgld_steps,
            step_size=self.sgld_step_size,
            noise=self.sgld_noise,
            grad_clamp=self.sgld_grad_clamp,
        )
        if self.mode == "icd":  # sampling keeps the augmentation transitions it was trained with
            kw["transition_every"] = self.icd_transition_every
        if chains == "persistent":
            kw.update(reinit=self.reinit_freq, reinit_noise=self.reinit_noise)
            if self.mode == "icd":
                kw["transition_start"] = self.icd_transitions
        return kw

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(dataclasses.asdict(self), indent=2) + "\n", encoding="utf-8")
