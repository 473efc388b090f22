"""The pretraining recipe: masked-beat prediction on a featurized store. One recipe, many launchers.

``bat pretrain``, the Prefect flow and the DeepSpeed launcher all build a ``PretrainRecipe`` and call
``setup() -> train() -> evaluate() -> save_checkpoint()``; ``run_pretrain`` does that for the pairwise
encoder and its plain twin and writes ``report.json``. The step loop only talks to ``self.engine`` through
``backward(loss)`` and ``step()``, the DeepSpeed engine's API: a DeepSpeed launcher swaps in
``deepspeed.initialize(model=recipe.model, ...)``'s engine as both ``recipe.model`` and ``recipe.engine``.

    from bat.train import PretrainConfig, run_pretrain
    report = run_pretrain(PretrainConfig(store="data/store.zarr", model="tiny", steps=2000), out="runs/tiny")
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from bat.data.dataset import EvalWindows, StoreHandle, TrainWindows, collate, make_sampler, worker_context
from bat.data.split import split_songs
from bat.model import PAIR_FEATURE_NAMES, BatEncoder, get_config
from bat.model.pairwise import DESCRIPTOR_NAMES
from bat.train.evaluate import (
    Predictions,
    baseline_probs,
    build_report,
    feature_groups,
    predict_masked,
    train_stats,
)
from bat.train.metrics import score
from bat.train.objective import mask_beats, masked_bce


@dataclass
class PretrainConfig:
    store: str = ""  # featurized store path, or "synthetic:N" for N made-up songs
    model: str = "tiny"  # preset in bat.model.CONFIGS: tiny, small, base
    pairwise: bool = True  # False trains the plain encoder
    steps: int = 1000  # optimizer steps
    batch_size: int = 16  # windows per step (per rank)
    lr: float = 1e-3  # peak AdamW learning rate (linear warmup, cosine decay to 10%)
    weight_decay: float = 0.01  # AdamW, on matrices only
    warmup_steps: int = 50  # linear warmup
    grad_clip: float = 1.0  # max gradient norm
    max_len: int = 512  # beats per window
    mask_rate: float = 0.15  # fraction of beats (or bars) hidden
    mask_span: str = "beat"  # "beat" or "bar" (whole-bar spans)
    seed: int = 0  # model init, crops, masks
    device: str = "auto"  # "auto": cuda if available, else cpu
    num_workers: int = 0  # DataLoader workers (each opens the store itself)
    eval_batch_size: int = 16  # windows per evaluation batch
    max_eval_songs: int = 0  # 0: every validation song; else the first N of them
    max_stat_songs: int = 2000  # training songs sampled for the baselines' base rates
    log_every: int = 50  # steps between log lines


class TorchEngine:
    """Backward and optimizer step, with the method names of a DeepSpeed engine."""

    def __init__(self, model: torch.nn.Module, optimizer, scheduler, grad_clip: float):
        self.module, self.optimizer, self.scheduler, self.grad_clip = model, optimizer, scheduler, grad_clip

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def step(self) -> None:
        if self.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.module.parameters(), self.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)


def make_optimizer(model: torch.nn.Module, cfg: PretrainConfig):
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr
    )

    def schedule(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, schedule)


class PretrainRecipe:
    def __init__(self, cfg: PretrainConfig, store=None, rank: int = 0, world_size: int = 1):
        """``store``: an open store object to use instead of opening ``cfg.store`` (tests, notebooks)."""
        self.cfg, self.rank, self.world_size = cfg, rank, world_size
        self.handle = StoreHandle(store if store is not None else cfg.store)
        self.step = 0

    # --- setup -------------------------------------------------------------------------------------------
    def setup(self) -> PretrainRecipe:
        cfg = self.cfg
        if cfg.device == "auto":
            self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        else:
            self.device = torch.device(cfg.device)
        store = self.handle.store
        self.handle.descriptor_order()  # fail early on a store without the descriptors
        self.feature_names = list(store.feature_names)
        self.groups = feature_groups(store)
        self.train_songs, self.val_songs = split_songs(store.songs)
        if cfg.max_eval_songs:
            self.val_songs = self.val_songs[: cfg.max_eval_songs]
        torch.manual_seed(cfg.seed)
        self.model_config = get_config(
            cfg.model, n_features=len(self.feature_names), pairwise=cfg.pairwise, max_len=cfg.max_len
        )
        self.model = BatEncoder(self.model_config).to(self.device)
        self.optimizer, self.scheduler = make_optimizer(self.model, cfg)
        self.engine = TorchEngine(self.model, self.optimizer, self.scheduler, cfg.grad_clip)
        self.train_data = TrainWindows(self.handle, self.train_songs, cfg.max_len)
        self.sampler = make_sampler(self.train_data, self.rank, self.world_size, shuffle=True, seed=cfg.seed)
        self.mask_gen = torch.Generator().manual_seed(cfg.seed * 7919 + self.rank)
        return self

    def batches(self) -> Iterator[dict]:
        """Training batches forever, epoch after epoch (sampler.set_epoch reshuffles)."""
        loader = DataLoader(
            self.train_data,
            batch_size=self.cfg.batch_size,
            sampler=self.sampler,
            collate_fn=collate,
            num_workers=self.cfg.num_workers,
            multiprocessing_context=worker_context(self.cfg.num_workers),
            persistent_workers=self.cfg.num_workers > 0,
            drop_last=len(self.sampler) >= self.cfg.batch_size,  # no ragged last batch unless it is the only one
        )
        epoch = 0
        while True:
            self.sampler.set_epoch(epoch)
            yield from loader
            epoch += 1

    # --- train -------------------------------------------------------------------------------------------
    def loss(self, batch: dict, masked: torch.Tensor | None = None) -> torch.Tensor:
        """Masked-beat loss of one batch (draws the mask unless given)."""
        if masked is None:
            masked = mask_beats(batch["valid"], batch["desc"], self.cfg.mask_rate, self.cfg.mask_span, self.mask_gen)
        dev = self.device
        bits, valid = batch["bits"].to(dev), batch["valid"].to(dev)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            logits = self.model(bits, batch["desc"].to(dev), valid, masked.to(dev))
        return masked_bce(logits, bits, masked.to(dev))

    def train_step(self, batch: dict) -> float:
        loss = self.loss(batch)
        self.engine.backward(loss)
        self.engine.step()
        self.step += 1
        return float(loss.detach())

    def train(self, steps: int | None = None, on_log: Callable[[dict], None] | None = None) -> list[dict]:
        """Run ``steps`` (default cfg.steps) optimizer steps; returns the logged history."""
        steps = self.cfg.steps if steps is None else steps
        self.model.train()
        history, window, t0 = [], [], time.perf_counter()
        for batch in self.batches():
            if self.step >= steps:
                break
            window.append(self.train_step(batch))
            if self.step % self.cfg.log_every == 0 or self.step == steps:
                elapsed = time.perf_counter() - t0
                entry = {
                    "step": self.step,
                    "loss": float(np.mean(window)),
                    "lr": self.scheduler.get_last_lr()[0],
                    "steps_per_s": len(window) / elapsed,
                }
                history.append(entry)
                if on_log:
                    on_log(entry)
                window, t0 = [], time.perf_counter()
        return history

    # --- evaluate ----------------------------------------------------------------------------------------
    def predict(self) -> Predictions:
        data = EvalWindows(self.handle, self.val_songs, self.cfg.max_len)
        return predict_masked(
            self.module,
            data,
            batch_size=self.cfg.eval_batch_size,
            mask_rate=self.cfg.mask_rate,
            span=self.cfg.mask_span,
            seed=self.cfg.seed,
            device=self.device,
        )

    def evaluate(self) -> dict:
        """Scores of this model on the validation songs (see ``bat.train.metrics.score``)."""
        preds = self.predict()
        out = score(preds.prob, preds.truth, self.groups)
        out.update(n_params=self.module.n_params(), pairwise=self.cfg.pairwise)
        return out

    def save_checkpoint(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "model": self.module.state_dict(),
                "model_config": asdict(self.model_config),
                "pretrain_config": asdict(self.cfg),
                "feature_names": self.feature_names,
                "descriptor_names": list(DESCRIPTOR_NAMES),
                "pair_feature_names": list(PAIR_FEATURE_NAMES),
                "step": self.step,
            },
            path,
        )
        return path

    @property
    def module(self) -> BatEncoder:
        """The bare encoder, also when a launcher has wrapped ``self.model`` (DDP, a DeepSpeed engine)."""
        return getattr(self.model, "module", self.model)

    def cleanup(self) -> None:
        self.model = self.engine = self.optimizer = None


def load_encoder(path: str | Path, device: str = "cpu") -> BatEncoder:
    """The encoder saved by ``PretrainRecipe.save_checkpoint``."""
    from bat.model import BatConfig

    ckpt = torch.load(path, map_location=device, weights_only=True)
    if list(ckpt["pair_feature_names"]) != list(PAIR_FEATURE_NAMES):
        raise ValueError(f"{path}: its pair features differ from this bat version's; retrain or use the matching bat")
    model = BatEncoder(BatConfig(**ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    return model.to(device)


def run_pretrain(
    cfg: PretrainConfig,
    out: str | Path,
    compare_plain: bool = True,
    store=None,
    on_log: Callable[[str, dict], None] | None = None,
) -> dict:
    """Train the encoder (and the plain encoder as a baseline), evaluate both and the baselines on held-out
    songs, write ``model.pt`` (and ``plain.pt``) and ``report.json`` into ``out``; returns the report."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    recipe = PretrainRecipe(cfg, store=store).setup()
    history = recipe.train(on_log=(lambda e: on_log("model", e)) if on_log else None)
    preds = recipe.predict()
    scored = {"model": score(preds.prob, preds.truth, recipe.groups)}
    stats = train_stats(recipe.handle, recipe.train_songs, cfg.max_stat_songs, cfg.seed)
    for name, prob in baseline_probs(stats, recipe.handle, preds).items():
        scored[name] = score(prob, preds.truth, recipe.groups)
    recipe.save_checkpoint(out / "model.pt")
    meta = {
        "params": {"model": recipe.module.n_params()},
        "train": {"history": history, "config": asdict(cfg), "model_config": asdict(recipe.model_config)},
        "eval": {
            "n_train_songs": len(recipe.train_songs),
            "n_val_songs": len(recipe.val_songs),
            "n_scored_beats": len(preds.song),
            "n_features": len(recipe.feature_names),
            "split": "sha1(content_hash) mod 10 == 0 is validation",
        },
        "pair_features": len(PAIR_FEATURE_NAMES),
    }
    scored["plain_encoder"] = None
    if compare_plain and cfg.pairwise:
        plain = PretrainRecipe(replace(cfg, pairwise=False), store=store).setup()
        meta["train"]["plain_history"] = plain.train(on_log=(lambda e: on_log("plain_encoder", e)) if on_log else None)
        plain_preds = plain.predict()
        assert np.array_equal(plain_preds.song, preds.song) and np.array_equal(plain_preds.beat, preds.beat)
        scored["plain_encoder"] = score(plain_preds.prob, plain_preds.truth, plain.groups)
        meta["params"]["plain_encoder"] = plain.module.n_params()
        plain.save_checkpoint(out / "plain.pt")
    meta["seconds"] = time.perf_counter() - t0
    report = build_report(scored, meta)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    return report
