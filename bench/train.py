"""Training throughput and memory through the real recipe: DeepSpeed engine, ZeRO stage, bf16 on a GPU.

    .venv/bin/python bench/train.py                                   # tiny and small, ZeRO 0 and 2, on the CPU
    .venv/bin/python bench/train.py --configs small --zero 2 --max-len 512 --batch 16   # on a GPU: bf16
    .venv/bin/deepspeed --num_gpus 8 --no_local_rank bench/train.py --configs base --zero 2   # many GPUs

For each config and ZeRO stage: optimizer steps of the pairwise encoder on ``--store`` (default made-up
songs, so it runs anywhere), after warm-up steps. Prints beats/s (all ranks), steps/s, and peak memory: the
GPU's max allocated bytes, or the process's peak resident set on a CPU. Only rank 0 prints.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bat.train.recipe import PretrainConfig, PretrainRecipe  # noqa: E402


def measure(cfg: PretrainConfig, steps: int, warmup: int) -> dict:
    recipe = PretrainRecipe(cfg).setup()
    recipe.train(steps=warmup)
    on_gpu = recipe.device.type == "cuda"
    if on_gpu:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    history = recipe.train(steps=warmup + steps)
    if on_gpu:
        torch.cuda.synchronize()
    last = history[-1]
    peak = torch.cuda.max_memory_allocated() if on_gpu else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "beats_per_s": last["beats_per_s"],
        "steps_per_s": last["steps_per_s"],
        "peak_mb": peak / 2**20,
        "params": recipe.module.n_params(),
        "device": str(recipe.device),
        "bf16": recipe.ds_config["bf16"]["enabled"],
        "world_size": recipe.world_size,
        "rank": recipe.rank,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", default="synthetic:300", help="store path, or synthetic:N")
    parser.add_argument("--configs", nargs="+", default=["tiny", "small"], help="model configs")
    parser.add_argument("--zero", nargs="+", type=int, default=[0, 2], help="ZeRO stages")
    parser.add_argument("--max-len", type=int, default=512, help="beats per window")
    parser.add_argument("--batch", type=int, default=8, help="windows per micro-batch per rank")
    parser.add_argument("--steps", type=int, default=10, help="timed optimizer steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    args = parser.parse_args()
    base = PretrainConfig(store=args.store, batch_size=args.batch, max_len=args.max_len, log_every=10**9,
                          checkpoint_every=0, warmup_steps=1, steps=args.warmup + args.steps)
    rows = []
    for name in args.configs:
        for zero in args.zero:
            r = measure(replace(base, model=name, zero_stage=zero), args.steps, args.warmup)
            rows.append((name, zero, r))
    if rows and rows[0][2]["rank"] != 0:
        return
    print(f"device {rows[0][2]['device']}, bf16 {rows[0][2]['bf16']}, ranks {rows[0][2]['world_size']}, "
          f"max_len {args.max_len}, batch {args.batch} per rank, {args.steps} timed steps")
    print(f"{'config':<8}{'zero':>5}{'params':>12}{'beats/s':>12}{'steps/s':>10}{'peak MB':>10}")
    for name, zero, r in rows:
        print(f"{name:<8}{zero:>5}{r['params']:>12,}{r['beats_per_s']:>12,.0f}{r['steps_per_s']:>10.2f}"
              f"{r['peak_mb']:>10,.0f}")


if __name__ == "__main__":
    main()
