"""The learning-signal benchmark's figures, computed from hand-made run folders (no training)."""

from __future__ import annotations

import math

import pytest

from benchmarks.learning_signal import RL_EXPERIMENT, figures, parse_args, rl_config, sft_config
from siri_bench.store import RunDir

# eval/success per (algorithm, seed) at iterations 0, 2, 4; iteration 1 has no evaluation.
CURVES = {
    ("grpo", 0): [0.25, 0.25, 0.50], ("grpo", 1): [0.00, 0.25, 0.25], ("grpo", 2): [0.25, 0.50, 0.50],
    ("gigpo", 0): [0.25, 0.50, 0.75], ("gigpo", 1): [0.00, 0.25, 0.50], ("gigpo", 2): [0.25, 0.25, 0.50],
    ("siri", 0): [0.25, 0.50, 0.75], ("siri", 1): [0.00, 0.50, 0.75], ("siri", 2): [0.25, 0.25, 0.75],
}


def _write_runs(out):
    for (algo, seed), values in CURVES.items():
        run = RunDir(out / RL_EXPERIMENT / f"{algo}-alfworld-s{seed}")
        run.path.mkdir(parents=True)
        for iteration, value in zip((0, 2, 4), values):
            run.append_metrics({"iteration": iteration, "eval/success": value})
        run.append_metrics({"iteration": 1, "train/success": 0.5})


def test_curves_final_intervals_and_paired_comparison(tmp_path):
    _write_runs(tmp_path)
    fig = figures(tmp_path, [0, 1, 2])
    assert fig["iterations"] == [0, 2, 4]
    assert fig["curves"]["gigpo"]["point"] == pytest.approx([1 / 6, 1 / 3, 7 / 12])
    # final GRPO values 0.5, 0.25, 0.5: mean 5/12, sd sqrt(1/48), t(0.975, 2) = 4.302653
    half = 4.302653 * math.sqrt(1 / 48) / math.sqrt(3)
    final = fig["final"]["grpo"]
    assert final["point"] == pytest.approx(5 / 12)
    assert (final["low"], final["high"]) == pytest.approx((5 / 12 - half, 5 / 12 + half), abs=1e-5)
    # GiGPO minus GRPO per seed: +0.25, +0.25, 0 -> mean 1/6
    paired = fig["gigpo_vs_grpo"]["paired"]
    assert paired["test"] == "paired_t" and paired["estimate"] == pytest.approx(1 / 6)
    assert fig["gigpo_vs_grpo"]["welch"]["test"] == "welch"
    # gain of GiGPO over its start: 0.5, 0.5, 0.25 -> 5/12
    assert fig["gain"]["gigpo"]["estimate"] == pytest.approx(5 / 12)
    # SIRI minus GiGPO per seed: 0, +0.25, +0.25 -> mean 1/6
    assert fig["algorithms"] == ["grpo", "gigpo", "siri"]
    assert fig["siri_vs_gigpo"]["paired"]["estimate"] == pytest.approx(1 / 6)


def test_figures_without_siri_runs_compare_grpo_and_gigpo_only(tmp_path):
    _write_runs(tmp_path)
    for seed in (0, 1, 2):
        run = tmp_path / RL_EXPERIMENT / f"siri-alfworld-s{seed}"
        for f in run.iterdir():
            f.unlink()
        run.rmdir()
    fig = figures(tmp_path, [0, 1, 2])
    assert fig["algorithms"] == ["grpo", "gigpo"] and "siri_vs_gigpo" not in fig and "gigpo_vs_grpo" in fig


def test_rl_runs_of_a_seed_share_the_sft_start_and_validate(tmp_path):
    args = parse_args(["--out", str(tmp_path), "--seeds", "0", "1"])
    sft = sft_config(args, 1)
    rl = rl_config(args, 1, str(tmp_path / "learning_signal_sft" / "sft-alfworld-s1"))
    assert sft.algorithm_name == "sft" and sft.policy.action_mode == rl.policy.action_mode == "score"
    assert rl.grid == {"algorithm.name": ["grpo", "gigpo"]} and rl.seeds == [1]
    assert rl.train.init_from.endswith("sft-alfworld-s1")
    assert rl.eval.score_temperature == rl.policy.score_temperature == args.score_temperature
    siri = rl_config(args, 1, rl.train.init_from, siri=True)
    assert siri.algorithm_name == "siri" and not siri.grid and siri.algorithm["skill_writer"] == "template"
    assert (siri.env, siri.policy, siri.train, siri.eval, siri.seeds) == (rl.env, rl.policy, rl.train, rl.eval, rl.seeds)
