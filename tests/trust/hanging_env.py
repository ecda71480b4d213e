"""A text env whose engine hangs on purpose, for the worker-health test. It is registered through
the ``siri_bench.envs`` entry point group (see ``test_hung_env.py``), so worker processes make it too.

Tasks: ``ok`` plays normally; ``hang-at-reset`` sleeps for an hour in ``reset``; ``hang-at-step``
sleeps for an hour in its first ``step``. ``info["pid"]`` is the worker process's id.
"""

from __future__ import annotations

import os
import string
import time
from typing import Any

import gymnasium as gym
from gymnasium import spaces

ENV_ID = "tests/Hanging-v0"
TASKS = ("hang-at-reset", "ok", "hang-at-step")


class HangingEnv(gym.Env[str, str]):
    """Echoes actions; hangs where its task says (see the module docstring)."""

    metadata = {"render_modes": []}

    def __init__(self, split: str = "train", task_types: list[str] | None = None, max_steps: int = 3) -> None:
        self.split = split
        self.max_steps = max_steps
        self.task_ids = list(TASKS)
        self.observation_space = spaces.Text(200, min_length=0, charset=string.printable)
        self.action_space = spaces.Text(200, charset=string.printable)
        self._task = TASKS[1]
        self._steps = 0

    def task_info(self, task_id: str) -> dict[str, Any]:
        return {"task_type": "hang", "task": task_id}

    def _info(self, won: bool = False) -> dict[str, Any]:
        return {"admissible_actions": ["look", "win"], "task_id": self._task, "task_uid": f"hang-{self._task}",
                "task_type": "hang", "task": self._task, "won": won, "score": float(won), "step": self._steps,
                "valid": True, "anchor_state": f"{self._task}/{self._steps}", "pid": os.getpid()}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._task = (options or {}).get("task_id") or TASKS[int(self.np_random.integers(len(TASKS)))]
        self._steps = 0
        if self._task == "hang-at-reset":
            time.sleep(3600)
        return f"Your task is to: {self._task}.", self._info()

    def step(self, action: str):
        if self._task == "hang-at-step":
            time.sleep(3600)
        self._steps += 1
        won = action.strip() == "win"
        return f"echo: {action}"[:200], float(won), won, not won and self._steps >= self.max_steps, self._info(won)


def register() -> None:
    """The entry point: registers ``tests/Hanging-v0``."""
    from siri_bench.registry import register_env

    register_env(ENV_ID, f"{__name__}:HangingEnv", description="test env whose engine hangs on purpose",
                 max_episode_steps=3)
