"""Start-up self-check of the fast ALFWorld engine against the stock engine, and the fallback.

The fast engine relies on private internals of textworld and on undocumented libdownward
symbols (see ``fast_state``), so before it is used the first time for a set of package
versions, it must reproduce the stock engine step for step on a small built-in game: two
generated games (each its walkthrough, a cached reset, a seeded random walk over admissible
commands plus "look", "inventory" and an invalid command) and a revisit of the first after
loading the second. The result is cached per (python, alfworld, textworld,
fast-downward-textworld, TatSu, fast-engine source) tuple in
``~/.cache/siri-bench/alfworld/fast-engine-selfcheck.json`` (``SIRI_BENCH_CACHE`` moves it), so
later processes only read a file (a failure is cached too; delete the file to check again). Any
difference, exception or missing symbol makes ``checked_fast_engine`` return the stock engine
with a warning that says why.

The built-in games ship no ALFWorld data: they are the domain and grammar that the ``alfworld``
package installs (``alfworld/data/alfred.pddl``, ``alfred.twl2``) plus the small PDDL problems
written below (a kitchen with seven receptacles and five objects).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import logging
import os
import platform
import random
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Distributions whose versions key the cached self-check result (and are pinned in pyproject).
CHECKED_PACKAGES = ("alfworld", "textworld", "fast-downward-textworld", "TatSu")
#: Commands mixed into random walks besides the admissible ones (the last is never admissible).
EXTRA_COMMANDS = ("look", "inventory", "jump over the moon")
CACHE_FILE = "fast-engine-selfcheck.json"
_SOURCES = ("fast_engine.py", "fast_state.py", "fast_textgen.py", "fast_selfcheck.py")
_RESULT: dict[str, CheckResult] = {}
_LOGGED: set[str] = set()


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    detail: str
    seconds: float = 0.0
    cached: bool = False


def build_stock_engine():
    """The stock engine the fast one must reproduce (``envs.alfworld.engine.make_stock_engine``)."""
    from envs.alfworld.engine import make_stock_engine

    return make_stock_engine()


# -- comparison --------------------------------------------------------------------------------

def step_record(state: Mapping, score: Any = None, done: Any = None) -> dict:
    """Everything observable about one engine answer, in comparable form.

    Observation, admissible commands (order kept), won, lost, score and done; plus the
    pre-sort valid-command order (it decides which operator a duplicate command applies),
    the applied operator, the facts (sorted: set order follows PYTHONHASHSEED in stock too)
    and the keys and values of the remaining public info fields.
    """
    last = state.get("_last_action")
    record = {
        "feedback": state.get("feedback"),
        "admissible_commands": list(state.get("admissible_commands") or []),
        "won": state.get("won"),
        "lost": state.get("lost"),
        "score": score,
        "done": done,
        "valid_commands": list(state.get("_valid_commands") or []),
        "last_action": None if last is None else (last.name, getattr(last, "id", None)),
        "facts": sorted(map(str, state.get("_facts") or [])),
        "keys": sorted(state.keys()),
    }
    for key in sorted(state.keys()):
        if not key.startswith("_") and key not in record and key not in ("raw",):
            value = state[key]
            record[key] = sorted(map(str, value)) if key == "facts" else value
    return record


@dataclass(frozen=True)
class Mismatch:
    step: int
    action: str
    field: str
    fast: Any
    stock: Any
    game: str = ""

    def __str__(self) -> str:
        def short(value: Any) -> str:
            text = repr(value)
            return text if len(text) <= 160 else text[:157] + "..."

        return (f"{self.game} step {self.step} ({self.action}): {self.field} differs: fast={short(self.fast)} "
                f"stock={short(self.stock)}")


def _diff(step: int, action: str, fast: dict, stock: dict, game: str = "") -> Mismatch | None:
    for key in sorted(set(fast) | set(stock)):
        if fast.get(key) != stock.get(key):
            return Mismatch(step, action, key, fast.get(key), stock.get(key), game)
    return None


def _label(game: Any) -> str:
    if isinstance(game, Mapping):
        return f"game {hashlib.sha256(json.dumps(game, sort_keys=True).encode()).hexdigest()[:12]}"
    return str(game)


def random_commands(rng: random.Random, admissible: list[str]) -> str:
    """One random-walk command: an admissible one, or "look", "inventory" or an invalid one."""
    return rng.choice(list(admissible) + list(EXTRA_COMMANDS))


def replay(fast: Any, stock: Any, script: Iterable[tuple], on_step: Callable[[dict], None] | None = None
           ) -> Mismatch | None:
    """Run ``script`` through both engines and return the first difference (None: identical).

    Script items: ``("load", game)``, ``("reset",)``, ``("step", command)`` and
    ``("walk", seed, n)`` (n random-walk steps chosen from the stock answer, stopping at done).
    """
    step, game = 0, ""
    admissible: list[str] = []
    for item in script:
        kind = item[0]
        if kind == "load":
            fast.load(item[1])
            stock.load(item[1])
            game = _label(item[1])
            continue
        if kind == "reset":
            answers = [(fast.reset(),), (stock.reset(),)]
            commands: list[str | None] = [None]
        elif kind == "step":
            commands = [item[1]]
        elif kind == "walk":
            rng, commands = random.Random(item[1]), [""] * item[2]
        else:
            raise ValueError(f"unknown script item {item!r}")
        for command in commands:
            if command is not None:
                if kind == "walk":
                    command = random_commands(rng, admissible)
                answers = [fast.step(command), stock.step(command)]
            fast_record, stock_record = step_record(*answers[0]), step_record(*answers[1])
            admissible = stock_record["admissible_commands"]
            if on_step:
                on_step(fast_record)
            mismatch = _diff(step, command or "reset", fast_record, stock_record, game)
            if mismatch:
                return mismatch
            step += 1
            if kind == "walk" and stock_record["done"]:
                break
    return None


def scenario(games: list, walk_steps: int = 12, seed: int = 0, revisit_walkthrough: bool = True) -> list[tuple]:
    """Each game: walkthrough, cached reset, random walk; then the first game again (a revisit
    from the LRU), with its walkthrough if asked, and another walk."""
    script: list[tuple] = []
    for index, (game, walkthrough) in enumerate(games):
        script += [("load", game), ("reset",), *[("step", c) for c in walkthrough],
                   ("reset",), ("walk", seed + index, walk_steps)]
    game, walkthrough = games[0]
    script += [("load", game), ("reset",)]
    if revisit_walkthrough:
        script += [*[("step", c) for c in walkthrough], ("reset",)]
    script.append(("walk", seed + len(games), walk_steps))
    return script


def game_scripts(games: list[tuple[Any, list[str]]], seed: int = 0, walk_steps: int = 20,
                 revisit_every: int = 5, second_reset: bool = True) -> list[tuple]:
    """The equivalence script for real games: per game its walkthrough, a cached reset, "look",
    "inventory" and an invalid command, a seeded random walk, (``second_reset``) another cached
    reset and a short walk; every ``revisit_every``-th game also revisits the game before it (an
    LRU hit) with a reset and a short walk."""
    script: list[tuple] = []
    for index, (game, walkthrough) in enumerate(games):
        rng_seed = seed * 100_003 + index
        script += [("load", game), ("reset",), *[("step", c) for c in walkthrough], ("reset",),
                   *[("step", c) for c in EXTRA_COMMANDS], ("walk", rng_seed, walk_steps)]
        if second_reset:
            script += [("reset",), ("walk", rng_seed + 50_000, max(walk_steps // 3, 1))]
        if revisit_every and index % revisit_every == revisit_every - 1:
            previous = games[index - 1][0]
            script += [("load", previous), ("reset",), ("walk", rng_seed + 70_000, max(walk_steps // 3, 1))]
    return script


def compare_on_games(game_files: list[str], seed: int = 0, walk_steps: int = 20, revisit_every: int = 5,
                     cache_size: int = 8) -> dict:
    """Replay ``game_scripts`` on the given game files through a fresh fast and stock engine.

    Returns ``{"games", "steps", "wins", "mismatch"}`` (``mismatch``: None or its description).
    """
    from envs.alfworld.fast_engine import build_fast_engine

    games = []
    for path in game_files:
        with open(path) as handle:
            games.append((str(path), list(json.load(handle).get("walkthrough") or [])))
    counts = {"steps": 0, "wins": 0}

    def count(record: dict) -> None:
        counts["steps"] += 1
        counts["wins"] += bool(record["won"])

    fast, stock = build_fast_engine(cache_size=cache_size), build_stock_engine()
    try:
        mismatch = replay(fast, stock, game_scripts(games, seed, walk_steps, revisit_every), on_step=count)
        cache = fast.unwrapped.cache_info()
    finally:
        fast.close()
        stock.close()
    return {"games": len(games), **counts, "mismatch": None if mismatch is None else str(mismatch), "cache": cache}


# -- the built-in games ------------------------------------------------------------------------

_RECEPTACLES = {  # id: (rtype, location, openable)
    "CounterTop_bar__plus_01_dot_00_bar__plus_00_dot_90_bar__minus_01_dot_00": ("CounterTopType", "loc_bar_1_bar__minus_1_bar_0_bar_30", False),
    "Fridge_bar__plus_02_dot_00_bar__plus_00_dot_00_bar__minus_01_dot_00": ("FridgeType", "loc_bar_2_bar__minus_1_bar_0_bar_30", True),
    "Microwave_bar__plus_03_dot_00_bar__plus_00_dot_90_bar__minus_01_dot_00": ("MicrowaveType", "loc_bar_3_bar__minus_1_bar_0_bar_30", True),
    "Sink_bar__plus_04_dot_00_bar__plus_00_dot_90_bar__minus_01_dot_00_bar_SinkBasin": ("SinkBasinType", "loc_bar_4_bar__minus_1_bar_0_bar_30", False),
    "Cabinet_bar__plus_05_dot_00_bar__plus_00_dot_40_bar__minus_01_dot_00": ("CabinetType", "loc_bar_5_bar__minus_1_bar_0_bar_30", True),
    "Cabinet_bar__plus_06_dot_00_bar__plus_00_dot_40_bar__minus_01_dot_00": ("CabinetType", "loc_bar_6_bar__minus_1_bar_0_bar_30", True),
    "SideTable_bar__plus_07_dot_00_bar__plus_00_dot_70_bar__minus_01_dot_00": ("SideTableType", "loc_bar_7_bar__minus_1_bar_0_bar_30", False),
}
_OBJECTS = {  # id: (otype, receptacle, properties)
    "Mug_bar__plus_01_dot_10_bar__plus_00_dot_95_bar__minus_01_dot_00": ("MugType", "CounterTop", ("pickupable", "cleanable", "heatable", "coolable", "isReceptacleObject")),
    "Apple_bar__plus_02_dot_10_bar__plus_00_dot_50_bar__minus_01_dot_00": ("AppleType", "Fridge", ("pickupable", "heatable", "coolable", "sliceable")),
    "Knife_bar__plus_01_dot_20_bar__plus_00_dot_95_bar__minus_01_dot_00": ("KnifeType", "CounterTop", ("pickupable",)),
    "DeskLamp_bar__plus_07_dot_10_bar__plus_00_dot_75_bar__minus_01_dot_00": ("DeskLampType", "SideTable", ("toggleable",)),
    "Sink_bar__plus_04_dot_00_bar__plus_00_dot_90_bar__minus_01_dot_00": ("SinkType", None, ()),
}
_CAN_CONTAIN = {
    "CounterTopType": ("MugType", "AppleType", "KnifeType"), "FridgeType": ("MugType", "AppleType"),
    "MicrowaveType": ("MugType", "AppleType"), "SinkBasinType": ("MugType", "AppleType", "KnifeType"),
    "CabinetType": ("MugType", "KnifeType"), "SideTableType": ("MugType", "AppleType", "KnifeType"),
}
_EXTRA_TYPES = ("ButterKnifeType",)  # named by the domain's SliceObject action
_GOALS = {
    "heat": ("put a hot mug in cabinet",
             "(heatable ?o) (objectType ?o MugType) (receptacleType ?r CabinetType) (isHot ?o) (inReceptacle ?o ?r)",
             ["go to countertop 1", "take mug 1 from countertop 1", "go to microwave 1", "heat mug 1 with microwave 1",
              "go to cabinet 1", "open cabinet 1", "move mug 1 to cabinet 1"]),
    "cool": ("put a cool apple in countertop",
             "(coolable ?o) (objectType ?o AppleType) (receptacleType ?r CounterTopType) (isCool ?o) (inReceptacle ?o ?r)",
             ["go to fridge 1", "open fridge 1", "take apple 1 from fridge 1", "cool apple 1 with fridge 1",
              "go to countertop 1", "move apple 1 to countertop 1"]),
}


def _problem(goal: str) -> str:
    def receptacle_id(prefix: str) -> str:
        return next(rid for rid in _RECEPTACLES if rid.startswith(prefix))

    otypes = sorted({o for o, _, _ in _OBJECTS.values()} | set(_EXTRA_TYPES))
    objects = ["agent1 - agent", "loc_bar_0_bar_0_bar_0_bar_30 - location"]
    objects += [f"{t} - otype" for t in otypes] + [f"{t} - rtype" for t in sorted(_CAN_CONTAIN)]
    objects += [f"{oid} - object" for oid in _OBJECTS] + [f"{rid} - receptacle" for rid in _RECEPTACLES]
    objects += [f"{loc} - location" for _, loc, _ in _RECEPTACLES.values()]
    init = ["(atLocation agent1 loc_bar_0_bar_0_bar_0_bar_30)"]
    for rid, (rtype, loc, openable) in _RECEPTACLES.items():
        init += [f"(receptacleType {rid} {rtype})", f"(receptacleAtLocation {rid} {loc})"]
        init += [f"(openable {rid})"] if openable else []
    for oid, (otype, where, properties) in _OBJECTS.items():
        init.append(f"(objectType {oid} {otype})")
        init += [f"({prop} {oid})" for prop in properties]
        if where is not None:
            rid = receptacle_id(where)
            init += [f"(inReceptacle {oid} {rid})", f"(objectAtLocation {oid} {_RECEPTACLES[rid][1]})"]
        else:
            init.append(f"(objectAtLocation {oid} {_RECEPTACLES[receptacle_id('Sink')][1]})")
    init += [f"(canContain {r} {o})" for r, os_ in _CAN_CONTAIN.items() for o in os_]
    newline = "\n        "
    return (f"(define (problem siri_bench_selfcheck_{goal})\n(:domain alfred)\n(:objects\n        "
            f"{newline.join(objects)}\n)\n(:init\n        {newline.join(init)}\n)\n"
            f"(:goal (and (exists (?r - receptacle) (exists (?o - object) (and {_GOALS[goal][1]})))))\n)\n")


def builtin_games() -> list[tuple[dict, list[str]]]:
    """The self-check's games as (game data, walkthrough), built from the alfworld package."""
    import alfworld

    data_dir = Path(alfworld.__file__).resolve().parent / "data"
    domain = (data_dir / "alfred.pddl").read_text()
    grammar = (data_dir / "alfred.twl2").read_text()
    games = []
    for goal, (task, _, walkthrough) in _GOALS.items():
        data = {"pddl_domain": domain, "grammar": grammar.replace("UNKNOWN GOAL", task),
                "pddl_problem": _problem(goal), "solvable": True, "walkthrough": walkthrough}
        games.append((data, walkthrough))
    return games


