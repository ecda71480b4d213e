"""``siri-bench check [ENV_ID ...]``: the seed and determinism contract of environments.

Runs :mod:`envs.determinism` on each named env (all registered envs without a name): the same
seed gives the same first observation and admissible actions, a fixed action sequence gives the
same observations twice, ``options.task_id`` selects the task, and different seeds give different
tasks (an env that ignores its seed fails). Exits 1 naming every failed check, 0 when all pass.
Without real data an env is checked on its built-in split (ALFWorld ``builtin_eval``).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="check environments' seed and determinism contract",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("env_ids", nargs="*", metavar="ENV_ID", help="registered env id(s) (default: every registered env)")
    p.add_argument("--split", default=None, help="split or task panel to check on (default: the env's default split, "
                                                 "or its built-in split when no real data is found)")
    p.add_argument("--set", action="append", default=[], metavar="key=value", dest="settings",
                   help="env option (env.kwargs), e.g. engine=stock; repeatable")
    p.add_argument("--steps", type=int, default=None, help="steps of each replayed action sequence (default 8)")
    p.add_argument("--draws", type=int, default=None, help="seeds drawn by the ignored-seed check (default 8)")
    p.set_defaults(func=run)


def _candidates(spec: Any, split: str | None, settings: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """Env options to try in order, each with the note printed when it is the one used."""
    if split is not None:
        from envs.panels import resolve_split

        env_split, panel = resolve_split(spec.id, split)
        return [({**settings, "split": env_split}, f"panel {panel.ref}" if panel else "")]
    out = [(dict(settings), "")]
    builtin = sorted((s for s in spec.splits if s.startswith("builtin")),
                     key=lambda s: (not any(k in s for k in ("eval", "test")), s))
    if builtin and "split" not in settings:
        out.append(({**settings, "split": builtin[0]}, f"no real data found: checked on the built-in split {builtin[0]}"))
    return out


def check_one(env_id: str, split: str | None, settings: dict[str, Any], **limits: Any) -> Any:
    """Make the env with the first options that work here and run every check (see the module)."""
    from envs.determinism import check_env
    from envs.workers import make_env
    from siri_bench.config import validate_env_kwargs
    from siri_bench.errors import DataError
    from siri_bench.registry import ENVS

    spec = ENVS.get(env_id)
    validate_env_kwargs(env_id, settings)  # unknown options: a one-line error
    candidates = _candidates(spec, split, settings)
    for number, (kwargs, note) in enumerate(candidates):
        try:
            make_env(env_id, kwargs).close()
        except DataError:
            if number == len(candidates) - 1:
                raise
            continue
        report = check_env(lambda kw=kwargs: make_env(env_id, kw), env_id, kwargs,
                           **{k: v for k, v in limits.items() if v is not None})
        report.note = note
        return report
    raise AssertionError("unreachable")


def run(args: argparse.Namespace) -> int:
    from siri_bench.config import parse_override
    from siri_bench.errors import SiriBenchError
    from siri_bench.registry import ENVS

    settings = dict(parse_override(text) for text in args.settings)
    env_ids = list(args.env_ids) or ENVS.names()
    explicit = bool(args.env_ids)
    failed: list[str] = []
    checked = 0
    for env_id in env_ids:
        try:
            report = check_one(env_id, args.split, settings, steps=args.steps, draws=args.draws)
        except SiriBenchError as exc:
            if explicit:
                raise
            print(f"{env_id}: skipped, cannot run here: {exc}")
            continue
        checked += 1
        options = ", ".join(f"{k}={v}" for k, v in report.kwargs.items()) or "default options"
        print(f"{env_id} ({options}{'; ' + report.note if report.note else ''})")
        for result in report.results:
            print(f"  {'ok  ' if result.passed else 'FAIL'}  {result.name}: {result.detail}")
        failed += [f"{env_id}: {r.name}: {r.detail}" for r in report.failures()]
    if failed:
        for line in failed:
            print(f"check failed: {line}", file=sys.stderr)
        return 1
    print(f"{checked} environment(s) passed the seed and determinism checks")
    return 0
