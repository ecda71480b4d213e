"""A run on the ``openai`` back end records whether the server honoured the seed, in the run's
fingerprint (``model.seed_honoured``) and in its DONE summary."""

from __future__ import annotations

import json

import pytest

from siri_bench.config import build_config, expand_runs
from siri_bench.runner import execute_run
from tests.policy.test_openai_backend import FakeServer
from tests.rollout import corridor


@pytest.mark.parametrize("honour", [True, False])
def test_the_run_records_whether_the_server_honoured_the_seed(tmp_path, honour):
    corridor.register()
    with FakeServer(honour_seed=honour) as server:
        cfg = build_config({
            "name": "oa", "output_dir": str(tmp_path / "runs"), "algorithm": "react",
            "env": {"id": corridor.ENV_ID, "eval_split": "train", "max_steps": 2},
            "policy": {"backend": "openai", "model": "tiny-random",
                       "openai": {"base_url": server.url, "model": "served", "timeout_s": 5}},
            "eval": {"num_tasks": 1, "temperature": 0.7}})
        run = execute_run(expand_runs(cfg)[0])
    fingerprint = json.loads(run.fingerprint_path.read_text())
    assert fingerprint["model"]["name"] == "served" and fingerprint["model"]["seed_honoured"] is honour
    assert json.loads(run.done_path.read_text())["policy"]["seed_honoured"] is honour
