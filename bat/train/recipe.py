"""The pretraining recipe: masked-beat prediction on a featurized store. One recipe, every launcher.

``bat pretrain``, the train-encoder flow and ``deepspeed --num_gpus N -m bat.cli pretrain`` all build a
``PretrainRecipe``: ``setup()`` wraps the encoder in a DeepSpeed engine (``bat.train.deepspeed_engine``), the
same code on one CPU process, CPU ranks or GPUs; ``train()`` checkpoints every ``checkpoint_every`` steps and
``resume()`` continues from the last checkpoint at the same step, optimizer state and data position;
``evaluate()`` scores held-out songs, each rank a share of them. ``run_pretrain`` does all of it for the
pairwise encoder and its plain twin and writes ``report.json``.

    from bat.train import PretrainConfig, run_pretrain
    report = run_pretrain(PretrainConfig(store="data/store.zarr", model="tiny", steps=2000), out="runs/tiny")
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from bat.data.dataset import EvalWindows, ResumableSampler, StoreHandle, TrainWindows, collate, worker_context
from bat.data.split import split_songs
from bat.model import PAIR_FEATURE_NAMES, BatEncoder, get_config
from bat.model.config import PRESET_LR
from bat.model.pairwise import DESCRIPTOR_NAMES
from bat.train.deepspeed_engine import build_engine, ensure_process_group
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

KEEP_CHECKPOINTS = 2  # the newest DeepSpeed checkpoints kept in a run's checkpoint folder


@dataclass
class PretrainConfig:
    store: str = ""  # featurized store path, or "synthetic:N" for N made-up songs
    model: str = "tiny"  # preset in bat.model.CONFIGS: tiny, small, base
    pairwise: bool = True  # False trains the plain encoder
    steps: int = 300  # optimizer steps
    batch_size: int = 16  # windows per micro-batch (per rank)
    grad_accum: int = 1  # micro-batches per optimizer step
    lr: float | None = None  # peak AdamW learning rate (linear warmup, cosine decay to 10%); None: PRESET_LR
    weight_decay: float = 0.01  # AdamW, on matrices only
    warmup_steps: int = 50  # linear warmup
    grad_clip: float = 1.0  # max gradient norm
    max_len: int = 512  # beats per window
    mask_rate: float = 0.15  # fraction of beats (or bars) hidden
    mask_span: str = "beat"  # "beat" or "bar" (whole-bar spans)
    seed: int = 0  # model init, crops, masks
    device: str = "auto"  # "auto": cuda if available, else cpu
    zero_stage: int = 0  # DeepSpeed ZeRO stage, 0 to 2
    ds_config: str = ""  # a DeepSpeed JSON file merged over the generated config
    num_workers: int = 0  # DataLoader workers (each opens the store itself)
    eval_batch_size: int = 16  # windows per evaluation batch
    max_eval_songs: int = 0  # 0: every validation song; else the first N of them
    max_stat_songs: int = 2000  # training songs sampled for the baselines' base rates
    log_every: int = 50  # steps between log lines (train loss, throughput)
    eval_every: int = 0  # steps between held-out evaluations during training (0: only at the end)
    checkpoint_every: int = 100  # steps between resumable checkpoints (0: only the last step)

    def __post_init__(self):
        if self.lr is None:
            self.lr = PRESET_LR.get(self.model, 1e-3)


@dataclass
class TrainPosition:
    """Where training stands: what a checkpoint must record for a resumed run to continue identically."""

    step: int = 0  # optimizer steps done
    epoch: int = 0  # current pass over the training windows
    offset: int = 0  # windows of this epoch (this rank's share) already consumed


class PretrainRecipe:
    def __init__(self, cfg: PretrainConfig, store=None):
        """``store``: an open store object to use instead of opening ``cfg.store`` (tests, notebooks)."""
        self.cfg = cfg
        self.handle = StoreHandle(store if store is not None else cfg.store)
        self.position = TrainPosition()

    @property
    def step(self) -> int:
        return self.position.step

    # --- setup -------------------------------------------------------------------------------------------
    def setup(self) -> PretrainRecipe:
        cfg = self.cfg
        if cfg.device == "auto":
            self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        else:
            self.device = torch.device(cfg.device)
        self.rank, self.world_size = ensure_process_group(on_gpu=self.device.type == "cuda")
        if self.device.type == "cuda" and cfg.device == "auto":
            self.device = torch.device("cuda", torch.cuda.current_device())
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
        encoder = BatEncoder(self.model_config).to(self.device)
        self.engine, self.optimizer, self.scheduler, self.ds_config = build_engine(
            encoder, cfg, self.world_size, on_gpu=self.device.type == "cuda"
        )
        self.model = self.engine  # forward goes through the engine (ZeRO hooks, bf16 casts)
        self.train_data = TrainWindows(self.handle, self.train_songs, cfg.max_len)
        self.sampler = ResumableSampler(self.train_data, self.rank, self.world_size, seed=cfg.seed)
        self.mask_gen = torch.Generator().manual_seed(cfg.seed * 7919 + self.rank)
        self.loader = DataLoader(
            self.train_data,
            batch_size=cfg.batch_size,
            sampler=self.sampler,
            collate_fn=collate,
            num_workers=cfg.num_workers,
            multiprocessing_context=worker_context(cfg.num_workers),
            persistent_workers=cfg.num_workers > 0,
            drop_last=len(self.sampler) >= cfg.batch_size,  # no ragged last batch unless it is the only one
        )
        return self

    def batches(self) -> Iterator[dict]:
        """Training micro-batches forever, from the recorded position on (each epoch reshuffled)."""
        pos = self.position
        while True:
            self.sampler.set_position(pos.epoch, pos.offset)
            for batch in self.loader:
                pos.offset += len(batch["song"])
                yield batch
            pos.epoch, pos.offset = pos.epoch + 1, 0

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

    def train_step(self, micro_batches: list[dict]) -> float:
        """One optimizer step over ``grad_accum`` micro-batches; returns their mean loss."""
        losses = []
        for batch in micro_batches:
            loss = self.loss(batch)
            self.engine.backward(loss)
            self.engine.step()  # DeepSpeed applies the update at the accumulation boundary
            losses.append(float(loss.detach()))
        self.position.step += 1
        return float(np.mean(losses))

    def _mean_over_ranks(self, values: list[float]) -> list[float]:
        t = torch.tensor(values, dtype=torch.float64)
        if self.world_size > 1:
            torch.distributed.all_reduce(t)
        return (t / self.world_size).tolist()

    def train(
        self,
        steps: int | None = None,
        on_log: Callable[[dict], None] | None = None,
        on_eval: Callable[[dict], None] | None = None,
        checkpoint_dir: str | Path | None = None,
    ) -> list[dict]:
        """Train up to step ``steps`` (default cfg.steps); returns the logged history. With ``checkpoint_dir``,
        saves a resumable checkpoint every ``checkpoint_every`` steps and at the last step. ``on_log`` gets
        train loss, learning rate and throughput (means over ranks), ``on_eval`` the held-out scores every
        ``eval_every`` steps; every rank must call ``train`` (evaluation and checkpoints are collective)."""
        cfg = self.cfg
        steps = cfg.steps if steps is None else steps
        self.model.train()
        history, losses, beats, t0 = [], [], 0, time.perf_counter()
        batches = self.batches()
        while self.step < steps:
            micro = [next(batches) for _ in range(cfg.grad_accum)]
            losses.append(self.train_step(micro))
            beats += sum(int(b["valid"].sum()) for b in micro)
            if self.step % cfg.log_every == 0 or self.step == steps:
                elapsed = time.perf_counter() - t0
                loss, beat_rate = self._mean_over_ranks([float(np.mean(losses)), beats / elapsed])
                entry = {
                    "step": self.step,
                    "loss": loss,
                    "lr": float(self.scheduler.get_last_lr()[0]),
                    "steps_per_s": len(losses) / elapsed,
                    "beats_per_s": beat_rate * self.world_size,
                }
                history.append(entry)
                if on_log:
                    on_log(entry)
                losses, beats, t0 = [], 0, time.perf_counter()
            if on_eval and cfg.eval_every and self.step % cfg.eval_every == 0 and self.step < steps:
                scores = self.evaluate()
                on_eval({"step": self.step, **{k: scores[k] for k in ("loss", "auroc_macro", "f1_macro")}})
            if checkpoint_dir and (self.step == steps or cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0):
                self.save_training_state(checkpoint_dir)
        return history

    # --- checkpoints -------------------------------------------------------------------------------------
    def save_training_state(self, folder: str | Path) -> None:
        """A DeepSpeed checkpoint (weights, optimizer, schedule) plus the data position and mask RNG; only
        the newest ``KEEP_CHECKPOINTS`` are kept. Collective: every rank calls it."""
        folder = Path(folder)
        client_state = {
            "position": asdict(self.position),
            "mask_gen": self.mask_gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "pretrain_config": asdict(self.cfg),
        }
        self.engine.save_checkpoint(str(folder), tag=f"step{self.step:09d}", client_state=client_state)
        if self.rank == 0:
            for old in sorted(folder.glob("step*"))[:-KEEP_CHECKPOINTS]:
                shutil.rmtree(old, ignore_errors=True)

    def clear_training_state(self, folder: str | Path) -> None:
        """Delete the checkpoints in ``folder`` (rank 0; the other ranks wait for it)."""
        if self.rank == 0:
            shutil.rmtree(folder, ignore_errors=True)
        if self.world_size > 1:
            torch.distributed.barrier()

    def resume(self, folder: str | Path) -> bool:
        """Continue from the newest checkpoint in ``folder`` (False if there is none)."""
        folder = Path(folder)
        if not (folder / "latest").exists():
            return False
        path, client_state = self.engine.load_checkpoint(str(folder))
        if path is None:
            raise RuntimeError(f"{folder}: its latest checkpoint could not be loaded")
        saved = client_state["pretrain_config"]
        for key in ("model", "pairwise", "batch_size", "grad_accum", "max_len", "seed", "store"):
            if saved.get(key) != getattr(self.cfg, key):
                raise ValueError(
                    f"cannot resume from {folder}: it was trained with {key}={saved.get(key)!r}, "
                    f"this run asks for {getattr(self.cfg, key)!r}"
                )
        self.position = TrainPosition(**client_state["position"])
        self.mask_gen.set_state(client_state["mask_gen"])
        torch.set_rng_state(client_state["torch_rng"])
        return True

    # --- evaluate ----------------------------------------------------------------------------------------
    def predict(self) -> Predictions:
        """Masked-beat predictions on the validation songs: each rank predicts a share of the windows, and
        every rank gets all of them back, in song and beat order."""
        data = EvalWindows(self.handle, self.val_songs, self.cfg.max_len)
        if self.world_size > 1:
            data.windows = data.windows[self.rank :: self.world_size]
        preds = predict_masked(
            self.module,
            data,
            batch_size=self.cfg.eval_batch_size,
            mask_rate=self.cfg.mask_rate,
            span=self.cfg.mask_span,
            seed=self.cfg.seed,
            device=self.device,
        )
        if self.world_size > 1:
            shares = [None] * self.world_size
            torch.distributed.all_gather_object(shares, preds)
            preds = Predictions(*(np.concatenate([getattr(p, f) for p in shares]) for f in ("song", "beat", "prob", "truth")))
        order = np.lexsort((preds.beat, preds.song))
        return Predictions(preds.song[order], preds.beat[order], preds.prob[order], preds.truth[order])

    def evaluate(self) -> dict:
        """Scores of this model on the validation songs (see ``bat.train.metrics.score``)."""
        preds = self.predict()
        out = score(preds.prob, preds.truth, self.groups)
        out.update(n_params=self.module.n_params(), pairwise=self.cfg.pairwise)
        return out

    def save_checkpoint(self, path: str | Path) -> Path:
        """The trained encoder alone (weights and configs, no optimizer): what ``load_encoder`` reads."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "model": {k: v.float() for k, v in self.module.state_dict().items()},
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
        """The bare encoder inside the DeepSpeed engine."""
        return getattr(self.model, "module", self.model)