# -- the check and the fallback ---------------------------------------------------------------

@functools.cache
def version_key() -> str:
    """The versions the cached result is valid for, plus a hash of the fast engine's code."""
    parts = [f"python={platform.python_version()}"]
    for name in CHECKED_PACKAGES:
        try:
            parts.append(f"{name}={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            parts.append(f"{name}=missing")
    digest = hashlib.sha256()
    for source in _SOURCES:
        digest.update((Path(__file__).resolve().parent / source).read_bytes())
    parts.append(f"code={digest.hexdigest()[:16]}")
    return " ".join(parts)


def _cache_path() -> Path:
    from siri_bench.models import cache_dir

    return cache_dir() / "alfworld" / CACHE_FILE


def _write_cached(key: str, result: CheckResult) -> None:
    path = _cache_path()
    try:
        entries = json.loads(path.read_text()) if path.exists() else {}
    except (OSError, ValueError):
        entries = {}
    entries[key] = {"ok": result.ok, "detail": result.detail, "seconds": round(result.seconds, 3),
                    "checked_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as handle:
            json.dump(entries, handle, indent=1, sort_keys=True)
        os.replace(handle.name, path)
    except OSError as exc:  # a read-only home must not stop the engine
        log.debug("could not cache the fast-engine self-check in %s: %s", path, exc)


def _read_cached(key: str) -> CheckResult | None:
    try:
        entry = json.loads(_cache_path().read_text()).get(key)
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("ok"), bool):
        return None
    detail = str(entry.get("detail", ""))
    if not entry["ok"]:
        detail += f" (cached result; delete {_cache_path()} to check again)"
    return CheckResult(ok=entry["ok"], detail=detail, seconds=0.0, cached=True)


def run_self_check(walk_steps: int = 6) -> CheckResult:
    """Compare fresh fast engines with the stock engine on the built-in games (uncached).

    One fast engine plays ``scenario`` (first loads, cached resets, a revisit from its LRU);
    then a second fast engine in the same process loads the first game from the shared
    template cache (as the copies of a rollout group in one worker do) and plays it again.
    """
    from envs.alfworld.fast_engine import build_fast_engine, isolated_shared_cache

    start = time.perf_counter()
    engines: list[Any] = []
    try:
        with isolated_shared_cache():
            games = builtin_games()
            fast, stock, second = build_fast_engine(cache_size=4), build_stock_engine(), build_fast_engine(cache_size=4)
            engines += [fast, stock, second]
            wins: list[bool] = []
            mismatch = replay(fast, stock, scenario(games, walk_steps=walk_steps, revisit_walkthrough=False),
                              on_step=lambda r: wins.append(r["won"]))
            game, walkthrough = games[0]
            mismatch = mismatch or replay(second, stock, [("load", game), ("reset",),
                                                          *[("step", c) for c in walkthrough]],
                                          on_step=lambda r: wins.append(r["won"]))
        if mismatch is not None:
            return CheckResult(False, f"fast engine differs from stock: {mismatch}", time.perf_counter() - start)
        info, shared = fast.unwrapped.cache_info(), second.unwrapped.cache_info()
        exercised = (wins.count(True) >= len(games) + 1 and info["cached_resets"] > 0 and info["cache_hits"] > 0
                     and shared["shared_hits"] > 0 and shared["cached_resets"] > 0)
        if not exercised:
            return CheckResult(False, f"self-check did not win every built-in game and exercise cached resets, "
                                      f"revisits and shared templates: {wins.count(True)} wins, {info}, {shared}",
                               time.perf_counter() - start)
        return CheckResult(True, "identical to stock on the built-in games", time.perf_counter() - start)
    except Exception as exc:  # any failure of the fast path means: use stock
        return CheckResult(False, f"fast engine self-check raised {type(exc).__name__}: {exc}",
                           time.perf_counter() - start)
    finally:
        for engine in engines:
            engine.close()


def cached_self_check(use_cache: bool = True) -> CheckResult:
    """The self-check's result for the installed versions: memoised in the process and on disk
    (pass or fail; delete the file to check again); otherwise run (a few seconds)."""
    key = version_key()
    if use_cache:
        if key in _RESULT:
            return _RESULT[key]
        cached = _read_cached(key)
        if cached is not None:
            _RESULT[key] = cached
            return cached
    result = run_self_check()
    _RESULT[key] = result
    _write_cached(key, result)
    return result


def fallback_warning(reason: str) -> str:
    """Warn (RuntimeWarning, and the log once per process and reason) that stock is used."""
    message = (f"ALFWorld fast engine disabled, using the stock TextWorld engine (same results, about 10x "
               f"slower steps): {reason}. Installed: {version_key()}; the fast path was validated on "
               f"alfworld 0.4.2, textworld 1.7.0, fast-downward-textworld 20.6.4, TatSu 5.8.3.")
    warnings.warn(message, RuntimeWarning, stacklevel=3)
    if reason not in _LOGGED:
        _LOGGED.add(reason)
        log.warning(message)
    return message


def checked_fast_engine(cache_size: int, self_check: bool = True):
    """The fast engine if it is available and (with ``self_check``) passes; else stock + warning."""
    from envs.alfworld.fast_engine import build_fast_engine
    from envs.alfworld.fast_state import MissingSymbolError

    try:
        engine = build_fast_engine(cache_size=cache_size)
    except MissingSymbolError as exc:
        fallback_warning(str(exc))
        return build_stock_engine()
    if self_check:
        result = cached_self_check()
        if not result.ok:
            engine.close()
            fallback_warning(result.detail)
            return build_stock_engine()
    return engine
