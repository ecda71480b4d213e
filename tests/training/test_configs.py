"""The shipped training configs: all validate; the paper-scale ones hold verl-agent's GiGPO recipe;
the tiny ones run."""

from __future__ import annotations

from pathlib import Path

import pytest

from siri_bench.config import expand_runs, load_config
from siri_bench.runner import execute_run

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
TRAINING = sorted(p.name for p in CONFIGS.glob("*.yaml") if p.stem.split("_")[0] in {"gigpo", "grpo", "rloo", "sft"})


def test_the_training_configs_are_there():
    assert {"gigpo_alfworld_tiny.yaml", "grpo_alfworld_tiny.yaml", "rloo_alfworld_tiny.yaml", "sft_alfworld_tiny.yaml",
            "gigpo_alfworld_qwen7b.yaml", "gigpo_webshop_qwen7b.yaml"} <= set(TRAINING)


@pytest.mark.parametrize("name", TRAINING)
def test_config_validates(name):
    cfg = load_config(CONFIGS / name)
    assert cfg.name == Path(name).stem and cfg.iterations >= 1
    assert cfg.algorithm_params() is not None and expand_runs(cfg)


@pytest.mark.parametrize("name, max_steps, norm, minibatch", [
    ("gigpo_alfworld_qwen7b.yaml", 50, "std", 256),
    ("gigpo_webshop_qwen7b.yaml", 15, "mean", 64),
])
def test_paper_scale_configs_follow_verl_agent(name, max_steps, norm, minibatch):
    cfg = load_config(CONFIGS / name)
    p, t, params = cfg.policy, cfg.train, cfg.algorithm_params()
    assert (p.model, p.backend, p.action_mode, p.history_length) == ("Qwen/Qwen2.5-7B-Instruct", "vllm", "generate", 2)
    assert (t.groups_per_iter, t.group_size, t.lr, t.kl_coef, t.clip_ratio) == (16, 8, 1e-6, 0.01, 0.2)
    assert (t.reward, t.reward_scale, p.invalid_action_penalty, t.minibatch_size) == ("won", 10.0, 0.1, minibatch)
    assert (params.gamma, params.omega, params.norm) == (0.95, 1.0, norm)
    assert cfg.env.max_steps == max_steps and cfg.eval.every == 5 and cfg.eval.temperature == 0.4
    assert cfg.iterations == 150 and cfg.seeds == [0, 1, 2]


@pytest.mark.parametrize("name", ["grpo_alfworld_tiny.yaml", "rloo_alfworld_tiny.yaml", "sft_alfworld_tiny.yaml"])
def test_tiny_config_runs(tmp_path, name):
    cfg = load_config(CONFIGS / name, [f"output_dir={tmp_path}", "iterations=1", "eval.num_tasks=1",
                                       "train.checkpoint_every=1"])
    run = execute_run(expand_runs(cfg)[0])
    assert run.is_done()
    row = run.read_metrics()[-1]
    assert row["iteration"] == 1 and row["train/optimizer_steps"] >= 1 and row["eval/episodes"] == 1
    assert run.latest_checkpoint().iteration == 1
