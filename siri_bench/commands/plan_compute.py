"""``siri-bench plan-compute CONFIG [key=value ...]``: memory per GPU and tokens per iteration."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plan-compute", help="estimate memory per GPU and tokens per iteration of an experiment (no launch)",
        description="Estimate, before launching, the memory each trainer GPU needs (weights, gradients, AdamW "
                    "state, reference policy, activations, logits, vLLM engine and KV cache) in the rollout and "
                    "update phases, whether that fits resources.gpu_memory_gib, and the tokens of one iteration. "
                    "The assumptions are in siri_bench/distributed/plan.py and docs/scale.md.",
    )
    p.add_argument("config", help="experiment YAML file (see configs/)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="dotted overrides of the config")
    p.add_argument("--processes", type=int, default=None, help="train.processes")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from siri_bench.config import load_config
    from siri_bench.distributed.plan import plan_compute

    overrides = list(args.overrides)
    if args.processes is not None:
        overrides.append(f"train.processes={args.processes}")
    cfg = load_config(args.config, overrides)
    plan = plan_compute(cfg)
    print(f"{cfg.name}:")
    print("\n".join(plan.lines()))
    return 0 if plan.fits is not False else 1
