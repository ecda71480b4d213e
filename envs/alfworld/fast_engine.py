"""The fast ALFWorld engine: the real TextWorld PDDL engine, translated once, reset from a
snapshot, with memoised text generation. Same API and same output as the stock engine.

The stock engine (``make_stock_engine`` in ``envs/alfworld/engine.py``) is textworld's
``PddlEnv`` wrapped in alfworld's ``AlfredDemangler(shuffle=False)`` and ``AlfredInfos``. The
fast engine is the same wrapper chain around ``FastPddlEnv``, a ``PddlEnv`` subclass that:

- translates each game's PDDL once (``fast_state.Translation``; stock translates four times per
  load + reset) and defers the replanning translation until a planner asks for it;
- keeps the parsed and translated game (a "template": logic, translation, initial facts, the
  initial ``GameState`` per requested infos) in a process-wide LRU shared by the engines of the
  process, so the copies of a rollout group held by one worker translate their game once;
- keeps, per engine, an LRU of live games (``cache_size``; about 1.2 MB per game with its
  template): a revisit reloads the memoised SAS text into libdownward (milliseconds);
- resets a loaded game from the snapshot taken at its first reset: the lib's initial state id
  (``set_state_id``), the Python facts, and a copy of the initial ``GameState``; the snapshot
  is used only for the infos and entity names it was derived with;
- derives text with ``fast_textgen.FastGrammar`` (no TatSu re-parses, no deep copies).

``step`` is textworld's own ``PddlEnv.step``, so command matching, scoring and the info
fields are computed by the stock code. Nothing in textworld or alfworld is patched; everything
lives in instances created here. A start-up self-check (``fast_selfcheck``) compares this
engine with the stock one and ``make_fast_engine`` falls back to stock, with a warning, when
anything differs or a libdownward symbol is missing. Engines are not thread-safe (neither is
stock): use them from one thread, one worker process per parallel stream.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import textworld
from textworld.core import GameState
from textworld.envs.pddl import PddlEnv
from textworld.generator.game import EntityInfo

from envs.alfworld.fast_state import FactSnapshot, FastPddlState, LibHandle, Translation
from envs.alfworld.fast_textgen import FastGameLogic

#: Default number of games kept loaded per engine (one engine per worker process).
DEFAULT_CACHE_SIZE = 64


@dataclass(frozen=True)
class _ResetSnapshot:
    """The ``GameState`` of a game right after its first reset, and what it was derived with."""

    game_state: GameState
    names: tuple  # entity (id, name) pairs the text was derived with


@dataclass
class _GameTemplate:
    """What every engine of the process shares about one game: nothing here depends on a lib."""

    data: Mapping
    logic: FastGameLogic
    translation: Translation
    entities: tuple  # (id, type) of each entity, in stock ``_get_entity_infos`` order
    facts: FactSnapshot | None = None  # the initial state's facts (taken at the first reset)
    snapshots: dict = field(default_factory=dict)  # requested infos -> _ResetSnapshot


@dataclass
class _LoadedGame:
    """One game in an engine's LRU: the shared template plus this engine's live state."""

    template: _GameTemplate
    state: FastPddlState
    entity_infos: dict


class _TemplateCache:
    """The process-wide LRU of game templates, so that the copies of a rollout group held by
    one worker translate their game once. Its capacity is the largest ``cache_size`` asked for."""

    def __init__(self) -> None:
        self.capacity = 0
        self.templates: OrderedDict[str, _GameTemplate] = OrderedDict()

    def get(self, key: str) -> _GameTemplate | None:
        template = self.templates.get(key)
        if template is not None:
            self.templates.move_to_end(key)
        return template

    def put(self, key: str, template: _GameTemplate) -> None:
        self.templates[key] = template
        while len(self.templates) > self.capacity:
            self.templates.popitem(last=False)


_TEMPLATES = _TemplateCache()


def clear_shared_cache(capacity: int | None = None) -> None:
    """Forget the process-wide game templates (engines keep the games they hold); with
    ``capacity``, also set how many the process keeps from now on."""
    _TEMPLATES.templates.clear()
    if capacity is not None:
        _TEMPLATES.capacity = max(int(capacity), 1)


@contextmanager
def isolated_shared_cache() -> Iterator[None]:
    """Run with an empty process-wide template cache, then put the previous one back (the
    self-check uses this so that it neither depends on nor pollutes the process's cache)."""
    global _TEMPLATES
    saved, _TEMPLATES = _TEMPLATES, _TemplateCache()
    _TEMPLATES.capacity = saved.capacity
    try:
        yield
    finally:
        _TEMPLATES = saved


def _copy_game_state(state: GameState) -> GameState:
    """A copy whose containers are new (the values inside are never mutated by the engine)."""
    copy = GameState()
    for key, value in state.items():
        if isinstance(value, list):
            value = list(value)
        elif isinstance(value, dict):
            value = dict(value)
        copy[key] = value
    return copy


def _infos_key(infos: textworld.EnvInfos) -> tuple:
    """What a reset's GameState depends on besides the game: the requested infos."""
    return tuple((slot, tuple(value) if isinstance(value, list) else value)
                 for slot in textworld.EnvInfos.__slots__ for value in [getattr(infos, slot)])


def _names(entity_infos: dict) -> tuple:
    return tuple(sorted((info.id, info.name) for info in entity_infos.values()))


def _new_entity_infos(entities: tuple) -> dict:
    """Fresh ``EntityInfo`` objects as stock ``PddlEnv._get_entity_infos`` makes them."""
    infos = {}
    for entity_id, entity_type in entities:
        info = EntityInfo(entity_id, entity_type)
        info.name = info.id
        info.definite = "the"
        info.indefinite = "a"
        infos[entity_id] = info
    return infos


def _read_game(filename_or_data: str | Mapping) -> tuple[str, Mapping | bytes, str | None]:
    """(cache key, game data or the file's bytes, file name or None): the key hashes the content."""
    if isinstance(filename_or_data, Mapping):
        raw = json.dumps(filename_or_data, sort_keys=True).encode("utf-8")
        return "data:" + hashlib.sha256(raw).hexdigest(), filename_or_data, None
    with open(filename_or_data, "rb") as handle:
        raw = handle.read()
    return "file:" + hashlib.sha256(raw).hexdigest(), raw, filename_or_data


class FastPddlEnv(PddlEnv):
    """textworld's ``PddlEnv`` with translate-once loads, snapshot resets and a game LRU."""

    engine_mode = "fast"

    def __init__(self, infos: textworld.EnvInfos | None = None, cache_size: int = DEFAULT_CACHE_SIZE):
        self._cache_size = max(int(cache_size), 1)
        self._games: OrderedDict[str, _LoadedGame] = OrderedDict()
        self._game: _LoadedGame | None = None
        self._handle: LibHandle | None = None
        self.stats = {"loads": 0, "cache_hits": 0, "shared_hits": 0, "cached_resets": 0, "full_resets": 0}
        super().__init__(infos)  # dlopens a private copy of libdownward
        self._handle = LibHandle(self.downward_lib)  # raises MissingSymbolError
        _TEMPLATES.capacity = max(_TEMPLATES.capacity, self._cache_size)

    # -- loading ---------------------------------------------------------------------------

    def load(self, filename_or_data: str | Mapping) -> None:
        key, content, game_file = _read_game(filename_or_data)
        self.stats["loads"] += 1
        game = self._games.get(key)
        if game is not None:
            self._games.move_to_end(key)
            self.stats["cache_hits"] += 1
        else:
            game = self._load_new(key, content)
            self._games[key] = game
            while len(self._games) > self._cache_size:
                self._games.popitem(last=False)
        data = game.template.data
        self._game = game
        self._game_file = game_file
        self._game_data = data
        self.walkthrough = data.get("walkthrough", None)
        self._logic = game.template.logic
        self._pddl_state = game.state
        self._entity_infos = game.entity_infos

    def _load_new(self, key: str, content: Mapping | bytes) -> _LoadedGame:
        """This engine's live copy of a game: from the process's template when another engine
        loaded it, else parsed and translated here (and shared from now on)."""
        template = _TEMPLATES.get(key)
        if template is not None:
            self.stats["shared_hits"] += 1
            if template.facts is not None:
                state = FastPddlState.from_snapshot(self._handle, template.translation, template.logic,
                                                    template.facts)
            else:
                state = FastPddlState(self._handle, template.translation, template.logic)
            return _LoadedGame(template, state, _new_entity_infos(template.entities))
        data = json.loads(content) if isinstance(content, bytes) else content
        logic = FastGameLogic(domain=data["pddl_domain"], grammar=data["grammar"])
        translation = Translation(logic.domain, data["pddl_problem"])
        state = FastPddlState(self._handle, translation, logic)
        self._pddl_state = state
        entity_infos = self._get_entity_infos()
        entities = tuple((info.id, info.type) for info in entity_infos.values())
        template = _GameTemplate(data=data, logic=logic, translation=translation, entities=entities)
        _TEMPLATES.put(key, template)
        return _LoadedGame(template, state, entity_infos)

    # -- resetting -------------------------------------------------------------------------

    def reset(self) -> GameState:
        game = self._game
        if game is None:
            raise RuntimeError("FastPddlEnv.reset() called before load()")
        template = game.template
        initial_id = self._handle.activate(template.translation)
        self._pddl_state = game.state
        if template.facts is not None:
            game.state.restore(template.facts)
            self.downward_lib.set_state_id(initial_id)
        infos_key = _infos_key(self.request_infos)
        snapshot = template.snapshots.get(infos_key)
        self.prev_state = None
        self._last_action = None
        self._moves = 0
        if snapshot is not None and snapshot.names == _names(self._entity_infos):
            self.stats["cached_resets"] += 1
            self.state = _copy_game_state(snapshot.game_state)
            self.state["_entity_infos"] = dict(self._entity_infos)  # this engine's objects, as stock
            return self.state
        # First reset of this game (its state is the freshly built initial one), other requested
        # infos, or entity names changed since the snapshot (shuffle=True demangler): derive it all.
        self.stats["full_resets"] += 1
        state = self._derive_initial_state()
        if template.facts is None:
            template.facts = game.state.snapshot()
        template.snapshots[infos_key] = _ResetSnapshot(game_state=_copy_game_state(state),
                                                       names=_names(self._entity_infos))
        return state

    def _derive_initial_state(self) -> GameState:
        """The body of stock ``PddlEnv.reset`` after it has built a new ``PddlState``."""
        self.state = GameState()
        context = {
            "state": self._pddl_state,
            "facts": list(self._pddl_state.facts),
            "variables": {},
            "mapping": {},
            "entity_infos": self._entity_infos,
        }
        self.state.feedback = self._logic.grammar.derive("#intro#", context)
        self.state.raw = self.state.feedback
        self._gather_infos()
        if "walkthrough" in self.request_infos.extras:
            self.state["extra.walkthrough"] = self.walkthrough or self._pddl_state.replan(self._entity_infos)
        return self.state

    # -- housekeeping ----------------------------------------------------------------------

    def cache_info(self) -> dict:
        """Games held, capacity and counters (loads, cache hits, cached and full resets)."""
        return {"games": len(self._games), "capacity": self._cache_size, **self.stats,
                "lib_loads": self._handle.loads if self._handle else 0,
                "process_games": len(_TEMPLATES.templates), "process_capacity": _TEMPLATES.capacity}

    def clear_cache(self) -> None:
        """Forget every loaded game: the next load translates again."""
        self._games.clear()
        self._game = None
        if self._handle is not None:
            self._handle.forget()

    def close(self) -> None:
        self.clear_cache()
        super().close()


def make_fast_engine(cache_size: int = DEFAULT_CACHE_SIZE, self_check: bool = True):
    """The fast engine (the stock wrapper chain around ``FastPddlEnv``), or the stock engine
    with a warning when the fast path is unavailable or its self-check finds a difference.

    ``load(game_file)``, ``reset() -> GameState``, ``step(command) -> (GameState, score, done)``,
    ``close()``; ``engine_mode(engine)`` says which one you got.
    """
    from envs.alfworld import fast_selfcheck

    return fast_selfcheck.checked_fast_engine(cache_size=cache_size, self_check=self_check)


def build_fast_engine(cache_size: int = DEFAULT_CACHE_SIZE, infos: textworld.EnvInfos | None = None):
    """The fast engine, unchecked: ``make_stock_engine``'s wrapper chain around ``FastPddlEnv``
    (``infos`` defaults to the env's request; tests pass others)."""
    from alfworld.agents.environment.alfred_tw_env import AlfredDemangler, AlfredInfos

    from envs.alfworld.engine import engine_request_infos

    env = FastPddlEnv(infos or engine_request_infos(), cache_size=cache_size)
    return AlfredInfos(AlfredDemangler(shuffle=False)(env))


def engine_mode(engine: Any) -> str:
    """"fast" for an engine built here, "stock" otherwise."""
    return getattr(getattr(engine, "unwrapped", engine), "engine_mode", "stock")
