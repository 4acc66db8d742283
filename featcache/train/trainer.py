"""The training loop: plain PyTorch, resumable after a kill, DDP-aware.

One :class:`Trainer` owns the model, the optimizer and the run folder. Every ``save_every``
optimizer steps and after every epoch it writes ``last.pt`` (model, optimizer, grad scaler, step,
epoch, batches consumed in the epoch, early-stopping state, the metrics history and every RNG
state); the batch order of an epoch is a pure function of ``(seed, epoch)``. Running the same
command again after a SIGKILL therefore continues from ``last.pt`` to the same final weights and
metrics as an uninterrupted run (on CPU, where kernels are deterministic).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from featcache.atomic import write_atomic
from featcache.train import checkpoint
from featcache.train.config import TrainConfig
from featcache.train.data import CachedDataset, to_float32
from featcache.train.distributed import Dist, barrier
from featcache.train.loaders import build_loader
from featcache.train.model import FusionModel, move_batch

PRECISIONS = {"fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_device(name: str, dist: Dist) -> torch.device:
    """``auto`` -> this rank's CUDA device when available, else CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", dist.local_rank)
    return device


def resolve_precision(name: str, device: torch.device) -> str:
    """``auto`` -> bf16 (or fp16) autocast on CUDA, fp32 on CPU."""
    if name != "auto":
        return name
    if device.type != "cuda":
        return "fp32"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


