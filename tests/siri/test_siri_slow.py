"""Slow SIRI runs: the shipped tiny CPU config end to end on the built-in ALFWorld games (real
TextWorld engine), and a SIRI run interrupted after a checkpoint that resumes to exactly the
uninterrupted run's metrics and skill-event log."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from siri_bench.config import expand_runs, load_config
from siri_bench.runner import execute_run, run_dir_for
from tests.siri.test_siri_run import config as corridor_config
from tests.siri.test_siri_run import registered  # noqa: F401 - registers the corridor env (autouse fixture)

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "configs" / "siri_alfworld_tiny.yaml"
TIMING = ("time/", "_per_s")

pytestmark = pytest.mark.slow


def comparable(rows):
    return [{k: v for k, v in r.items() if not any(t in k for t in TIMING)} for r in rows]


def test_tiny_config_runs_all_three_phases(tmp_path):
    """``siri-bench run configs/siri_alfworld_tiny.yaml``: the log shows warm-up, mining, validation,
    promotion or retirement and internalization, and the run folder has skills.jsonl."""
    done = subprocess.run([sys.executable, "-m", "siri_bench", "run", str(TINY), f"output_dir={tmp_path}", "--no-report"],
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, timeout=900)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    run = run_dir_for(expand_runs(load_config(TINY, [f"output_dir={tmp_path}"]))[0])
    assert run.is_done()
    log = run.log_path.read_text()
    for pattern in (r"SIRI iteration 1: warm-up", r"mining \(template writer\): [1-9]", r"SIRI validation of skill-",
                    r"skill-\d+ (promoted|retired)", r"internalization of [1-9]\d* steps"):
        assert re.search(pattern, log), pattern
    events = [json.loads(line) for line in run.skills_path.read_text().splitlines()]
    kinds = {e["event"] for e in events}
    assert {"created", "validated", "promoted"} <= kinds
    rows = run.read_metrics()
    assert max(r.get("siri/internalization_token_fraction") or 0 for r in rows) > 0


def test_interrupted_run_resumes_to_the_same_metrics_and_skill_log(tmp_path, monkeypatch):
    import siri_bench.store as store

    overrides = {"weighting": "none", "gate": False}
    reference = execute_run(expand_runs(corridor_config(tmp_path / "ref", **overrides).model_copy(
        update={"iterations": 3}))[0])

    spec = expand_runs(corridor_config(tmp_path / "cut", **overrides).model_copy(update={"iterations": 3}))[0]
    real = store.RunDir.append_metrics

    def crash_at_3(self, row):
        if row.get("iteration") == 3:          # after iteration 3 wrote its skill events, before its checkpoint
            raise RuntimeError("killed")
        return real(self, row)

    monkeypatch.setattr(store.RunDir, "append_metrics", crash_at_3)
    with pytest.raises(RuntimeError, match="killed"):
        execute_run(spec)
    monkeypatch.setattr(store.RunDir, "append_metrics", real)
    run = execute_run(spec)
    assert run.is_done()
    assert comparable(run.read_metrics()) == comparable(reference.read_metrics())
    assert run.skills_path.read_text() == reference.skills_path.read_text()


@pytest.mark.parametrize("switch", [
    {"validation": False}, {"base": "grpo"}, {"weighting": "utility"}, {"weighting": "advantage"},
    {"gate": False, "weighting": "both"},
])
def test_every_ablation_switch_runs_end_to_end(tmp_path, switch):
    run = execute_run(expand_runs(corridor_config(tmp_path, **switch))[0])
    assert run.is_done()
    rows = {r["iteration"]: r for r in run.read_metrics()}
    assert rows[2]["siri/skill_episodes"] == 4 and rows[2]["siri/pairs"] == 1
    events = [json.loads(line) for line in run.skills_path.read_text().splitlines()]
    if switch.get("validation") is False:
        # every mined skill is active at once with U = 1 and is never validated
        assert [e["event"] for e in events[:2]] == ["created", "promoted"] and events[1]["utility"] == 1.0
        assert not any(e["event"] == "validated" for e in events)
    else:
        assert any(e["event"] == "validated" for e in events)
