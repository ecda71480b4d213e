"""Fixtures of the baseline tests: the corridor test env, the tiny model, a config builder."""

from __future__ import annotations

import pytest
import torch

from siri_bench.config import build_config
from tests.rollout import corridor

# tiny matrices: one intra-op thread avoids spin-waiting on a shared machine
torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def corridor_env() -> str:
    corridor.register()
    return corridor.ENV_ID


def corridor_config(tmp_path, algorithm: dict, *, num_tasks: int = 2, max_steps: int = 2, **sections):
    """An experiment on the corridor env with the tiny random model in score mode."""
    data = {
        "name": "baseline",
        "env": {"id": corridor.ENV_ID, "eval_split": "train", "max_steps": max_steps},
        "policy": {"model": "tiny-random", "device": "cpu", "action_mode": "score"},
        "algorithm": algorithm,
        "eval": {"num_tasks": num_tasks, "episodes_per_task": 1, "concurrency": 2, "flush_every": 2},
        "output_dir": str(tmp_path / "runs"),
    }
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return build_config(data)
