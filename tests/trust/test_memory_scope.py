"""Memory scope: episode rows record the algorithm's memory scope and the order episodes ended in,
and reports treat runs, not episodes, as the unit for algorithms that carry memory."""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch

from algorithms.base import Algorithm
from reports.render import write_report
from siri_bench.config import build_config, expand_runs
from siri_bench.registry import ALGORITHMS
from siri_bench.runner import execute_run
from tests.rollout import corridor

torch.set_num_threads(1)


class RunMemory(Algorithm):
    """Evaluation-only; remembers every episode of the run (like a skill bank or a memory store)."""

    memory_scope: ClassVar[str] = "run"
    seen: ClassVar[list[str]] = []

    def on_episode_end(self, episode, phase):
        RunMemory.seen.append(episode.episode_id)


@pytest.fixture(autouse=True)
def registered():
    corridor.register()
    ALGORITHMS.load()
    ALGORITHMS.register("run-memory-test", RunMemory, replace=True)


def runs(tmp_path, algorithm, seeds):
    cfg = build_config({
        "name": "mem", "output_dir": str(tmp_path / "runs"), "algorithm": algorithm, "seeds": seeds,
        "env": {"id": corridor.ENV_ID, "eval_split": "train", "max_steps": 4},
        "policy": {"model": "tiny-random", "device": "cpu", "action_mode": "score"},
        "eval": {"num_tasks": 3, "episodes_per_task": 2, "concurrency": 2}, "report": {"plots": False}})
    return [execute_run(spec) for spec in expand_runs(cfg)]


def test_rows_record_scope_and_order_and_reports_use_runs_as_the_unit(tmp_path):
    RunMemory.seen = []
    memory_runs = runs(tmp_path, "run-memory-test", [0, 1])
    first = memory_runs[0].read_episodes()
    assert (first["memory_scope"] == "run").all()
    # positions: the order the algorithm saw the episodes end (0..n-1), not the order they started
    ordered = first.sort_values("position")["episode_id"].tolist()
    assert sorted(first["position"]) == list(range(6)) and ordered == RunMemory.seen[:6]
    plain = runs(tmp_path, "react", [0, 1])[0].read_episodes()
    assert (plain["memory_scope"] == "none").all() and "position" not in plain.columns
    out = write_report(tmp_path / "runs" / "mem", options={"plots": False})
    text = (out / "report.md").read_text() if out.is_dir() else out.read_text()
    assert "run-memory-test carries memory across episodes (scope: run)" in text
    assert "its statistics use runs (training seeds) as the unit" in text
    assert "react carries memory" not in text
