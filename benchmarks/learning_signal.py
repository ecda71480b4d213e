"""Learning-signal benchmark: does RL raise the success rate, and does GiGPO beat GRPO?

It trains GRPO and GiGPO over several seeds on a task small enough for a CPU: the built-in
generated ALFWorld games (``builtin_train`` / ``builtin_eval``, real TextWorld engine, no download),
restricted to the two short task types ``look_at_obj_in_light`` and ``pick_and_place_simple``
(expert plans of 3-5 steps; 8 eval games), with a 15-step limit. The policy acts in ``score``
mode (it picks among the admissible actions by their summed token log-likelihood).

Why a warm start: a randomly initialised model in score mode is not a random policy. Every token
costs about log(1/vocab) nats, so the shortest candidate ("look", "help") wins by tens of nats, the
policy repeats it, never wins, and GRPO/GiGPO get no signal (all-equal returns give zero advantage).
So each seed first runs ``sft`` (behaviour cloning on the games' walkthroughs, score mode) for a few
iterations, and GRPO and GiGPO of that seed both start from that checkpoint
(``train.init_from``); the pair of runs of one seed shares its starting policy, so the comparison is
paired by seed. Iteration 0 of every RL run evaluates that starting policy.

Everything runs through the ordinary runner (:func:`siri_bench.runner.run_experiment`), so the run
folders are normal ones: ``OUT/learning_signal_sft/sft-alfworld-s{seed}`` and
``OUT/learning_signal/{grpo,gigpo}-alfworld-s{seed}`` (``siri-bench report OUT/learning_signal``
reads them). A second invocation with the same arguments skips finished runs; changed arguments
need ``--restart`` or another ``--out``.

Figures (printed, and written to ``OUT/learning_signal.json`` and ``OUT/learning_signal.png``):
eval success per evaluated iteration (mean and 95% Student-t interval over seeds,
:func:`reports.stats.curve_intervals`), final success per algorithm (:func:`reports.stats.t_interval`),
the gain over the starting policy per algorithm (paired t over seeds), and GiGPO minus GRPO (paired
t over seeds, and Welch's t; :func:`reports.stats.compare`).

    python benchmarks/learning_signal.py                          # tiny model, CPU (~16-20 min, 1 core)
    python benchmarks/learning_signal.py --seeds 0 1 2 3 4        # more seeds
    python benchmarks/learning_signal.py --model smollm2 --device cuda --out runs/ls_smollm2

The RL runs' policy is softmax(summed log-probs / 2) (``--score-temperature 2``, in training and
evaluation): after the warm start the policy at temperature 1 is nearly deterministic (entropy
0.1-0.5 nats per step), most groups' rollouts all fail alike and give no advantage, and the first
measurement at temperature 1 barely moved (docs/learning_signal.md).

CPU budget of the default invocation: 3 seeds x (sft 10 iterations + GRPO 10 + GiGPO 10), one
process with one torch thread (``policy.cpu_threads = 1``); measured 16.4 minutes of wall time
(9 CPU-minutes) on a shared 2-core machine; it must stay under 60. The figures measured are in
``docs/learning_signal.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reports.stats import StatisticsWarning, compare, curve_intervals, t_interval  # noqa: E402
from siri_bench.config import ExperimentConfig  # noqa: E402
from siri_bench.logs import setup_logging  # noqa: E402
from siri_bench.runner import run_experiment  # noqa: E402
from siri_bench.store import RunDir  # noqa: E402

ALGORITHMS = ("grpo", "gigpo", "siri")
GRID_ALGORITHMS = ("grpo", "gigpo")     # one grid; SIRI has its own algorithm section

#: SIRI on GiGPO, sized to this budget (10 iterations): 3 warm-up iterations, mining every 2 from 2
#: successes per category, one validation pair per iteration, promotion after one validation. The
#: skill writer is ``template`` (the action pattern the successes share): a random-init model cannot
#: write a skill, and SmolLM2-135M writes placeholders (docs/siri.md).
SIRI_ALGORITHM: dict[str, Any] = {"name": "siri", "warmup_iters": 3, "mine_every": 2, "mine_min_success": 2,
                                  "mine_k": 2, "skill_writer": "template", "min_validations": 1,
                                  "validation_pairs": 1, "lambda_warmup_iters": 2}
RL_EXPERIMENT = "learning_signal"
SFT_EXPERIMENT = "learning_signal_sft"

#: Per-model defaults: the model alias, the warm start, and the learning rates.
#: tiny-random: measured here (docs/learning_signal.md). smollm2: a pretrained model whose
#: candidate likelihoods already make sense, so no warm start by default; its learning rate is the
#: usual order for RL on a ~100M model and was not tuned (run it on a GPU: --device cuda).
PRESETS: dict[str, dict[str, Any]] = {
    "tiny-random": {"model": "tiny-random", "warm_start": "sft", "sft_lr": 1e-2, "lr": 2e-3},
    "smollm2": {"model": "smollm2-135m-instruct", "warm_start": "none", "sft_lr": 1e-5, "lr": 5e-6},
}

ENV = {
    "id": "siri_bench/ALFWorld-v0",
    "train_split": "builtin_train",
    "eval_split": "builtin_eval",
    "task_types": ["look_at_obj_in_light", "pick_and_place_simple"],
    "max_steps": 15,
}


def policy_section(args: argparse.Namespace, tau: float) -> dict[str, Any]:
    """``tau`` is the candidate softmax temperature: the policy is softmax(summed log-probs / tau)."""
    return {"model": PRESETS[args.model]["model"], "device": args.device, "action_mode": "score",
            "max_prompt_tokens": 2048, "history_length": 2, "score_temperature": tau,
            "cpu_threads": args.threads}


def eval_section(args: argparse.Namespace, every: int, at_start: bool, tau: float) -> dict[str, Any]:
    # Sampled at the policy's own temperature (not argmax): the success rate of the policy being
    # trained, averaged over episodes_per_task samples of each eval game.
    return {"num_tasks": args.eval_tasks, "episodes_per_task": args.eval_episodes, "every": every,
            "at_start": at_start, "score_temperature": tau, "concurrency": 16, "keep_transcripts": "none"}


def sft_config(args: argparse.Namespace, seed: int) -> ExperimentConfig:
    """Behaviour cloning on walkthroughs: the starting policy of both RL runs of ``seed``."""
    return ExperimentConfig(**{
        "name": SFT_EXPERIMENT,
        "description": "learning-signal benchmark: sft warm start (score mode)",
        "env": ENV, "policy": policy_section(args, 1.0), "algorithm": {"name": "sft"}, "seeds": [seed],
        "iterations": args.sft_iterations,
        "train": {"groups_per_iter": 8, "lr": args.sft_lr, "minibatch_size": 8, "micro_batch_size": 8,
                  "kl_coef": 0.0, "entropy_coef": 0.0, "checkpoint_every": args.sft_iterations,
                  "keep_checkpoints": 1},
        "eval": eval_section(args, every=args.sft_iterations, at_start=False, tau=1.0),
        "output_dir": str(args.out),
    })


def rl_config(args: argparse.Namespace, seed: int, init_from: str | None, siri: bool = False) -> ExperimentConfig:
    """GRPO and GiGPO (a grid over ``algorithm.name``) for one seed, from the same starting policy; with
    ``siri``, the SIRI run of that seed (same settings and starting policy, its own algorithm section)."""
    algorithm: dict[str, Any] = dict(SIRI_ALGORITHM) if siri else {"name": "grpo"}
    grid = {} if siri else {"algorithm.name": list(GRID_ALGORITHMS)}
    return ExperimentConfig(**{
        "name": RL_EXPERIMENT,
        "description": "learning-signal benchmark: GRPO vs GiGPO vs SIRI (score mode)",
        "env": ENV, "policy": policy_section(args, args.score_temperature),
        "algorithm": algorithm, "grid": grid, "seeds": [seed],
        "iterations": args.iterations,
        "train": {"groups_per_iter": args.groups, "group_size": args.group_size, "lr": args.lr,
                  "minibatch_size": 64, "micro_batch_size": 16, "kl_coef": args.kl_coef,
                  "checkpoint_every": args.iterations, "keep_checkpoints": 1, "init_from": init_from},
        "eval": eval_section(args, every=args.eval_every, at_start=True, tau=args.score_temperature),
        "output_dir": str(args.out),
    })


def run_all(args: argparse.Namespace) -> dict[str, float]:
    """Train every seed (sft, then GRPO and GiGPO); returns wall seconds per phase."""
    seconds = {"sft": 0.0, "rl": 0.0}
    for seed in args.seeds:
        init_from = None
        if args.warm_start == "sft":
            t0 = time.monotonic()
            cfg = sft_config(args, seed)
            if run_experiment(cfg, restart=args.restart, write_report=False) != 0:
                raise SystemExit(f"the sft run of seed {seed} failed; see {args.out / SFT_EXPERIMENT}")
            seconds["sft"] += time.monotonic() - t0
            init_from = str(args.out / SFT_EXPERIMENT / f"sft-alfworld-s{seed}")
        t0 = time.monotonic()
        for siri in (False, True):
            if run_experiment(rl_config(args, seed, init_from, siri=siri), restart=args.restart,
                              write_report=False) != 0:
                raise SystemExit(f"an RL run of seed {seed} failed; see {args.out / RL_EXPERIMENT}")
        seconds["rl"] += time.monotonic() - t0
        print(f"seed {seed} done ({(seconds['sft'] + seconds['rl']) / 60:.1f} min so far)", flush=True)
    return seconds


# ----------------------------------------------------------------------------------------------
# Figures
# ----------------------------------------------------------------------------------------------
def eval_curves(out: Path, seeds: list[int]) -> tuple[list[int], dict[str, np.ndarray]]:
    """Per algorithm that ran (a run folder for every seed), a seeds x evaluated-iterations matrix of
    ``eval/success`` (NaN: not evaluated)."""
    present = [a for a in ALGORITHMS
               if all((out / RL_EXPERIMENT / f"{a}-alfworld-s{seed}").is_dir() for seed in seeds)]
    if not present:
        raise SystemExit(f"no learning-signal runs under {out / RL_EXPERIMENT} for seeds {seeds}")
    rows: dict[str, dict[int, dict[int, float]]] = {a: {} for a in present}
    for algo in present:
        for seed in seeds:
            run = RunDir(out / RL_EXPERIMENT / f"{algo}-alfworld-s{seed}")
            rows[algo][seed] = {int(m["iteration"]): float(m["eval/success"]) for m in run.read_metrics()
                                if m.get("eval/success") is not None}
    iterations = sorted({i for per_seed in rows.values() for curve in per_seed.values() for i in curve})
    matrices = {a: np.array([[rows[a][s].get(i, np.nan) for i in iterations] for s in seeds]) for a in present}
    return iterations, matrices


def _ci(d: dict[str, float]) -> str:
    if not math.isfinite(d["low"]):
        return f"{d['point']:.3f}"
    return f"{d['point']:.3f} [{d['low']:.3f}, {d['high']:.3f}]"


def _comparison(x: np.ndarray, y: np.ndarray, paired: bool, names: tuple[str, str] = ("gigpo", "grpo")
                ) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticsWarning)
        c = compare(x, y, test="welch", paired=paired)
    return {"test": c.test, "estimate": c.estimate, "low": c.low, "high": c.high, "p_value": c.p_value,
            "alpha_reachable": c.alpha_reachable, "text": c.describe(*names)}


def figures(out: Path, seeds: list[int]) -> dict[str, Any]:
    """The benchmark's figures from the run folders (also usable on an earlier invocation's output)."""
    iterations, m = eval_curves(out, seeds)
    result: dict[str, Any] = {"iterations": iterations, "seeds": seeds, "algorithms": list(m), "curves": {},
                              "final": {}, "gain": {}}
    for algo in m:
        ci = curve_intervals(m[algo])
        result["curves"][algo] = {k: [float(v) for v in ci[k]] for k in ("point", "low", "high", "n")}
        result["curves"][algo]["per_seed"] = m[algo].tolist()
        result["final"][algo] = t_interval(m[algo][:, -1])
        if len(seeds) >= 2:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", StatisticsWarning)
                g = compare(m[algo][:, -1], m[algo][:, 0], test="paired_t", paired=True)
            result["gain"][algo] = {"estimate": g.estimate, "low": g.low, "high": g.high, "p_value": g.p_value,
                                    "text": g.describe(f"{algo} final", f"{algo} start")}
    if len(seeds) >= 2:
        for a, b in (("gigpo", "grpo"), ("siri", "gigpo")):
            if a not in m or b not in m:
                continue
            x, y = m[a][:, -1], m[b][:, -1]
            result[f"{a}_vs_{b}"] = {"paired": _comparison(x, y, paired=True, names=(a, b)),
                                     "welch": _comparison(x, y, paired=False, names=(a, b))}
    return result


def print_figures(fig: dict[str, Any]) -> None:
    its = fig["iterations"]
    print("\neval success per iteration (mean [95% t-interval] over seeds; iteration 0 = starting policy)")
    print(f"{'iteration':>9} | " + " | ".join(f"{a:^25}" for a in fig["algorithms"]))
    for j, it in enumerate(its):
        cells = []
        for algo in fig["algorithms"]:
            c = fig["curves"][algo]
            cells.append(f"{_ci({'point': c['point'][j], 'low': c['low'][j], 'high': c['high'][j]}):^25}")
        print(f"{it:>9} | " + " | ".join(cells))
    print("\nper seed (start -> final):")
    for algo in fig["algorithms"]:
        per_seed = fig["curves"][algo]["per_seed"]
        print(f"  {algo:6}: " + ", ".join(f"s{s} {row[0]:.3f} -> {row[-1]:.3f}" for s, row in zip(fig["seeds"], per_seed)))
    print(f"\nfinal success (iteration {its[-1]}):")
    for algo in fig["algorithms"]:
        print(f"  {algo:6}: {_ci(fig['final'][algo])}")
    for algo, g in fig.get("gain", {}).items():
        print(f"  gain {algo}: {g['text']}")
    for key, title in (("gigpo_vs_grpo", "GiGPO vs GRPO"), ("siri_vs_gigpo", "SIRI vs GiGPO")):
        if key in fig:
            print(f"\n{title} (final eval success):")
            print("  paired by seed: " + fig[key]["paired"]["text"])
            print("  unpaired:       " + fig[key]["welch"]["text"])


def plot(fig: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    its = np.asarray(fig["iterations"])
    f, ax = plt.subplots(figsize=(5.5, 3.6))
    for algo, color in zip(fig["algorithms"], ("tab:blue", "tab:orange", "tab:green")):
        c = fig["curves"][algo]
        ax.plot(its, c["point"], marker="o", color=color, label=f"{algo} (n={int(max(c['n']))} seeds)")
        low, high = np.asarray(c["low"], float), np.asarray(c["high"], float)
        if np.isfinite(low).any():
            ax.fill_between(its, np.clip(low, 0, 1), np.clip(high, 0, 1), color=color, alpha=0.18)
    ax.set_xlabel("training iteration (0 = starting policy)")
    ax.set_ylabel("eval success (builtin_eval)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Learning signal: mean and 95% t-interval over seeds", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    f.tight_layout()
    f.savefig(path, dpi=130)
    plt.close(f)
    return path


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", choices=sorted(PRESETS), default="tiny-random")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--iterations", type=int, default=10, help="RL iterations per run")
    p.add_argument("--groups", type=int, default=4, help="train.groups_per_iter (tasks per iteration)")
    p.add_argument("--group-size", type=int, default=4, help="train.group_size (rollouts per task)")
    p.add_argument("--lr", type=float, default=None, help="RL learning rate (default: the model preset's)")
    p.add_argument("--kl-coef", type=float, default=0.0, help="train.kl_coef (0: no reference policy, cheaper)")
    p.add_argument("--score-temperature", type=float, default=2.0,
                   help="RL runs' candidate softmax temperature, in training and evaluation (sft uses 1)")
    p.add_argument("--warm-start", choices=("sft", "none"), default=None, help="default: the model preset's")
    p.add_argument("--sft-iterations", type=int, default=10)
    p.add_argument("--sft-lr", type=float, default=None)
    p.add_argument("--eval-every", type=int, default=2)
    p.add_argument("--eval-tasks", type=int, default=8, help="first N builtin_eval games of the two task types")
    p.add_argument("--eval-episodes", type=int, default=4, help="sampled episodes per eval game")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (policy.cpu_threads)")
    p.add_argument("--out", type=Path, default=Path("runs/learning_signal_bench"))
    p.add_argument("--restart", action="store_true", help="delete and redo runs already in --out")
    p.add_argument("--figures-only", action="store_true", help="only recompute the figures from --out")
    p.add_argument("-v", "--verbose", action="store_true", help="progress bars and INFO logs")
    args = p.parse_args(argv)
    preset = PRESETS[args.model]
    args.lr = preset["lr"] if args.lr is None else args.lr
    args.sft_lr = preset["sft_lr"] if args.sft_lr is None else args.sft_lr
    args.warm_start = preset["warm_start"] if args.warm_start is None else args.warm_start
    if len(set(args.seeds)) != len(args.seeds):
        p.error(f"--seeds must be distinct, got {args.seeds}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(quiet=not args.verbose)
    logging.getLogger("siri_bench").setLevel(logging.INFO if args.verbose else logging.WARNING)
    print(f"learning-signal benchmark: model {PRESETS[args.model]['model']} on {args.device}, score mode, "
          f"warm start {args.warm_start}, seeds {args.seeds}, {args.iterations} RL iterations of "
          f"{args.groups}x{args.group_size} episodes, lr {args.lr:g}, kl_coef {args.kl_coef:g}, score temperature "
          f"{args.score_temperature:g}; out {args.out}",
          flush=True)
    t0 = time.monotonic()
    seconds = {"sft": 0.0, "rl": 0.0} if args.figures_only else run_all(args)
    fig = figures(args.out, list(args.seeds))
    fig["settings"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    fig["wall_s"] = {**seconds, "total": time.monotonic() - t0}
    print_figures(fig)
    print(f"\nwall time: {fig['wall_s']['total'] / 60:.1f} min (sft {seconds['sft'] / 60:.1f}, RL {seconds['rl'] / 60:.1f})")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "learning_signal.json").write_text(json.dumps(fig, indent=1, default=float) + "\n")
    png = plot(fig, args.out / "learning_signal.png")
    print(f"figures: {args.out / 'learning_signal.json'}, {png}; report: siri-bench report {args.out / RL_EXPERIMENT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
