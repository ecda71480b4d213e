"""Per-call timeouts of the env worker pool: reset and step have their own (``env.reset_timeout_s``,
``env.step_timeout_s``), so a slow game load is not taken for a hang and a hung step is not waited
for as long as a load."""

from __future__ import annotations

import pytest

from envs.workers import ENV_ERROR, EnvPool
from siri_bench.config import EnvConfig
from siri_bench.errors import ConfigError
from tests.envs.toy_envs import MODULE_TOY_ID
from tests.trust.slow_reset_env import MODULE_SLOW_RESET_ID


def test_reset_and_step_each_have_their_own_timeout():
    kwargs = {"reset_sleep_s": 1.0, "max_steps": 50}
    with EnvPool(MODULE_SLOW_RESET_ID, kwargs, num_envs=1, workers=1, backend="process", timeout_s=1.5,
                 reset_timeout_s=6.0) as pool:
        started = pool.reset([(0, 1, None)])[0]                  # 1 s load < 6 s reset timeout
        assert started.error is None and started.observation.startswith("Your task is to:")
        pid = started.info["pid"]
        hung = pool.step({0: "sleep:60"})[0]                     # killed after the 1.5 s step timeout
        assert hung.error is not None and "timed out after 1.5 s" in hung.error
        assert hung.info["status"] == ENV_ERROR and pool.restarts == [1]
        pool.reset_timeout_s = 0.5                               # now the load itself is too slow
        slow = pool.reset([(0, 2, None)])[0]
        assert slow.error is not None and "timed out after 0.5 s" in slow.error and pool.restarts == [2]
        pool.reset_timeout_s = 6.0                               # the restarted worker plays on
        again = pool.reset([(0, 3, None)])[0]
        assert again.error is None and again.info["pid"] != pid
        assert pool.step({0: "win"})[0].info["won"]


def test_reset_timeout_defaults_to_the_step_timeout_and_must_be_positive():
    with EnvPool(MODULE_TOY_ID, {}, num_envs=1, backend="inline", timeout_s=7.0) as pool:
        assert pool.reset_timeout_s == 7.0
    with pytest.raises(ConfigError, match="reset_timeout_s=0"):
        EnvPool(MODULE_TOY_ID, {}, num_envs=1, backend="inline", reset_timeout_s=0)
    assert EnvConfig(reset_timeout_s=300).reset_timeout_s == 300
    with pytest.raises(ValueError):
        EnvConfig(reset_timeout_s=-1)
