"""The seed and determinism contract of text envs, checked (``siri-bench check ENV_ID``).

Gymnasium's ``env_checker`` checks that ``reset(seed=s)`` twice gives the same observation. Text
agents need more, and published results have broken on each of these (seeds silently ignored, one
seed reused for every episode, engines that are not reproducible):

* ``info contract`` - reset and step give the info keys every siri-bench env must give
  (:data:`REQUIRED_INFO`), and ``env.unwrapped.task_ids`` lists the split's tasks;
* ``reset determinism`` - two fresh env copies reset with the same seed give the same first
  observation, admissible actions and task; resetting again with that seed after playing gives
  them again;
* ``action replay`` - a fixed action sequence from the same seed gives the same observations,
  rewards, episode ends and admissible actions on both copies, and again after a reset;
* ``task option`` - ``reset(options={"task_id": t})`` plays task ``t``;
* ``ignored seed`` - different seeds over the split (or panel) give different tasks: an env that
  ignores the seed, or seeds itself with a constant, gives the same task every time.

The action sequence is drawn from the admissible actions with a generator seeded by the check
(never by the env), so it is itself reproducible; an admissible action that is a template
(``search[<query>]``) is filled with the first words of the task.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from siri_bench.errors import SiriBenchError

#: Info keys every siri-bench env gives at reset and after every step.
REQUIRED_INFO = ("admissible_actions", "task_id", "task_uid", "task_type", "task", "won", "score", "step",
                 "valid", "anchor_state")
CHECK_SEEDS = (0, 1, 12345)
IGNORED_SEED_DRAWS = 8
REPLAY_STEPS = 8
_TEMPLATE = re.compile(r"\[<[^\]]*>\]")


@dataclass(frozen=True)
class CheckResult:
    """One named check's verdict."""

    name: str
    passed: bool
    detail: str


@dataclass
class EnvCheckReport:
    """Every check of one env with the options it was made with."""

    env_id: str
    kwargs: dict[str, Any]
    results: list[CheckResult] = field(default_factory=list)
    note: str = ""

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed]


class _Mismatch(Exception):
    """A determinism check found two runs that differ (the message says where)."""


def _view(obs: Any, info: Mapping[str, Any]) -> tuple[str, tuple[str, ...], str]:
    return str(obs), tuple(str(a) for a in info.get("admissible_actions") or ()), str(info.get("task_id"))


def _differ(what: str, a: Any, b: Any) -> str:
    if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b):
        names = ("observation", "admissible actions", "task_id", "reward", "terminated", "truncated")
        for name, x, y in zip(names, a, b):
            if x != y:
                return f"{what}: {name} differs ({str(x)[:80]!r} vs {str(y)[:80]!r})"
    return f"{what}: {str(a)[:80]!r} vs {str(b)[:80]!r}"


def concrete_action(action: str, task: str) -> str:
    """An admissible action with a ``[<placeholder>]`` template filled from the task sentence."""
    words = " ".join(re.sub(r"[^\w ]+", " ", task).split()[:6]) or "item"
    return _TEMPLATE.sub(f"[{words}]", action)


def play(env: Any, seed: int, steps: int, actions: Sequence[str] | None = None) -> tuple[list[tuple], list[str]]:
    """Reset with ``seed`` and step; returns the trace and the actions taken.

    Without ``actions`` they are drawn from the admissible actions by ``random.Random(seed)``.
    """
    obs, info = env.reset(seed=seed)
    trace: list[tuple] = [_view(obs, info)]
    rng = random.Random(seed)
    taken: list[str] = []
    for k in range(steps if actions is None else len(actions)):
        if actions is not None:
            action = actions[k]
        else:
            admissible = list(info.get("admissible_actions") or []) or ["look"]
            action = concrete_action(rng.choice(admissible), str(info.get("task", "")))
        obs, reward, terminated, truncated, info = env.step(action)
        taken.append(action)
        trace.append((*_view(obs, info), float(reward), bool(terminated), bool(truncated)))
        if terminated or truncated:
            break
    return trace, taken


def _check_info(env: Any) -> str:
    task_ids = list(getattr(env.unwrapped, "task_ids", None) or [])
    if not task_ids:
        raise _Mismatch("env.unwrapped.task_ids is missing or empty (the split's tasks, canonical order)")
    obs, info = env.reset(seed=CHECK_SEEDS[0])
    missing = [k for k in REQUIRED_INFO if k not in info]
    if missing:
        raise _Mismatch(f"reset info lacks {', '.join(missing)}")
    if not isinstance(obs, str):
        raise _Mismatch(f"observations must be str, reset gave {type(obs).__name__}")
    admissible = list(info["admissible_actions"]) or ["look"]
    _, _, _, _, step_info = env.step(concrete_action(admissible[0], str(info["task"])))
    missing = [k for k in REQUIRED_INFO if k not in step_info]
    if missing:
        raise _Mismatch(f"step info lacks {', '.join(missing)}")
    return f"{len(task_ids)} tasks; reset and step info have {', '.join(REQUIRED_INFO)}"


