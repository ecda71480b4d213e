"""Recycling env workers: a worker process is replaced after N resets, never mid-episode."""

from __future__ import annotations

from envs.workers import EnvPool
from tests.envs.toy_envs import MODULE_TOY_ID


def test_a_worker_is_recycled_after_n_resets_but_never_mid_episode():
    with EnvPool(MODULE_TOY_ID, {"max_steps": 50}, num_envs=2, workers=1, backend="process", timeout_s=30,
                 recycle_after=3) as pool:
        first = pool.reset([(0, 1, None), (1, 2, None)])
        pid = first[0].info["pid"]
        assert pool.served == [2] and pool.in_episode == {0, 1}
        pool.step({0: "win"})                                    # env 0's episode ends; env 1 plays on
        again = pool.reset([(0, 3, None)])                       # 3rd reset: env 1 is mid-episode, no recycling
        assert again[0].info["pid"] == pid and pool.recycles == [0] and pool.served == [3]
        assert pool.step({1: "look"})[1].info["pid"] == pid      # env 1's episode survived
        pool.step({0: "win", 1: "win"})                          # both episodes over
        fresh = pool.reset([(0, 4, None), (1, 5, None)])         # now the worker is replaced first
        assert pool.recycles == [1] and pool.restarts == [0] and pool.served == [2]
        assert fresh[0].info["pid"] == fresh[1].info["pid"] != pid
        assert all(r.error is None and r.observation.startswith("Your task is to:") for r in fresh.values())


def test_recycling_is_off_in_process():
    with EnvPool(MODULE_TOY_ID, {}, num_envs=1, backend="inline", recycle_after=1) as pool:
        assert pool.recycle_after is None
        for seed in range(3):
            pool.reset([(0, seed, None)])
        assert pool.recycles == [0]