class Trainer:
    """Train ``model`` on ``datasets["train"]``, select on ``datasets["dev"]``.

    Parameters
    ----------
    config
        The resolved :class:`TrainConfig`.
    model
        Interface + head, on CPU; moved to the device here.
    task
        The :class:`featcache.heads.Task` (loss, decoding, metrics).
    datasets
        ``train``, ``dev`` (and ``test``) :class:`CachedDataset`.
    out
        The run folder.
    dist
        This process's DDP rank (``Dist()`` when single-process).
    log
        Where progress lines go (rank 0 only).
    extra
        Saved into every checkpoint (interface shapes, upstream names) for ``evaluate``.
    """

    def __init__(
        self,
        config: TrainConfig,
        model: FusionModel,
        task,
        datasets: dict[str, CachedDataset],
        out: Path,
        dist: Dist | None = None,
        log: Callable[[str], None] = print,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.task = task
        self.datasets = datasets
        self.out = Path(out)
        self.dist = dist or Dist()
        self.log = log if self.dist.is_main else (lambda line: None)
        self.extra = extra or {}
        self.device = resolve_device(config.device, self.dist)
        self.precision = resolve_precision(config.precision, self.device)
        self.model = model.to(self.device)
        self.ddp = self.model
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        interface_lr = config.interface_lr if config.interface_lr is not None else config.lr
        groups = [
            {"params": list(model.interface.parameters()), "lr": interface_lr},
            {"params": list(model.head.parameters()), "lr": config.lr},
        ]
        groups = [g for g in groups if g["params"]]
        self.optimizer = torch.optim.AdamW(groups, weight_decay=config.weight_decay)
        use_scaler = self.precision == "fp16" and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)
        self._loaders: dict[str, torch.utils.data.DataLoader] = {}
        self.state: dict[str, Any] = {
            "epoch": 0,  # epochs completed
            "step": 0,  # optimizer steps taken
            "batch": 0,  # batches of the current epoch consumed (this rank)
            "loss_sum": 0.0,
            "loss_count": 0,
            "best": None,  # best dev main metric
            "best_dev": None,  # every dev metric of the best evaluation (ties: tie_breakers)
            "best_epoch": None,
            "bad_evals": 0,
            "history": [],  # the lines of metrics.jsonl
            "done": False,
        }

    # --- running --------------------------------------------------------------------------
    def autocast(self):
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=PRECISIONS[self.precision])

    def loader(self, split: str, shuffle: bool):
        """The DataLoader of ``split``, built once; train's sampler gets ``set_epoch`` each epoch.

        Workers persist across epochs (no re-fork per epoch); they only read and collate, so the
        batch order stays a function of ``(seed, epoch)`` whatever the worker count.
        """
        if split in self._loaders:
            return self._loaders[split]
        loader = build_loader(self.datasets[split], self.config, self.task.collate, shuffle,
                              self.device.type == "cuda", self.dist)  # fmt: skip
        self._loaders[split] = loader
        return loader

    def fit(self) -> dict[str, Any]:
        """Train until ``epochs``, ``max_steps`` or early stopping; returns the final state."""
        cfg = self.config
        last = self.out / "last.pt"
        if last.exists():
            self.resume(last)
            self.log(f"resuming {self.out} at epoch {self.state['epoch'] + 1}, "
                     f"step {self.state['step']}")  # fmt: skip
        else:
            checkpoint.seed_everything(cfg.seed)
        while not self.state["done"]:
            self.train_epoch()
        return self.state

    def train_epoch(self) -> None:
        cfg, state = self.config, self.state
        epoch = state["epoch"]
        started = time.perf_counter()
        loader = self.loader("train", shuffle=True)
        loader.set_epoch(epoch, start=state["batch"])
        total = len(loader) + state["batch"]
        self.ddp.train()
        micro = 0
        bar = StepBar(epoch, total, state["batch"], enabled=cfg.progress and self.dist.is_main)
        for batch in loader:
            micro += 1
            state["batch"] += 1
            boundary = micro % cfg.grad_accum == 0 or state["batch"] == total
            batch = to_float32(move_batch(batch, self.device))
            sync = contextlib.nullcontext()
            if self.dist.enabled and not boundary:
                sync = self.ddp.no_sync()
            with sync:
                with self.autocast():
                    outputs = self.ddp(batch["features"], batch["mask"])
                loss = self.task.loss(outputs, batch)
                self.scaler.scale(loss / cfg.grad_accum).backward()
            state["loss_sum"] += float(loss.detach())
            state["loss_count"] += 1
            bar.update(int(batch["mask"].sum()), state["loss_sum"] / state["loss_count"])
            if not boundary:
                continue
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.optimizer.zero_grad(set_to_none=True)
            state["step"] += 1
            micro = 0
            if cfg.max_steps is not None and state["step"] >= cfg.max_steps:
                break
            if cfg.save_every and state["step"] % cfg.save_every == 0:
                self.save_last()
        bar.close()
        self.end_epoch(time.perf_counter() - started)

    def end_epoch(self, seconds: float) -> None:
        cfg, state = self.config, self.state
        dev = self.evaluate("dev")
        main = dev[self.task.main_metric]
        train_loss = state["loss_sum"] / max(state["loss_count"], 1)
        state["epoch"] += 1
        line = {"epoch": state["epoch"], "step": state["step"], "train_loss": train_loss,
                "dev": dev, "seconds": round(seconds, 3)}  # fmt: skip
        state["history"].append(line)
        best_dev = state.get("best_dev")  # None in checkpoints from before tie-breaking
        if best_dev is None and state["best"] is not None:
            best_dev = {self.task.main_metric: state["best"]}
        if self.task.is_better(dev, best_dev):
            state.update(best=main, best_dev=dev, best_epoch=state["epoch"], bad_evals=0)
            self.save_best(dev)
        else:
            state["bad_evals"] += 1
        state.update(batch=0, loss_sum=0.0, loss_count=0)
        reached = cfg.max_steps is not None and state["step"] >= cfg.max_steps
        state["done"] = (
            reached or state["epoch"] >= cfg.epochs or state["bad_evals"] >= cfg.patience
        )
        self.write_history()
        self.save_last()
        metrics = " ".join(f"{k}={v:.4f}" for k, v in dev.items())
        self.log(f"epoch {state['epoch']} step {state['step']} train_loss={train_loss:.4f} "
                 f"dev {metrics} ({seconds:.1f}s)")  # fmt: skip

    def evaluate(self, split: str) -> dict[str, float]:
        """Score ``split`` with the current weights (every rank scores the whole split)."""
        _, refs, preds = self.predict(split)
        return self.task.score(refs, preds)

    @torch.no_grad()
    def predict(self, split: str) -> tuple[list[str], list[Any], list[Any]]:
        """Utterance ids, references and decoded predictions of ``split``, in loader order."""
        was_training = self.model.training
        self.model.eval()
        ids, refs, preds = [], [], []
        for batch in self.loader(split, shuffle=False):
            batch = to_float32(move_batch(batch, self.device))
            with self.autocast():
                outputs = self.model(batch["features"], batch["mask"])
            preds += self.task.decode(outputs.float(), batch)
            refs += [self.datasets[split].label_of(u) for u in batch["ids"]]
            ids += list(batch["ids"])
        self.model.train(was_training)
        return ids, refs, preds

    # --- files ----------------------------------------------------------------------------
    def write_history(self) -> None:
        if not self.dist.is_main:
            return
        lines = "".join(json.dumps(line) + "\n" for line in self.state["history"])
        write_atomic(self.out / "metrics.jsonl", lines)

    def save_last(self) -> None:
        if self.dist.is_main:
            checkpoint.save_atomic(
                {
                    "model": self.model.state_dict(),
                    "optimizer": self.optimizer.state_dict(),
                    "scaler": self.scaler.state_dict(),
                    "state": self.state,
                    "rng": checkpoint.rng_state(),
                    "task": self.task.state(),
                    **self.extra,
                },
                self.out / "last.pt",
            )
        barrier(self.dist)

    def save_best(self, dev: dict[str, float]) -> None:
        if self.dist.is_main:
            checkpoint.save_atomic(
                {
                    "model": self.model.state_dict(),
                    "task": self.task.state(),
                    "epoch": self.state["epoch"],
                    "step": self.state["step"],
                    "dev": dev,
                    **self.extra,
                },
                self.out / "best.pt",
            )
        barrier(self.dist)

    def resume(self, path: Path) -> None:
        saved = checkpoint.load(path)
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scaler.load_state_dict(saved["scaler"])
        self.state = saved["state"]
        checkpoint.set_rng_state(saved["rng"])
        self.write_history()  # drop lines written after this checkpoint


class StepBar:
    """A tqdm bar over an epoch's batches showing the running loss and frames per second."""

    def __init__(self, epoch: int, total: int, done: int, enabled: bool) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, initial=done, unit="batch", desc=f"epoch {epoch + 1}",
                        disable=not enabled, leave=False)  # fmt: skip
        self.frames = 0
        self.started = time.perf_counter()

    def update(self, frames: int, loss: float) -> None:
        self.frames += frames
        rate = self.frames / max(time.perf_counter() - self.started, 1e-9)
        first = self.frames == frames  # show the postfix at once; then at tqdm's own pace
        self.bar.set_postfix_str(f"loss={loss:.4f}, {rate:,.0f} frames/s", refresh=first)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()
