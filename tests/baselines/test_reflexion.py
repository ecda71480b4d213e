"""Reflexion: sequential trials, reflections reach the next trial of the same task only."""

from __future__ import annotations

import pandas as pd

from algorithms.reflexion import ADDITION_HEADER, parse_reflection
from siri_bench.config import expand_runs
from siri_bench.models import build_tiny_tokenizer
from siri_bench.runner import execute_run, run_dir_for
from siri_bench.trainer import build_run_context
from tests.baselines.conftest import corridor_config
from tests.rollout.test_engine import ScriptedPolicy, expert

NOTE = "Reflection: episode {episode_id} of task {task_id} went wrong; retry differently."


def reflexion_run(tmp_path, **algorithm):
    cfg = corridor_config(tmp_path, {"name": "reflexion", "max_trials": 3,
                                     "writer": {"kind": "template", "templates": {"reflection": NOTE}}, **algorithm})
    return execute_run(expand_runs(cfg)[0])


def test_reflections_reach_the_next_trial_of_their_task_only(tmp_path):
    run_dir = reflexion_run(tmp_path)
    rows = run_dir.read_episodes().sort_values(["task_id", "trial"]).reset_index(drop=True)
    # two steps cannot win the corridor: every task is tried max_trials times
    assert not rows["won"].any()
    assert list(rows["trial"]) == [0, 1, 2, 0, 1, 2]
    assert list(rows["final_trial"]) == [False, False, True] * 2
    assert (rows["memory_scope"] == "task").all()
    assert sorted(rows["position"]) == list(range(6))
    # trials run in rounds: every first trial before any second trial
    by_trial = rows.groupby("trial")["position"]
    assert by_trial.max()[0] < by_trial.min()[1] and by_trial.max()[1] < by_trial.min()[2]
    # failed, non-final trials have a reflection naming their own episode; the last trial none
    for _, row in rows.iterrows():
        if row["final_trial"]:
            assert row["reflection"] == "" and row["reflection_status"] == "none"
        else:
            assert row["reflection_status"] == "ok"
            assert row["reflection"] == NOTE.removeprefix("Reflection: ").format(
                episode_id=row["episode_id"], task_id=row["task_id"])
    steps = run_dir.read_steps()
    for _, row in rows.iterrows():
        additions = steps[steps["episode_id"] == row["episode_id"]]["prompt_additions"]
        assert len(additions) == row["steps"]
        earlier = rows[(rows["task_id"] == row["task_id"]) & (rows["trial"] < row["trial"])]
        others = rows[rows["task_id"] != row["task_id"]]
        for block in additions:
            text = "\n".join(block)
            if row["trial"] == 0:
                assert text == ""           # trial 0 is the plain ReAct prompt
                continue
            assert text.startswith(ADDITION_HEADER)
            for _, e in earlier.iterrows():
                assert f"Trial {e['trial'] + 1}: {e['reflection']}" in text
            for eid in list(others["episode_id"]) + list(rows[rows["trial"] >= row["trial"]]["episode_id"]):
                assert eid not in text


def test_trial_zero_is_the_react_episode(tmp_path):
    reflexion = reflexion_run(tmp_path / "a").read_episodes()
    react_cfg = corridor_config(tmp_path / "b", {"name": "react"})
    react = execute_run(expand_runs(react_cfg)[0]).read_episodes()
    first = reflexion[reflexion["trial"] == 0].sort_values("task_id").reset_index(drop=True)
    react = react.sort_values("task_id").reset_index(drop=True)
    cols = ["task_id", "task_seed", "env_seed", "policy_seed", "steps", "prompt_tokens", "won"]
    pd.testing.assert_frame_equal(first[cols], react[cols])


def learner(prompt: str) -> str:
    """Writes a reflection when asked; acts like an expert once a reflection is in its prompt, else
    only goes east (which never wins: the key is never taken)."""
    if "The attempt failed." in prompt:
        return "<think>no key</think>Reflection: I never took the key. Next time take the key first."
    if ADDITION_HEADER in prompt:
        return expert(prompt)
    return "<think>east</think><action>go east</action>"


def test_the_policy_writes_a_reflection_and_a_success_ends_the_task(tmp_path):
    cfg = corridor_config(tmp_path, {"name": "reflexion", "max_trials": 3}, max_steps=6,
                          policy={"action_mode": "generate"})
    spec = expand_runs(cfg)[0]
    run_dir = run_dir_for(spec)
    run_dir.write_config(cfg.to_dict())
    ctx = build_run_context(spec, run_dir, policy=ScriptedPolicy(build_tiny_tokenizer(), learner))
    try:
        rows = ctx.algorithm.evaluate(ctx, 0).sort_values(["task_id", "trial"]).reset_index(drop=True)
    finally:
        ctx.close()
    assert list(rows["trial"]) == [0, 1, 0, 1]
    assert list(rows["won"]) == [False, True, False, True]
    assert list(rows["final_trial"]) == [False, True, False, True]
    assert list(rows["reflection"]) == ["I never took the key. Next time take the key first.", ""] * 2
    assert (rows.loc[rows["trial"] == 0, "writer_completion_tokens"] > 0).all()
    assert (rows.loc[rows["trial"] == 1, "writer_prompt_tokens"] == 0).all()
    assert ctx.algorithm.stats.parsed == 2 and ctx.algorithm.stats.unparseable == 0


def test_resume_keeps_reflections(tmp_path):
    run_dir = reflexion_run(tmp_path, max_trials=2)
    rows = run_dir.read_episodes()
    # an interrupted round resumes: drop the last trial's part and run again
    parts = sorted((run_dir.path / "episodes").glob("iter_000000.p*.parquet"))
    last = pd.read_parquet(parts[-1])
    assert (last["trial"] == 1).all()
    parts[-1].unlink()
    (run_dir.path / "steps" / parts[-1].name).unlink()
    run_dir.done_path.unlink()
    cfg = corridor_config(tmp_path, {"name": "reflexion", "max_trials": 2,
                                     "writer": {"kind": "template", "templates": {"reflection": NOTE}}})
    again = execute_run(expand_runs(cfg)[0]).read_episodes()
    assert len(again) == len(rows)
    replayed = again[again["trial"] == 1].sort_values("task_id").reset_index(drop=True)
    expected = last.sort_values("task_id").reset_index(drop=True)
    assert list(replayed["steps"]) == list(expected["steps"])
    steps = execute_run(expand_runs(cfg)[0]).read_steps()
    for _, row in replayed.iterrows():
        first = again[(again["task_id"] == row["task_id"]) & (again["trial"] == 0)].iloc[0]
        blocks = steps[steps["episode_id"] == row["episode_id"]]["prompt_additions"]
        assert all(first["reflection"] in "\n".join(b) for b in blocks)


def test_parse_reflection_is_robust():
    assert parse_reflection("<think>hmm</think>Reflection: I opened the wrong drawer. Next time I will "
                            "open drawer 2 first.") == "I opened the wrong drawer. Next time I will open drawer 2 first."
    assert parse_reflection("I should have taken the key before going east.") == \
        "I should have taken the key before going east."
    assert parse_reflection("") is None
    assert parse_reflection("Reflection: ]]]} 0x13 ;; ## 42") is None
    assert parse_reflection("!!@@ ##$$ %%^^ && **") is None
    long = parse_reflection("Reflection: " + "go east and take the key " * 100, max_chars=80)
    assert long is not None and len(long) <= 80 and long.endswith("…")
