"""Cost of the pairwise first layer against a plain SDPA layer at L=512 beats: time and peak memory.

    .venv/bin/python bench/attention.py                       # CPU here; CUDA + bf16 where a GPU is present
    .venv/bin/python bench/attention.py --config base --batch 8 --device cuda

Each layer is one pre-norm block (attention + MLP) of the chosen config, forward + backward, with the inputs
it needs computed inside the timed region: the pairwise layer computes the pair features from the beat
descriptors and projects them; the plain layer computes its beat/bar distance buckets. Peak memory: on CUDA
``torch.cuda.max_memory_allocated`` above what was allocated before the step; on CPU, each layer runs in a
fresh process and the peak resident set (``ru_maxrss``) above the resident set before the step is reported.
Windows are real-looking: synthetic songs (``bat.data.synthetic``) with repeating progressions.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bat.data.synthetic import synthetic_song  # noqa: E402
from bat.model.config import get_config  # noqa: E402
from bat.model.encoder import Block, attention_context  # noqa: E402
from bat.model.pairwise import N_PAIR  # noqa: E402


def _inputs(batch: int, length: int, d_model: int, device: str):
    bars = length // 3 + 1  # enough bars in 3/4 or 4/4
    songs = [synthetic_song(seed=0, number=k, min_bars=bars, max_bars=bars + 40) for k in range(batch)]
    desc = torch.stack([torch.from_numpy(s.descriptors[:length]) for s in songs]).to(device)  # (B, L, D)
    valid = torch.ones(batch, length, dtype=torch.bool, device=device)
    masked = torch.rand(batch, length, device=device) < 0.15
    x = torch.randn(batch, length, d_model, device=device)
    return desc, valid, masked, x


def _step(block: Block, desc, valid, masked, x) -> None:
    """One forward + backward of the block, its pair features / distance buckets included."""
    ctx = attention_context(desc, valid, masked, pairwise=block.pairwise, relative=not block.pairwise)
    x = x.detach().requires_grad_()
    block(x, ctx).float().square().mean().backward()


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def measure(pairwise: bool, args) -> dict:
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    cfg = get_config(args.config)
    device = args.device
    block = Block(cfg, pairwise=pairwise, d_hidden=cfg.mlp_ratio * cfg.d_model).to(device)
    desc, valid, masked, x = _inputs(args.batch, args.length, cfg.d_model, device)
    cuda = device.startswith("cuda")
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda)
    if cuda:
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    else:
        base = _rss_bytes()
    with autocast:
        _step(block, desc, valid, masked, x)  # cold step: the memory measurement
    block.zero_grad(set_to_none=True)
    if cuda:
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    times = []
    for _ in range(args.repeat):
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with autocast:
            _step(block, desc, valid, masked, x)
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        block.zero_grad(set_to_none=True)
    n_params = sum(p.numel() for p in block.parameters())
    return {"ms": 1000 * statistics.median(times), "peak_mb": peak / 2**20, "params": n_params}


def _child(pairwise: bool, args, queue) -> None:
    queue.put(measure(pairwise, args))


def measure_isolated(pairwise: bool, args) -> dict:
    """On CPU, a fresh process per layer so that one layer's freed memory does not hide the other's peak."""
    if args.device.startswith("cuda"):
        return measure(pairwise, args)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(pairwise, args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="small", help="model config whose layer is measured (tiny, small, base)")
    parser.add_argument("--length", type=int, default=512, help="beats per window")
    parser.add_argument("--batch", type=int, default=None, help="windows per batch (default: 1 on CPU, 8 on CUDA)")
    parser.add_argument("--repeat", type=int, default=3, help="timed repetitions (median reported)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (1: steadier timings on a shared machine)")
    args = parser.parse_args()
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.batch is None:
        args.batch = 8 if args.device.startswith("cuda") else 1
    cfg = get_config(args.config)
    print(
        f"{args.config}: d_model={cfg.d_model} heads={cfg.n_heads} d_pair={cfg.d_pair} pair features={N_PAIR}; "
        f"L={args.length} batch={args.batch} device={args.device}"
        + (" bf16" if args.device.startswith("cuda") else f" threads={args.threads}")
    )
    pair = measure_isolated(True, args)
    plain = measure_isolated(False, args)
    print(f"{'layer':<10} {'fwd+bwd ms':>11} {'peak MiB':>9} {'params':>9}")
    for name, r in (("pairwise", pair), ("plain", plain)):
        print(f"{name:<10} {r['ms']:>11.1f} {r['peak_mb']:>9.1f} {r['params']:>9,}")
    time_ratio, memory_ratio = pair["ms"] / plain["ms"], pair["peak_mb"] / max(plain["peak_mb"], 1e-9)
    print(f"ratio pairwise/plain: time {time_ratio:.2f}x, peak memory {memory_ratio:.2f}x")


if __name__ == "__main__":
    main()
