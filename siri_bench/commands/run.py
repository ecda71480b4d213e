"""``siri-bench run CONFIG [key=value ...]``: run an experiment (every grid cell and seed)."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run", help="run an experiment file (training and/or evaluation, grids, resumable)",
        description="Run an experiment file: expand its grid and seeds into runs, skip runs that are "
                    "DONE, resume interrupted ones from their last checkpoint, and write one folder per "
                    "run under output_dir/name/. Overrides use dotted keys, e.g. train.lr=1e-5 seeds=[0,1,2].",
    )
    p.add_argument("config", help="experiment YAML file (see configs/)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="dotted overrides of the config")
    p.add_argument("--dry-run", action="store_true", help="list the runs and exit")
    p.add_argument("--workers", type=int, default=1,
                   help="runs executed in parallel (local process pool); with --backend ray: the most runs in "
                        "flight (1: as many as the cluster's resources allow)")
    p.add_argument("--backend", choices=["local", "ray"], default="local", help="where runs execute")
    p.add_argument("--processes", type=int, default=None,
                   help="trainer processes per run (train.processes; data parallel over whole rollout groups)")
    p.add_argument("--device", default=None,
                   help="policy.device for every run: cpu, cuda (with --processes N: process r takes GPU r) or auto")
    p.add_argument("--restart", action="store_true", help="delete existing run folders and start over")
    p.add_argument("--no-report", action="store_true", help="do not write a report after the runs")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from siri_bench.config import load_config
    from siri_bench.runner import run_experiment

    overrides = list(args.overrides)
    if args.processes is not None:
        overrides.append(f"train.processes={args.processes}")
    if args.device is not None:
        overrides.append(f"policy.device={args.device}")
    cfg = load_config(args.config, overrides)
    return run_experiment(cfg, dry_run=args.dry_run, workers=args.workers, backend=args.backend,
                          restart=args.restart, write_report=not args.no_report)
