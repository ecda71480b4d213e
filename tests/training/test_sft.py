"""Behaviour cloning (sft) on the built-in ALFWorld games raises the likelihood of the expert's
actions in both action modes, and its checkpoint initialises another run (train.init_from)."""

from __future__ import annotations

import numpy as np
import pytest

from envs.workers import EnvPool
from siri_bench.config import build_config, expand_runs
from siri_bench.rollout import RolloutEngine, RolloutSettings, group_specs
from siri_bench.runner import execute_run
from siri_bench.seeding import TaskDraw
from siri_bench.store import RunDir
from tests.training.conftest import tiny_policy

ALFWORLD = "siri_bench/ALFWorld-v0"


def config(tmp_path, mode: str, **overrides):
    data = {
        "name": f"sft-{mode}",
        "env": {"id": ALFWORLD, "train_split": "builtin_train", "eval_split": "builtin_eval", "max_steps": 12},
        "policy": {"model": "tiny-random", "device": "cpu", "action_mode": mode, "cpu_threads": 1,
                   "max_new_tokens": 24},
        "algorithm": "sft", "iterations": 3,
        "train": {"groups_per_iter": 6, "group_size": 1, "lr": 3e-3, "minibatch_size": 64, "micro_batch_size": 16,
                  "kl_coef": 0.0, "entropy_coef": 0.0, "checkpoint_every": 3},
        "eval": {"num_tasks": 1, "every": 100, "at_start": False, "temperature": 0.0, "score_temperature": 0.0,
                 "concurrency": 2},
        "output_dir": str(tmp_path),
    }
    return build_config(data, [f"{k}={v}" for k, v in overrides.items()])


def expert_logprob(policy, mode: str, task_ids: list[str]) -> float:
    """Mean log-prob per loss unit of the expert's actions (walkthroughs) under ``policy``."""
    settings = RolloutSettings(env_id=ALFWORLD, action_mode=mode, max_steps=12)
    specs = group_specs([TaskDraw(t, 0) for t in task_ids], run_seed=0, iteration=0, group_size=1, actor="expert")
    with EnvPool(ALFWORLD, {"split": "builtin_train", "max_steps": 12}, len(specs)) as pool:
        result = RolloutEngine(pool, policy, settings).run(specs)
    assert all(e.won for e in result.episodes), [e.status for e in result.episodes]
    units = [s.action_logprob if mode == "score" else lp
             for s in result.steps for lp in ([None] if mode == "score" else s.sample_logprobs)]
    return float(np.mean(units))


@pytest.mark.parametrize("mode, lora", [("generate", False), ("score", True)])
def test_sft_raises_the_likelihood_of_expert_actions(tmp_path, mode, lora):
    overrides = {"policy.lora": "{r: 8, alpha: 16, dropout: 0.0}"} if lora else {}
    run = execute_run(expand_runs(config(tmp_path, mode, **overrides))[0])
    assert run.is_done()
    metrics = run.read_metrics()
    assert [m["iteration"] for m in metrics] == [1, 2, 3]
    assert all(m["sft/expert_success"] == 1.0 and m["sft/untrainable_steps"] == 0 for m in metrics)
    assert all(m["loss/sft_nll"] > 0 and m["train/optimizer_steps"] >= 1 for m in metrics)
    assert all(m["sft/expert_logprob"] < 0 for m in metrics)

    with EnvPool(ALFWORLD, {"split": "builtin_train"}, 1) as pool:
        tasks = pool.call("task_ids", [0])[0][::6]                   # one game of each task type
    before = expert_logprob(tiny_policy(action_mode=mode), mode, tasks)
    trained = tiny_policy(action_mode=mode, **({"lora": {"r": 8, "alpha": 16, "dropout": 0.0}} if lora else {}))
    trained.load_pretrained(run.latest_checkpoint().path / "policy")
    after = expert_logprob(trained, mode, tasks)
    print(f"{mode}: mean expert log-prob per unit {before:.3f} -> {after:.3f}")
    assert after > before + 0.5, (before, after)


def test_sft_checkpoint_initialises_another_run(tmp_path):
    """gigpo with LoRA and a KL term from an sft run (a LoRA adapter, merged): its first evaluation
    is the sft policy's (greedy score mode), and its reference policy is that policy (KL 0 before
    the first optimizer step)."""
    lora = "{r: 8, alpha: 16, dropout: 0.0}"
    sft = execute_run(expand_runs(config(tmp_path / "sft", "score", **{"policy.lora": lora, "iterations": 2}))[0])
    rl = config(tmp_path / "rl", "score", **{
        "algorithm": "gigpo", "policy.lora": lora, "iterations": 1, "train.init_from": str(sft.path),
        "train.group_size": 2, "train.groups_per_iter": 2, "train.kl_coef": 0.01, "train.lr": 1e-3,
        "eval.at_start": True})
    run = execute_run(expand_runs(rl)[0])
    metrics = run.read_metrics()
    assert metrics[1]["train/kl"] == 0.0 and metrics[1]["train/optimizer_steps"] == 1
    start = run.read_episodes().query("iteration == 0").sort_values("task_id")
    sft_final = RunDir(sft.path).read_episodes().sort_values("task_id")
    assert list(start["task_id"]) == list(sft_final["task_id"])
    assert list(start["steps"]) == list(sft_final["steps"]) and list(start["won"]) == list(sft_final["won"])
    assert (run.latest_checkpoint().path / "policy" / "adapter_config.json").exists()
