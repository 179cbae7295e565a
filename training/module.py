"""JEMModule: Eq. 7 training (log q(x) by contrastive divergence + log q(y|x) by cross-entropy)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from glyphgate.core.contract.scores import id_vs_ood
from glyphgate.core.errors import DivergenceError
from glyphgate.core.model.modes import JOINT
from glyphgate.core.model.net import EnergyCNN
from glyphgate.core.model.sampler import InformativeInit, SGLDSampler
from training.checkpoint import restore_rank_chains, store_rank_chains
from training.config import TrainConfig
from training.replay import ReplayBuffer


def energy_auroc(e_id: torch.Tensor, e_ood: torch.Tensor, nan_as: float = float("nan")) -> float:
    """AUROC of separating OOD (positive) from ID by energy; higher energy = more OOD."""
    scores, is_ood = id_vs_ood(e_id.cpu().numpy(), e_ood.cpu().numpy())
    if not np.isfinite(scores).all() or len(set(is_ood)) < 2:
        return nan_as
    return float(roc_auc_score(is_ood, scores))  # scikit-learn, as every AUROC of calibration


def mix_for_init(x, y, xr, yr, share: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The corpus and a seeded draw of real glyphs, real at `share` of the whole (1: real alone)."""
    if share >= 1:
        return xr, yr
    n = min(len(xr), int(len(x) * share / (1 - share)))
    pick = torch.randperm(len(xr), generator=torch.Generator().manual_seed(seed))[:n]
    return torch.cat([x, xr[pick]]), torch.cat([y, yr[pick]])


def rank_seed(seed: int, rank: int) -> int:
    """A seed of its own for every (run seed, rank) pair."""
    return int(np.random.SeedSequence([seed, rank]).generate_state(1)[0])