def load_encoder(path: str | Path, device: str = "cpu") -> BatEncoder:
    """The encoder saved by ``PretrainRecipe.save_checkpoint``."""
    from bat.model import BatConfig

    ckpt = torch.load(path, map_location=device, weights_only=True)
    if list(ckpt["pair_feature_names"]) != list(PAIR_FEATURE_NAMES):
        raise ValueError(f"{path}: its pair features differ from this bat version's; retrain or use the matching bat")
    model = BatEncoder(BatConfig.from_saved(ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    return model.to(device)


MODELS = {"model": "model.pt", "plain_encoder": "plain.pt"}  # what run_pretrain trains, and its checkpoint


def run_pretrain(
    cfg: PretrainConfig,
    out: str | Path,
    compare_plain: bool = True,
    store=None,
    on_log: Callable[[str, dict], None] | None = None,
    on_eval: Callable[[str, dict], None] | None = None,
    resume: bool = False,
) -> dict | None:
    """Train the encoder (and the plain encoder as a baseline), evaluate both and the baselines on held-out
    songs, write ``model.pt`` (and ``plain.pt``) and ``report.json`` into ``out``; returns the report on rank 0
    (None on other ranks). Resumable checkpoints go to ``out/checkpoints/<model>``; ``resume`` continues from
    them (a model whose training had finished is only evaluated again)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    names = ["model", "plain_encoder"] if compare_plain and cfg.pairwise else ["model"]
    scored, meta = {"plain_encoder": None}, {"params": {}, "train": {}}
    for name in names:
        recipe = PretrainRecipe(replace(cfg, pairwise=name == "model" and cfg.pairwise), store=store).setup()
        folder = out / "checkpoints" / name
        if not resume:  # a fresh run in a used folder: its old checkpoints must not outrank the new ones
            recipe.clear_training_state(folder)
        resumed_at = recipe.step if resume and recipe.resume(folder) else None
        history = recipe.train(
            on_log=(lambda e, n=name: on_log(n, e)) if on_log else None,
            on_eval=(lambda e, n=name: on_eval(n, e)) if on_eval else None,
            checkpoint_dir=folder,
        )
        preds = recipe.predict()
        if name == "model":
            first, first_preds = recipe, preds
        else:  # both models are scored on exactly the same masked beats
            assert np.array_equal(preds.song, first_preds.song) and np.array_equal(preds.beat, first_preds.beat)
        scored[name] = score(preds.prob, preds.truth, recipe.groups)
        meta["params"][name] = recipe.module.n_params()
        key = "history" if name == "model" else "plain_history"
        meta["train"][key] = history
        meta["train"].setdefault("resumed_at", {})[name] = resumed_at
        if recipe.rank == 0:
            recipe.save_checkpoint(out / MODELS[name])
    if first.rank != 0:
        return None
    stats = train_stats(first.handle, first.train_songs, cfg.max_stat_songs, cfg.seed)
    for name, prob in baseline_probs(stats, first.handle, first_preds).items():
        scored[name] = score(prob, first_preds.truth, first.groups)
    meta["train"].update(config=asdict(cfg), model_config=asdict(first.model_config), deepspeed=first.ds_config)
    meta["train"]["world_size"] = first.world_size
    meta["eval"] = {
        "n_train_songs": len(first.train_songs),
        "n_val_songs": len(first.val_songs),
        "n_scored_beats": len(first_preds.song),
        "n_features": len(first.feature_names),
        "split": "sha1(content_hash) mod 10 == 0 is validation",
    }
    meta["pair_features"] = len(PAIR_FEATURE_NAMES)
    meta["seconds"] = time.perf_counter() - t0
    report = build_report(scored, meta)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    return report