def _check_reset(a: Any, b: Any, seeds: Sequence[int]) -> str:
    for seed in seeds:
        first_a = _view(*a.reset(seed=seed))
        first_b = _view(*b.reset(seed=seed))
        if first_a != first_b:
            raise _Mismatch(_differ(f"two env copies reset with seed {seed}", first_a, first_b))
        a.step(concrete_action((first_a[1] or ("look",))[0], ""))
        again = _view(*a.reset(seed=seed))
        if again != first_a:
            raise _Mismatch(_differ(f"reset(seed={seed}) after playing, against the first reset", again, first_a))
    return f"seeds {list(seeds)}: same first observation, admissible actions and task on two copies and again"


def _check_replay(a: Any, b: Any, seeds: Sequence[int], steps: int) -> str:
    lengths = []
    for seed in seeds:
        trace, actions = play(a, seed, steps)
        for who, env in (("a second env copy", b), ("the same env after a reset", a)):
            again, _ = play(env, seed, steps, actions)
            for k, (x, y) in enumerate(zip(trace, again)):
                if x != y:
                    at = "at reset" if k == 0 else f"after action {k} {actions[k - 1]!r} of {actions!r}"
                    raise _Mismatch(_differ(f"seed {seed}, {who}, {at}", y, x))
            if len(again) != len(trace):
                raise _Mismatch(f"seed {seed}, {who}: the episode lasted {len(again) - 1} steps, not {len(trace) - 1}")
        lengths.append(len(trace) - 1)
    return f"fixed action sequences ({', '.join(map(str, lengths))} steps) replay identically"


def _check_task_option(env: Any) -> str:
    task_ids = list(env.unwrapped.task_ids)
    chosen = [task_ids[0], task_ids[-1]]
    for task_id in chosen:
        _, info = env.reset(seed=CHECK_SEEDS[0], options={"task_id": task_id})
        if str(info["task_id"]) != str(task_id):
            raise _Mismatch(f"reset(options={{'task_id': {task_id!r}}}) played task {info['task_id']!r}")
    return f"options task_id selects the task ({len(chosen)} tried)"


def _check_ignored_seed(env: Any, draws: int) -> str:
    task_ids = list(env.unwrapped.task_ids)
    if len(set(task_ids)) < 2:
        return "the split has one task: nothing to draw (not checkable)"
    seeds = [1000 + 7919 * k for k in range(draws)]
    drawn = [str(env.reset(seed=s)[1]["task_id"]) for s in seeds]
    if len(set(drawn)) == 1:
        raise _Mismatch(f"reset(seed=s) gave the same task {drawn[0]!r} for {draws} different seeds {seeds} over a "
                        f"split of {len(task_ids)} tasks: the env ignores the seed (or seeds itself with a constant), "
                        "so every episode would play the same task")
    return f"{draws} seeds drew {len(set(drawn))} different tasks of {len(task_ids)}"


def check_env(make: Callable[[], Any], env_id: str, kwargs: Mapping[str, Any] | None = None, *,
              seeds: Sequence[int] = CHECK_SEEDS, steps: int = REPLAY_STEPS,
              draws: int = IGNORED_SEED_DRAWS) -> EnvCheckReport:
    """Run every check on two env copies made by ``make()``; each check's failure is recorded, not raised."""
    report = EnvCheckReport(env_id, dict(kwargs or {}))
    a, b = make(), make()
    try:
        checks: list[tuple[str, Callable[[], str]]] = [
            ("info contract", lambda: _check_info(a)),
            ("reset determinism", lambda: _check_reset(a, b, seeds)),
            ("action replay", lambda: _check_replay(a, b, seeds[:2], steps)),
            ("task option", lambda: _check_task_option(a)),
            ("ignored seed", lambda: _check_ignored_seed(a, draws)),
        ]
        for name, run in checks:
            try:
                report.results.append(CheckResult(name, True, run()))
            except _Mismatch as exc:
                report.results.append(CheckResult(name, False, str(exc)))
            except SiriBenchError:
                raise  # the env cannot run here (missing data or browser): the caller says so
            except Exception as exc:  # noqa: BLE001 - an env that crashes fails the check it crashed in
                report.results.append(CheckResult(name, False, f"the env raised {type(exc).__name__}: {exc}"))
    finally:
        for env in (a, b):
            try:
                env.close()
            except Exception:  # noqa: BLE001 - a failing close must not hide the verdict
                pass
    return report