class JEMModule(pl.LightningModule):
    def __init__(self, num_classes: int, classes: list[str] | None = None, **config):
        super().__init__()
        self.cfg = TrainConfig(**config)
        self.save_hyperparameters(
            {"num_classes": num_classes, "classes": classes, **dataclasses.asdict(self.cfg)}
        )
        self.classes = classes or [str(i) for i in range(num_classes)]
        self.net = EnergyCNN(1 if self.cfg.mode == "ebm" else num_classes, self.cfg.width)
        self.init = InformativeInit(num_classes, self.cfg.init_rank)
        self.buffer = ReplayBuffer(self.cfg.buffer_size)
        self._val_energy: dict[int, list[torch.Tensor]] = {0: [], 1: []}  # ID, OOD
        # SAM needs two backward passes per step, so it steps the optimiser itself
        self.automatic_optimization = self.cfg.sam_rho <= 0

    # -- the model and its sampler ---------------------------------------------------------
    def forward(self, x, y=None):
        return self.net(x, y)

    def sampler(self, **overrides) -> SGLDSampler:
        kw = {**self.cfg.sampler_kwargs("persistent"), **overrides}
        init = self.init if self.cfg.init == "informative" else None
        return SGLDSampler(self.net, self.hparams.num_classes, buffer=self.buffer, init=init, **kw)

    def setup(self, stage: str) -> None:
        dm = getattr(self.trainer, "datamodule", None)
        if stage != "fit":
            return
        fitted_now = False
        if dm is not None and not bool(self.init.fitted) and self.cfg.init == "informative":
            x, y = dm.data.splits["train"]
            share = self.cfg.init_real_share
            if "train" in dm.real and share > 0:
                # The chains must start near both populations the model is trained on: an init
                # fitted on the corpus alone makes the negatives look synthetic, so CD pushes
                # synthetic glyphs' energy up and real ones' down (3.3 nats apart at the median
                # after 6 epochs, against 0.9 with the real glyphs at their training share).
                x, y = mix_for_init(x, y, *dm.real["train"], share, self.cfg.seed)
            # Fitted before the ranks' random streams part, so every rank holds the same init
            # (the one the checkpoint and the export keep).
            self.init.fit(x, y)
            fitted_now = True
        if self.trainer.world_size > 1:
            # pl.seed_everything gave every rank the same stream: the chains, their SGLD noise
            # and restarts would repeat each other's. One stream per (seed, rank) from here on.
            torch.manual_seed(rank_seed(self.cfg.seed, self.global_rank))
            self.start_chains()
        elif fitted_now:
            self.start_chains()

    def start_chains(self) -> None:
        """Every chain from the informative init, as JEM++ does (from uniform noise without one)."""
        if self.cfg.init == "informative" and bool(self.init.fitted):
            labels = torch.randint(0, self.hparams.num_classes, (self.buffer.capacity,))
            self.buffer.chains[0] = self.init.sample(labels)
        else:
            self.buffer.chains.uniform_(-1, 1)

    # -- the checkpoint carries every rank's chains (training/checkpoint.py says why) --------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        if self._trainer is not None and self.trainer.world_size > 1:
            # every rank saves (Lightning writes rank 0's file), so all of them take part
            store_rank_chains(checkpoint, self.all_gather(self.buffer.chains))

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        restore_rank_chains(checkpoint, self.global_rank, self.buffer.chains)

    # -- Eq. 7 -------------------------------------------------------------------------------
    def px_step(self, x: torch.Tensor, fake: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
        """Contrastive divergence (Eq. 3) plus alpha * (E_real^2 + E_fake^2); `fake` reuses
        negatives already drawn this step (SAM's second pass)."""
        if fake is None:
            fake, _, _ = self.sampler().sample(len(x))
        f_real, f_fake = self.net(x), self.net(fake)
        cdiv = f_fake.mean() - f_real.mean()  # = E_real - E_fake
        reg = self.cfg.l2_alpha * (f_real.pow(2).mean() + f_fake.pow(2).mean())
        self._guard(f_real, f_fake)
        logs = {}
        if self.cfg.mode == "icd":
            kl, logs = self.kl_step(fake)
            reg = reg + self.cfg.icd_kl_weight * kl
        return cdiv + reg, {
            "_fake": fake.detach(),
            **logs,
            "energy_real": -f_real.mean().detach(),
            "energy_fake": -f_fake.mean().detach(),
            "cdiv": cdiv.detach(),
        }

    def kl_step(self, fake: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Improved CD's KL term (Du et al. 2021): a few of the sampler's outputs taken
        `icd_kl_steps` more SGLD steps with the graph kept, scored by the energy with theta
        frozen (so the gradient reaches theta only through the samples: it teaches the sampler,
        not the energy), minus a nearest-neighbour entropy estimate over that batch in pixel
        space (so the samples do not collapse onto one mode)."""
        c = self.cfg
        x = fake[: c.icd_kl_batch].detach()
        sampler = self.sampler()
        for _ in range(c.icd_kl_steps):
            x = sampler.differentiable_step(x)
        frozen = {k: v.detach() for k, v in self.net.named_parameters()}
        energy = -torch.func.functional_call(self.net, frozen, (x,))
        flat = x.flatten(1)
        dist = torch.cdist(flat, flat.detach()) + torch.eye(len(x), device=x.device) * 1e6
        entropy = torch.log(dist.min(1).values + 1e-6).mean()
        kl = energy.mean() - c.icd_entropy_weight * entropy
        return kl, {"kl": kl.detach(), "kl_energy": energy.mean().detach(), "kl_entropy": entropy.detach()}

    def pyx_step(self, logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict]:
        loss = F.cross_entropy(logits, y)
        return loss, {"acc": (logits.argmax(1) == y).float().mean().detach()}

    def oe_step(self, e_in: torch.Tensor, e_out: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Energy-margin outlier exposure (Liu et al. 2020): squared hinges below m_in / above m_out."""
        c = self.cfg
        loss = F.relu(e_in - c.oe_m_in).pow(2).mean() + F.relu(c.oe_m_out - e_out).pow(2).mean()
        return loss, {"energy_exposure": e_out.mean().detach()}

    def training_step(self, batch, batch_idx):
        if self.automatic_optimization:
            loss, logs = self.objective(batch)
        else:
            loss, logs = self.sam_step(batch)
        logs.pop("_fake", None)  # the negatives, not a metric
        self.log_dict({f"train/{k}": v for k, v in logs.items()}, prog_bar=False)
        self.log("train/loss", loss.detach(), prog_bar=True)
        return loss

    def sam_step(self, batch) -> tuple[torch.Tensor, dict]:
        """One SAM step: the gradient at w + rho * g / ||g||, applied at w."""
        opt, sched = self.optimizers(), self.lr_schedulers()
        params = [p for p in self.net.parameters() if p.requires_grad]
        loss, logs = self.objective(batch)
        opt.zero_grad()
        self.manual_backward(loss)
        grads = [p.grad.detach().clone() if p.grad is not None else None for p in params]
        norm = torch.norm(torch.stack([g.norm() for g in grads if g is not None]))
        scale = self.cfg.sam_rho / (norm + 1e-12)
        with torch.no_grad():
            moved = [(p, g * scale) for p, g in zip(params, grads) if g is not None]
            for p, e in moved:
                p.add_(e)
        opt.zero_grad()
        sharp, _ = self.objective(batch, fake=logs.get("_fake"))
        self.manual_backward(sharp)
        with torch.no_grad():
            for p, e in moved:
                p.sub_(e)
        opt.step()
        sched.step()
        logs["sam_sharpness"] = (sharp - loss).detach()
        return loss, logs

    def ramp(self) -> float:
        """The weight of the p(x) and exposure terms now: 0 -> 1 over generative_warmup_epochs."""
        warm = self.cfg.generative_warmup_epochs
        if warm <= 0 or self._trainer is None:
            return 1.0
        per_epoch = max(1, self.trainer.num_training_batches)
        return min(1.0, (self.global_step + 1) / (warm * per_epoch))

    def objective(self, batch, fake: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
        """Eq. 7 on one batch: cross-entropy, exposure hinges and p(x), as (loss, logs)."""
        x, y, *plain = batch  # with px_plain the loader adds each image before augmentation
        negative = y < 0  # outlier-exposure images (OOD_LABEL) ride in the same batch
        x_id, y_id = x[~negative], y[~negative]
        x_px = plain[0][~negative] if plain else x_id
        loss = x.new_zeros(())
        logs = {}
        if self.cfg.mode in (*JOINT, "classifier"):
            logits = self.net.get_logits(x)
            ce, extra = self.pyx_step(logits[~negative], y_id)
            loss = loss + ce
            logs.update(ce=ce.detach(), **extra)
            if negative.any() and self.cfg.mode in JOINT:
                energy = -torch.logsumexp(logits, 1)
                oe, extra = self.oe_step(energy[~negative], energy[negative])
                loss = loss + self.ramp() * self.cfg.oe_weight * oe
                logs.update(oe=oe.detach(), **extra)
        if self.cfg.mode in (*JOINT, "ebm"):
            px, extra = self.px_step(x_px, fake)
            loss = loss + self.ramp() * self.cfg.px_weight * px
            logs.update(px=px.detach(), **extra)
        if not torch.isfinite(loss):
            self._diverged(f"loss is {loss.item()}")
        return loss, logs

    def _guard(self, *fs: torch.Tensor) -> None:
        for f in fs:
            if not torch.isfinite(f).all():
                self._diverged("energies are NaN or infinite")
            if f.abs().max() > self.cfg.divergence_limit:
                self._diverged(
                    f"|energy| reached {f.abs().max().item():.3g} (> {self.cfg.divergence_limit:g})"
                )

    def _diverged(self, why: str):
        # training.callbacks.DivergenceGuard adds which checkpoint to go back to
        raise DivergenceError(
            f"training diverged at epoch {self.current_epoch}, step {self.global_step}: {why}"
        )

    # -- validation: accuracy on the ID split (dataloader 0), energy AUROC against one OOD
    # suite (dataloader 1, from the datamodule), energies of real glyphs vs the replay buffer --
    def validation_step(self, batch, batch_idx, dataloader_idx: int = 0):
        x, y = batch
        logits = self.net.get_logits(x)
        energy = -torch.logsumexp(logits, 1)  # with one output (ebm) this is just -logit
        self._val_energy[dataloader_idx].append(energy.detach().cpu())
        if dataloader_idx == 0 and self.cfg.mode != "ebm":
            acc = (logits.argmax(1) == y).float().mean()
            self.log("val/acc", acc, prog_bar=True, add_dataloader_idx=False, sync_dist=True)
            self.log("val/ce", F.cross_entropy(logits, y), add_dataloader_idx=False, sync_dist=True)

    @torch.no_grad()
    def energies(self, x: torch.Tensor, batch: int = 512) -> torch.Tensor:
        out = [self.net.energy(x[i : i + batch].to(self.device)).cpu() for i in range(0, len(x), batch)]
        return torch.cat(out) if out else torch.empty(0)

    def on_validation_epoch_end(self):
        e_val, e_ood = (torch.cat(v) if v else torch.empty(0) for v in self._val_energy.values())
        for v in self._val_energy.values():
            v.clear()
        if self.trainer.world_size > 1:
            # each rank scored its shard of both sets (equal shards: the distributed sampler
            # pads them), and an AUROC ranks them all together
            e_val, e_ood = (self.all_gather(e.to(self.device)).flatten().cpu() for e in (e_val, e_ood))
        if len(e_val) == 0:
            return
        self.log("val/energy_real", e_val.mean(), sync_dist=True)
        buffer_energy = self.energies(self.buffer.chains[0, :256]).mean()
        self.log("val/energy_buffer", buffer_energy, sync_dist=True)  # mean over the ranks' buffers
        auroc = energy_auroc(e_val, e_ood, nan_as=0.0) if len(e_ood) else float("nan")
        self.log("val/auroc", auroc, prog_bar=True, sync_dist=True)

    def test_step(self, batch, batch_idx):
        x, y = batch
        if self.cfg.mode != "ebm":
            self.log("test/acc", (self.net.get_logits(x).argmax(1) == y).float().mean(), sync_dist=True)

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.net.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)
        total = max(1, self.trainer.estimated_stepping_batches)
        warm = min(self.cfg.warmup_steps, total // 4)
        # linear warm-up from lr/warm to lr over `warm` steps, then a cosine to zero
        cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, total - warm))
        if warm > 1:
            ramp = torch.optim.lr_scheduler.LinearLR(opt, start_factor=1 / warm, total_iters=warm - 1)
            sched = torch.optim.lr_scheduler.SequentialLR(opt, [ramp, cosine], milestones=[warm])
        else:
            sched = cosine
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
