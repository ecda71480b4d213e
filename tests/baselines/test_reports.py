"""Reports of baselines: success per trial, a task counted once, inference cost next to success."""

from __future__ import annotations

import pandas as pd
import pytest

from reports.stats.tables import final_evaluation, trial_success
from siri_bench.config import expand_runs
from siri_bench.runner import execute_run
from tests.baselines.conftest import corridor_config


def chains() -> pd.DataFrame:
    """One run, three tasks with up to 3 trials: t0 solved at trial 2, t1 at trial 1, t2 never."""
    rows = []
    for task, outcomes in (("t0", [0, 1]), ("t1", [1]), ("t2", [0, 0, 0])):
        for k, won in enumerate(outcomes):
            rows.append({"run": "r", "iteration": 0, "task_id": task, "repeat": 0, "trial": k, "won": bool(won),
                         "final_trial": k == len(outcomes) - 1})
    return pd.DataFrame(rows)


def test_success_within_k_trials_by_hand():
    per_trial = trial_success(chains())
    # within 1 trial: t1 of 3 tasks; within 2: t0 and t1; within 3: the same
    assert list(per_trial["trial"]) == [1, 2, 3]
    assert list(per_trial["value"]) == pytest.approx([1 / 3, 2 / 3, 2 / 3])
    assert (per_trial["chains"] == 3).all()
    final = final_evaluation(chains())
    assert sorted(final["task_id"]) == ["t0", "t1", "t2"]          # each task once, on its last trial
    assert final["won"].mean() == pytest.approx(2 / 3)
    no_trials = chains().drop(columns=["final_trial"])
    assert len(final_evaluation(no_trials)) == 6 and trial_success(no_trials).empty


def test_report_shows_trials_and_cost(tmp_path):
    from reports.render import write_report

    note = {"reflection": "Reflection: episode {episode_id} failed; take the key before going east."}
    for algorithm in ({"name": "react"}, {"name": "reflexion", "max_trials": 2,
                                          "writer": {"kind": "template", "templates": note}}):
        execute_run(expand_runs(corridor_config(tmp_path, algorithm))[0])
    out = write_report(tmp_path / "runs" / "baseline", options={"plots": False, "reps": 200, "poi_reps": 200})
    text = (out / "report.md").read_text()
    assert "## Success per trial" in text and "within 2 trials" in text
    trials_block = text.split("## Success per trial")[1].split("\n## ")[0]
    assert "reflexion" in trials_block and "react" not in trials_block
    cost_block = text.split("## Cost beside success")[1].split("\n## ")[0]
    assert "prompt tokens / step" in cost_block and "tokens / task" in cost_block
    results = pd.read_csv(out / "results.csv")
    cost = results.set_index(["arm", "metric"])["point"]
    # reflexion plays every task twice (the tiny model cannot win in 2 steps): twice the acting tokens per task,
    # plus the template writer's tokens, and its second trials carry the reflection in their prompts
    assert cost[("reflexion", "tokens_per_task")] > 2 * cost[("react", "tokens_per_task")] * 0.99
    assert cost[("reflexion", "prompt_tokens_per_step")] > cost[("react", "prompt_tokens_per_step")]
    assert ("reflexion", "success_within_2_trials") in cost.index
