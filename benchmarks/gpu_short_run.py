"""A short GPU training run: GiGPO with SmolLM2-135M-Instruct on the built-in ALFWorld games, on CUDA
(bf16 autocast, float32 master weights), printing per-iteration throughput, phase times and memory.

    python benchmarks/gpu_short_run.py --out /tmp/gpu_run                 # score mode, 4 iterations
    python benchmarks/gpu_short_run.py --out /tmp/gpu_run --action-mode generate --iterations 2

It is the check to run first on a GPU machine (the figures in the closing notes came from it): the
same trainer as on CPU, at a size that finishes in a few minutes. It measures speed and memory, not
learning (SmolLM2-135M wins no built-in game in 20 steps, so advantages are zero; see
benchmarks/learning_signal.py for a run that learns).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

KEYS = ("iteration", "eval/success", "train/success", "train/tokens_per_s", "rollout/completion_tokens_per_s",
        "env/steps_per_s", "train/kl", "train/approx_kl", "train/grad_norm", "train/skipped_steps",
        "train/logprob_diff")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="output folder (run folders go below it)")
    p.add_argument("--action-mode", choices=("score", "generate"), default="score")
    p.add_argument("--iterations", type=int, default=4)
    p.add_argument("--groups", type=int, default=4, help="B: tasks per iteration")
    p.add_argument("--group-size", type=int, default=8, help="G: rollouts per task")
    p.add_argument("--lr", type=float, default=1e-5)
    p.add_argument("--model", default="smollm2")
    args = p.parse_args(argv)

    import torch

    if not torch.cuda.is_available():
        p.error("no CUDA device: this benchmark is for GPU machines (the tiny configs cover CPU)")
    from siri_bench.config import load_config
    from siri_bench.runner import run_experiment

    overrides = [f"output_dir={args.out}", f"policy.model={args.model}", "policy.device=cuda",
                 f"policy.action_mode={args.action_mode}", "policy.cpu_threads=null", "policy.max_new_tokens=64",
                 "env.max_steps=20", f"iterations={args.iterations}", f"train.groups_per_iter={args.groups}",
                 f"train.group_size={args.group_size}", f"train.lr={args.lr}", "train.minibatch_size=64",
                 "train.micro_batch_size=16", "eval.num_tasks=24", "eval.concurrency=24", "eval.every=1",
                 "train.checkpoint_every=100", f"name=gpu_gigpo_{args.action_mode}"]
    cfg = load_config(Path(__file__).resolve().parents[1] / "configs" / "gigpo_alfworld_tiny.yaml", overrides)
    torch.cuda.reset_peak_memory_stats()
    start = time.time()
    rc = run_experiment(cfg, write_report=False)
    wall = time.time() - start
    for path in sorted(args.out.rglob("metrics.jsonl")):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            shown = {k: v for k, v in row.items() if k in KEYS or k.startswith(("time/", "gpu/"))}
            print({k: (float(f"{v:.4g}") if isinstance(v, float) else v) for k, v in shown.items()})
    print(f"{torch.cuda.get_device_name()}: wall {wall:.1f} s, peak allocated "
          f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB, reserved {torch.cuda.max_memory_reserved() / 2**30:.2f} GiB")
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
