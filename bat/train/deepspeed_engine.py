"""Run the pretraining recipe under DeepSpeed: a config generated from ``PretrainConfig``, then
``deepspeed.initialize`` wrapping the recipe's model so the recipe's step loop drives the DeepSpeed engine.

    recipe = PretrainRecipe(cfg).setup()
    ds_config = deepspeed_config(cfg, zero_stage=1, overrides="ds.json")   # the JSON file wins key by key
    wrap_with_deepspeed(recipe, ds_config)                                 # recipe.engine is recipe.model
    recipe.train()

One process: set MASTER_ADDR, MASTER_PORT, RANK=0, WORLD_SIZE=1, LOCAL_RANK=0 (``single_process_env``).
Many: ``deepspeed --num_gpus N ...`` sets them. On a CPU the process group uses gloo and the engine trains in
fp32; on a GPU in bf16 with NCCL. The recipe's decay/no-decay AdamW is the client optimizer; DeepSpeed
schedules it (linear warmup, cosine decay to 10% of the peak, as ``make_optimizer`` does).
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import torch

from bat.train.recipe import PretrainConfig, PretrainRecipe, make_optimizer, run_pretrain


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def deepspeed_config(
    cfg: PretrainConfig,
    zero_stage: int = 0,
    grad_accum: int = 1,
    world_size: int = 1,
    on_gpu: bool | None = None,
    overrides: str | Path | dict | None = None,
) -> dict[str, Any]:
    """The DeepSpeed JSON config for ``cfg``; ``overrides`` (a JSON file or dict) is merged over it."""
    on_gpu = torch.cuda.is_available() if on_gpu is None else on_gpu
    total = max(1, cfg.steps // grad_accum)  # optimizer steps: the recipe counts micro-steps
    warmup = min(cfg.warmup_steps, total)
    config = {
        "train_micro_batch_size_per_gpu": cfg.batch_size,
        "gradient_accumulation_steps": grad_accum,
        "train_batch_size": cfg.batch_size * grad_accum * world_size,
        "gradient_clipping": cfg.grad_clip,
        "zero_optimization": {"stage": zero_stage},
        "bf16": {"enabled": on_gpu},  # fp32 on a CPU
        "scheduler": {
            "type": "WarmupCosineLR",
            "params": {
                "total_num_steps": total,
                "warmup_num_steps": max(1, warmup),
                "warmup_min_ratio": 1.0 / max(1, warmup),  # the first step already moves, as in make_optimizer
                "warmup_type": "linear",
                "cos_min_ratio": 0.1,
            },
        },
        "steps_per_print": max(1, cfg.log_every),
        "wall_clock_breakdown": False,
    }
    if overrides is not None:
        if not isinstance(overrides, dict):
            try:
                overrides = json.loads(Path(overrides).read_text())
            except (OSError, json.JSONDecodeError) as e:
                raise ValueError(f"DeepSpeed config {overrides}: cannot read it as JSON ({e})") from e
        config = _merge(config, overrides)
    return config


def single_process_env(port: int | None = None) -> dict[str, str]:
    """Set (and return) the rendezvous variables of a one-process DeepSpeed run; keeps ones already set."""
    if port is None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
    env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0"}
    for key, value in env.items():
        os.environ.setdefault(key, value)
    return {key: os.environ[key] for key in env}


def wrap_with_deepspeed(recipe: PretrainRecipe, ds_config: dict) -> PretrainRecipe:
    """Replace ``recipe.model``/``recipe.engine`` by a DeepSpeed engine around the recipe's encoder."""
    import deepspeed

    on_gpu = recipe.device.type == "cuda"
    if not torch.distributed.is_initialized():
        deepspeed.init_distributed(dist_backend="nccl" if on_gpu else "gloo", verbose=False)
    optimizer, _ = make_optimizer(recipe.module, recipe.cfg)  # DeepSpeed builds the scheduler from ds_config
    engine, optimizer, _, scheduler = deepspeed.initialize(
        model=recipe.module, optimizer=optimizer, config=ds_config, dist_init_required=False
    )
    recipe.model = recipe.engine = engine
    recipe.optimizer, recipe.scheduler = optimizer, scheduler
    recipe.ds_config = ds_config
    return recipe


def run_pretrain_deepspeed(
    cfg: PretrainConfig,
    out: str | Path,
    ds_config: dict | None = None,
    compare_plain: bool = True,
    store=None,
    on_log=None,
) -> dict:
    """``run_pretrain`` with every ``PretrainRecipe`` it builds trained through a DeepSpeed engine
    (``ds_config``: default ``deepspeed_config(cfg)``); ``report["train"]["deepspeed"]`` holds the config."""
    from bat.train import recipe as recipe_module

    if "RANK" not in os.environ:  # not under the deepspeed launcher: one process
        single_process_env()
    ds_config = ds_config or deepspeed_config(cfg)

    class DeepSpeedRecipe(PretrainRecipe):
        def setup(self):
            super().setup()
            return wrap_with_deepspeed(self, ds_config)

    original = recipe_module.PretrainRecipe
    recipe_module.PretrainRecipe = DeepSpeedRecipe  # run_pretrain builds its recipes by this name
    try:
        report = run_pretrain(cfg, out, compare_plain=compare_plain, store=store, on_log=on_log)
    finally:
        recipe_module.PretrainRecipe = original
    report["train"]["deepspeed"] = ds_config
    (Path(out) / "report.json").write_text(json.dumps(report, indent=2))
    return report
