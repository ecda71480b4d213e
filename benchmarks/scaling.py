"""Iteration time and its phases with 1 and N trainer processes (data parallel over whole groups).

    python benchmarks/scaling.py                                  # tiny model, CPU, 1 vs 2 processes
    python benchmarks/scaling.py --device cuda --processes 1 2    # GPU: process r on GPU r
    python benchmarks/scaling.py --model Qwen/Qwen2.5-0.5B-Instruct --device cuda --backend vllm

Runs ``--config`` (default: the tiny GiGPO ALFWorld config) for ``--iterations`` with each process
count in ``--processes`` (the same groups, seeds and update: the processes only split the work),
then prints per process count the mean over the steady iterations (the first, warm-up, and the
last, which evaluates, are left out) of: the iteration, rollout (and its env and policy parts:
the slowest process's), advantage, update, weight sync and communication seconds, the speedup
against the first process count, and the fraction of the iteration spent in collectives
(``time/comm_s``: waiting for the other processes included). Start-up (process spawn, model load)
is reported separately as ``start_s``; on GPU, the peak memory torch allocated (``GPU GiB``, the
largest over processes and iterations). Process counts above the visible GPUs are skipped.

On the shared 2-core CPU machine, 2 processes compete with each other for the same 2 cores (and
with other jobs), so the CPU figures measure the overhead of the parallel machinery more than a
speedup; the GPU path is where data parallelism pays.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))   # run from a checkout without installing

PHASES = ("iteration_s", "rollout_s", "rollout_env_s", "rollout_policy_s", "advantage_s", "update_s", "sync_s",
          "comm_s")


def run_once(config: str, processes: int, overrides: list[str], out: Path) -> tuple[list[dict], float]:
    from siri_bench.config import expand_runs, load_config
    from siri_bench.runner import execute_run

    spec = expand_runs(load_config(config, [f"output_dir={out}", f"train.processes={processes}", *overrides]))[0]
    t0 = time.monotonic()
    run = execute_run(spec)
    wall = time.monotonic() - t0
    rows = run.read_metrics()
    return rows, wall - sum(r.get("time/iteration_s", 0.0) for r in rows)


def steady(rows: list[dict]) -> list[dict]:
    body = [r for r in rows if r["iteration"] > 0]
    return body[1:-1] if len(body) > 2 else body


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=str(ROOT / "configs" / "gigpo_alfworld_tiny.yaml"))
    ap.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--iterations", type=int, default=4)
    ap.add_argument("--groups", type=int, default=4, help="train.groups_per_iter (split over the processes)")
    ap.add_argument("--group-size", type=int, default=4, help="train.group_size")
    ap.add_argument("--device", default="cpu", help="policy.device (cuda: process r on GPU r)")
    ap.add_argument("--model", default=None, help="policy.model (default: the config's)")
    ap.add_argument("--backend", default=None, help="policy.backend (hf or vllm)")
    ap.add_argument("--strategy", default="ddp", help="train.strategy (ddp or fsdp)")
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    ap.add_argument("overrides", nargs="*", help="more dotted config overrides")
    args = ap.parse_args()

    import os

    os.environ.setdefault("ALFWORLD_DATA", "/work/data/alfworld")
    overrides = [f"iterations={args.iterations}", "eval.at_start=false", "eval.every=1000000", "eval.num_tasks=1",
                 f"train.groups_per_iter={args.groups}", f"train.group_size={args.group_size}",
                 f"train.checkpoint_every={args.iterations}", f"policy.device={args.device}",
                 f"train.strategy={args.strategy}", *args.overrides]
    if args.model:
        overrides.append(f"policy.model={args.model}")
    if args.backend:
        overrides.append(f"policy.backend={args.backend}")
    if args.device.startswith("cuda"):
        import torch

        gpus = torch.cuda.device_count()
        skipped = [n for n in args.processes if n > gpus]
        if skipped:
            print(f"skipping {skipped} process(es): {gpus} GPU(s) visible (one GPU per process)")
        args.processes = [n for n in args.processes if n <= gpus]
        if not args.processes:
            raise SystemExit("no CUDA GPU is visible")
    results: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="siri-bench-scaling-") as tmp:
        for n in args.processes:
            rows, start_s = run_once(args.config, n, overrides, Path(tmp) / f"p{n}")
            body = steady(rows)
            figures = {p: statistics.fmean(r.get(f"time/{p}", 0.0) for r in body) for p in PHASES}
            figures["tokens_per_s"] = statistics.fmean(r["train/tokens_per_s"] for r in body)
            figures["gpu_max_allocated_gib"] = max((r.get("gpu/max_allocated_gib", 0.0) for r in rows), default=0.0)
            figures["start_s"] = start_s
            figures["iterations_measured"] = len(body)
            results[n] = figures
    base = results[args.processes[0]]["iteration_s"]
    head = f"{'processes':>9} " + " ".join(f"{p:>16}" for p in PHASES) + f" {'tokens/s':>9} {'speedup':>8} " \
        f"{'comm %':>7} {'start_s':>8} {'GPU GiB':>8}"
    print(f"config {Path(args.config).name}, device {args.device}, B={args.groups} x G={args.group_size}, "
          f"strategy {args.strategy}; seconds per iteration (mean of the steady iterations)")
    print(head)
    for n, f in results.items():
        print(f"{n:>9} " + " ".join(f"{f[p]:>16.3f}" for p in PHASES) + f" {f['tokens_per_s']:>9.0f} "
              f"{base / f['iteration_s']:>8.2f} {100 * f['comm_s'] / f['iteration_s']:>6.1f}% {f['start_s']:>8.1f} "
              f"{f['gpu_max_allocated_gib']:>8.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results}, indent=2))


if __name__ == "__main__":
    main()
