"""Every training step goes through a DeepSpeed engine: one CPU process, CPU ranks (gloo), one or many GPUs.

The DeepSpeed config is generated from the recipe's ``PretrainConfig`` (ZeRO stage, bf16 on GPUs and fp32 on
CPUs, micro-batch, gradient accumulation, clipping, linear warmup then cosine decay to 10% of the peak) and a
JSON file can override it key by key (``PretrainConfig.ds_config``). The recipe's decay/no-decay AdamW is the
client optimizer; DeepSpeed builds the schedule.

Outside a launcher (``bat pretrain`` in a shell, a test, a Prefect task) ``ensure_process_group`` makes the
process a world of one; under ``deepspeed --num_gpus N -m bat.cli pretrain ...`` the launcher's RANK,
WORLD_SIZE and MASTER_* variables are used. CPUs talk through gloo, GPUs through NCCL.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from bat.train.recipe import PretrainConfig

ZERO_STAGES = (0, 1, 2)  # stage 3 partitions the parameters, which the held-out evaluation reads whole


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def deepspeed_config(
    cfg: PretrainConfig, world_size: int = 1, on_gpu: bool | None = None, overrides: str | Path | dict | None = None
) -> dict[str, Any]:
    """The DeepSpeed JSON config for ``cfg``; ``overrides`` (default ``cfg.ds_config``, a JSON file, or a dict)
    is merged over it."""
    if cfg.zero_stage not in ZERO_STAGES:
        raise ValueError(f"ZeRO stage must be one of {ZERO_STAGES}, got {cfg.zero_stage}")
    on_gpu = torch.cuda.is_available() if on_gpu is None else on_gpu
    warmup = max(1, min(cfg.warmup_steps, cfg.steps))
    config = {
        "train_micro_batch_size_per_gpu": cfg.batch_size,
        "gradient_accumulation_steps": cfg.grad_accum,
        "train_batch_size": cfg.batch_size * cfg.grad_accum * world_size,
        "gradient_clipping": cfg.grad_clip,
        "zero_optimization": {"stage": cfg.zero_stage},
        "zero_allow_untested_optimizer": True,  # the client AdamW with its two weight-decay groups
        "bf16": {"enabled": on_gpu},  # fp32 on a CPU
        "scheduler": {
            "type": "WarmupCosineLR",
            "params": {
                "total_num_steps": max(1, cfg.steps),
                "warmup_num_steps": warmup,
                "warmup_min_ratio": 1.0 / warmup,  # the first step already moves
                "warmup_type": "linear",
                "cos_min_ratio": 0.1,
            },
        },
        "steps_per_print": 10**9,  # the recipe logs; DeepSpeed's own prints would interleave across ranks
        "wall_clock_breakdown": False,
    }
    if overrides is None:
        overrides = cfg.ds_config or None
    if overrides:
        if not isinstance(overrides, dict):
            try:
                overrides = json.loads(Path(overrides).read_text())
            except (OSError, json.JSONDecodeError) as e:
                raise ValueError(f"DeepSpeed config {overrides}: cannot read it as JSON ({e})") from e
        config = _merge(config, overrides)
    return config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_process_group(on_gpu: bool) -> tuple[int, int]:
    """Join the launcher's torch.distributed group, or outside a launcher create a world of one on a free
    loopback port; returns (rank, world_size).

    A world of one is set up without writing RANK/MASTER_PORT into the environment: processes this one starts
    later (a Prefect runner's flow runs, a DeepSpeed launcher) must not believe they are rank 0 of it.
    ``RANK`` in the environment is what says "under a launcher"."""
    if not torch.distributed.is_initialized():
        backend = "nccl" if on_gpu else "gloo"
        if "RANK" in os.environ:  # under a launcher (deepspeed, torchrun): env:// rendezvous
            import deepspeed

            deepspeed.init_distributed(dist_backend=backend, verbose=False)
        else:
            os.environ.setdefault("LOCAL_RANK", "0")  # DeepSpeed's engine insists; harmless without RANK
            init = f"tcp://127.0.0.1:{free_port()}"
            torch.distributed.init_process_group(backend, init_method=init, rank=0, world_size=1)
    return torch.distributed.get_rank(), torch.distributed.get_world_size()


def make_optimizer(model: torch.nn.Module, cfg: PretrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not on biases, norms and the [MASK] vector)."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr)


def build_engine(model: torch.nn.Module, cfg: PretrainConfig, world_size: int, on_gpu: bool):
    """``(engine, optimizer, scheduler, ds_config)`` around ``model``; the process group must exist."""
    import deepspeed

    ds_config = deepspeed_config(cfg, world_size=world_size, on_gpu=on_gpu)
    engine, optimizer, _, scheduler = deepspeed.initialize(
        model=model, optimizer=make_optimizer(model, cfg), config=ds_config, dist_init_required=False
    )
    return engine, optimizer, scheduler, ds_config
