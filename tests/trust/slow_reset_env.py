"""The toy text env with a slow ``reset`` (``reset_sleep_s`` seconds), for the reset-timeout test.

Registered with gymnasium on import; worker processes make it as ``"tests.trust.slow_reset_env:<id>"``.
"""

from __future__ import annotations

import time
from typing import Any

import gymnasium as gym

from tests.envs.toy_envs import ToyTextEnv

SLOW_RESET_ID = "siri_bench_test/SlowResetToy-v0"
MODULE_SLOW_RESET_ID = f"{__name__}:{SLOW_RESET_ID}"


class SlowResetToyEnv(ToyTextEnv):
    """:class:`ToyTextEnv` whose reset takes ``reset_sleep_s`` seconds (a game being loaded)."""

    def __init__(self, reset_sleep_s: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reset_sleep_s = reset_sleep_s

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        time.sleep(self.reset_sleep_s)
        return super().reset(seed=seed, options=options)


if SLOW_RESET_ID not in gym.registry:
    gym.register(SLOW_RESET_ID, entry_point=SlowResetToyEnv)
