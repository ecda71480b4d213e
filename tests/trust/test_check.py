"""``siri-bench check``: every registered env passes; broken envs fail with a clear message."""

from __future__ import annotations

import shutil
from typing import Any

import pytest

from siri_bench.cli import main
from siri_bench.registry import ENVS, register_env
from tests.envs.toy_envs import TASKS, ToyTextEnv


class SeedIgnoringEnv(ToyTextEnv):
    """Seeds itself with a constant: every reset plays the same task (the bug of BALROG #56)."""

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        return super().reset(seed=0, options=options)


class UnseededEnv(ToyTextEnv):
    """Takes its task from state shared by all copies instead of the seed (like an unseeded global
    generator): the same seed gives a different task on every reset. (A truly random draw would
    match by chance in 1 of 4 resets, and the test would be flaky.)"""

    draws = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        UnseededEnv.draws += 1
        return super().reset(seed=seed, options=options or {"task_id": TASKS[UnseededEnv.draws % len(TASKS)]})


class DriftingEnv(ToyTextEnv):
    """Deterministic resets, but step texts depend on how many steps the copy ever took."""

    total = 0

    def step(self, action: str):
        obs, reward, terminated, truncated, info = super().step(action)
        DriftingEnv.total += 1
        return f"{obs} ({DriftingEnv.total})", reward, terminated, truncated, info


@pytest.fixture(scope="module", autouse=True)
def broken_envs() -> None:
    for name, cls in (("SeedIgnoring", SeedIgnoringEnv), ("Unseeded", UnseededEnv), ("Drifting", DriftingEnv)):
        register_env(f"tests/{name}-v0", cls, description=f"test env: {cls.__doc__.splitlines()[0]}")


def builtin_env_ids() -> list[str]:
    """Every env siri-bench registers itself (``envs.BUILTIN``), so a new one is checked too."""
    return [e for e in ENVS.names() if e.startswith("siri_bench/")]


def test_every_registered_env_passes(capsys, monkeypatch):
    """ALFWorld (built-in split when no real data is found), WebShop (built-in catalog), and any
    other built-in env; WebShopHTML (needs Chromium and chromedriver) in the next test."""
    monkeypatch.delenv("ALFWORLD_DATA", raising=False)
    monkeypatch.delenv("WEBSHOP_DATA", raising=False)
    ids = [e for e in builtin_env_ids() if e != "siri_bench/WebShopHTML-v0"]
    assert {"siri_bench/ALFWorld-v0", "siri_bench/WebShop-v0"} <= set(ids)
    assert main(["-q", "check", *ids]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    for env_id in ids:
        assert f"{env_id} (" in out
    assert out.count("  ok    ") == 5 * len(ids) and "FAIL" not in out
    assert "ignored seed: 8 seeds drew" in out and f"{len(ids)} environment(s) passed" in out


@pytest.mark.skipif(shutil.which("chromedriver") is None, reason="chromedriver not installed (Debian chromium-driver)")
def test_webshop_html_passes(capsys):
    assert main(["-q", "check", "siri_bench/WebShopHTML-v0", "--steps", "3", "--draws", "4"]) == 0, \
        capsys.readouterr().err
    assert "1 environment(s) passed" in capsys.readouterr().out


def test_a_seed_ignoring_env_fails_with_a_clear_message(capsys):
    assert main(["check", "tests/SeedIgnoring-v0"]) == 1
    captured = capsys.readouterr()
    assert "FAIL  ignored seed" in captured.out
    assert "check failed: tests/SeedIgnoring-v0: ignored seed: reset(seed=s) gave the same task" in captured.err
    assert "for 8 different seeds" in captured.err and f"over a split of {len(TASKS)} tasks" in captured.err
    assert "the env ignores the seed (or seeds itself with a constant)" in captured.err
    # its other checks pass: only the ignored-seed check can catch this bug
    assert captured.out.count("  ok    ") == 4


def test_non_deterministic_envs_fail(capsys):
    assert main(["check", "tests/Unseeded-v0", "tests/Drifting-v0"]) == 1
    err = capsys.readouterr().err
    assert "tests/Unseeded-v0: reset determinism: two env copies reset with seed" in err
    assert "tests/Drifting-v0: action replay: seed 0, a second env copy, after action 1 'win'" in err
    assert "observation differs" in err


def test_check_of_an_unknown_env_or_option_is_a_one_line_error(capsys):
    assert main(["check", "tests/Nope-v0"]) == 2
    assert "unknown environment 'tests/Nope-v0'" in capsys.readouterr().err
    assert main(["check", "siri_bench/WebShop-v0", "--set", "engine=fast"]) == 2
    assert "unknown key 'env.kwargs.engine' (allowed: catalog" in capsys.readouterr().err
