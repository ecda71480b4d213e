"""The per-episode seed triplet and the run-owned training task stream."""

from __future__ import annotations

from siri_bench.fingerprint import build_fingerprint
from siri_bench.rollout import train_group_specs
from siri_bench.store import EPISODE_COLUMNS


def test_every_episode_row_has_the_seed_triplet():
    for column in ("task_id", "task_seed", "env_seed", "policy_seed"):
        assert column in EPISODE_COLUMNS


def test_training_tasks_come_from_the_run_seed_only():
    """Group g of iteration i plays the same task whatever the group size (and the pool: specs are
    made before any env exists); another run seed draws another stream."""
    tasks = [f"t{k}" for k in range(50)]

    def drawn(run_seed, size):
        specs = train_group_specs(tasks, run_seed=run_seed, iteration=7, groups=6, group_size=size)
        return [s.task_id for s in specs[::size]], {(s.group_id, s.seeds.env_seed) for s in specs}

    small, small_env = drawn(0, 2)
    large, large_env = drawn(0, 8)
    assert small == large and small_env == large_env and len(set(small)) > 1
    assert drawn(1, 2)[0] != small


def test_env_fingerprint_ignores_where_the_data_lies():
    def env_fp(kwargs):
        return build_fingerprint(config={"env": {"kwargs": kwargs}}, config_hash="c", env_id="e", engine="fast")["env"]

    assert env_fp({"data_dir": "/a", "engine": "fast"}) == env_fp({"data_dir": "/b/c", "engine": "fast"})
    assert env_fp({"engine": "fast"}) != env_fp({"engine": "stock"})
    assert env_fp({})["engine"] == "fast"
