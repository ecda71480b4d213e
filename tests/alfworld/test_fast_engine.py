"""The fast ALFWorld engine on its built-in games: self-check, fallback, LRU, lazy replanning.

Real-game equivalence is in test_fast_engine_equivalence.py; these tests need no data.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from envs.alfworld import fast_engine, fast_state, fast_textgen
from envs.alfworld import fast_selfcheck as sc
from envs.alfworld.engine import make_engine
from envs.alfworld.fast_engine import (
    FastPddlEnv,
    _names,
    build_fast_engine,
    clear_shared_cache,
    engine_mode,
    make_fast_engine,
)


@pytest.fixture()
def fresh_check(tmp_path, monkeypatch):
    """An empty self-check cache (disk and process) for this test."""
    monkeypatch.setenv("SIRI_BENCH_CACHE", str(tmp_path))
    monkeypatch.setattr(sc, "_RESULT", {})
    return tmp_path / "alfworld" / sc.CACHE_FILE


@pytest.fixture(autouse=True)
def _no_shared_templates():
    """Each test starts without games that other engines of this process loaded."""
    clear_shared_cache()
    yield
    clear_shared_cache()


@pytest.fixture(scope="module")
def games():
    return sc.builtin_games()


def test_builtin_games_are_won_by_their_walkthroughs_on_the_stock_engine(games):
    stock = sc.build_stock_engine()
    for data, walkthrough in games:
        stock.load(data)
        state = stock.reset()
        assert "Your task is to:" in state["feedback"] and not state["won"]
        for command in walkthrough:
            assert command in state["admissible_commands"], command
            state, score, done = stock.step(command)
        assert state["won"] and score == 1 and done


def test_self_check_passes_and_is_cached_per_version(fresh_check, monkeypatch):
    result = sc.cached_self_check()
    assert result.ok, result.detail
    assert not result.cached
    stored = json.loads(fresh_check.read_text())
    assert list(stored) == [sc.version_key()] and stored[sc.version_key()]["ok"] is True

    # A new process reads the file instead of checking again.
    monkeypatch.setattr(sc, "_RESULT", {})
    monkeypatch.setattr(sc, "run_self_check", lambda: pytest.fail("the cached result was not used"))
    again = sc.cached_self_check()
    assert again.ok and again.cached

    engine = make_fast_engine(cache_size=4)
    assert engine_mode(engine) == "fast" and isinstance(engine.unwrapped, FastPddlEnv)


def test_version_key_names_every_pinned_package_and_the_code():
    key = sc.version_key()
    for name in ("alfworld=", "textworld=", "fast-downward-textworld=", "TatSu=", "python=", "code="):
        assert name in key


def test_missing_libdownward_symbol_falls_back_to_stock_with_a_warning(fresh_check, monkeypatch):
    monkeypatch.setattr(fast_state, "STATE_ID_SYMBOLS",
                        {**fast_state.STATE_ID_SYMBOLS, "get_state_id_v2": ([], None)})
    monkeypatch.setattr(sc, "run_self_check", lambda: pytest.fail("no self-check without the symbols"))
    with pytest.warns(RuntimeWarning, match="no symbol 'get_state_id_v2'"):
        engine = make_fast_engine(cache_size=4)
    assert engine_mode(engine) == "stock"
    assert type(engine.unwrapped).__name__ == "PddlEnv"


def test_bind_state_symbols_sets_ctypes_signatures_and_rejects_a_lib_without_them():
    class Function:
        argtypes = restype = "unset"

    class Lib:
        get_state_id = Function()
        set_state_id = Function()

    lib = Lib()
    fast_state.bind_state_symbols(lib)
    assert lib.get_state_id.argtypes == [] and lib.get_state_id.restype is fast_state.ctypes.c_int
    assert lib.set_state_id.argtypes == [fast_state.ctypes.c_int] and lib.set_state_id.restype is None
    del Lib.set_state_id
    with pytest.raises(fast_state.MissingSymbolError, match="set_state_id"):
        fast_state.bind_state_symbols(Lib())


def test_a_text_difference_fails_the_self_check_and_falls_back(fresh_check, monkeypatch):
    derive = fast_textgen.FastGrammar.derive
    monkeypatch.setattr(fast_textgen.FastGrammar, "derive",
                        lambda self, start, context={}: derive(self, start, context).replace("mug", "cup"))
    with pytest.warns(RuntimeWarning, match="differs from stock") as caught:
        engine = make_fast_engine(cache_size=4)
    assert engine_mode(engine) == "stock"
    message = str(caught[0].message)
    assert "feedback" in message or "admissible_commands" in message
    stored = json.loads(fresh_check.read_text())[sc.version_key()]
    assert stored["ok"] is False and "differs from stock" in stored["detail"]

    # The next process reads the failure and falls back without checking again, still warning.
    monkeypatch.setattr(sc, "_RESULT", {})
    monkeypatch.setattr(sc, "run_self_check", lambda: pytest.fail("the cached failure was not used"))
    with pytest.warns(RuntimeWarning, match="cached result; delete"):
        assert engine_mode(make_fast_engine(cache_size=4)) == "stock"


def test_a_state_difference_fails_the_self_check(fresh_check, monkeypatch):
    """A restore that forgets a fact (here: every door closes again) must be caught."""
    restore = fast_state.FastPddlState.restore

    def leaky_restore(self, snapshot):
        restore(self, snapshot)
        for signature in [sig for sig in self._facts if sig.name == "openable"]:
            del self._facts[signature]

    monkeypatch.setattr(fast_state.FastPddlState, "restore", leaky_restore)
    result = sc.cached_self_check()
    assert not result.ok and "differs from stock" in result.detail


def test_an_exception_in_the_fast_path_falls_back(fresh_check, monkeypatch):
    def broken(self, key, content):
        raise KeyError("pddl_problem")

    monkeypatch.setattr(FastPddlEnv, "_load_new", broken)
    with pytest.warns(RuntimeWarning, match="raised KeyError"):
        engine = make_engine("fast", cache_size=4)
    assert engine_mode(engine) == "stock"


def test_make_engine_fast_gives_the_checked_fast_engine(fresh_check):
    engine = make_engine("fast", cache_size=3)
    assert engine_mode(engine) == "fast"
    assert engine.unwrapped.cache_info()["capacity"] == 3
    assert engine_mode(make_engine("stock")) == "stock"


def test_lru_evicts_the_oldest_game_and_reloads_it_identically(games, monkeypatch):
    fast, stock = build_fast_engine(cache_size=1), sc.build_stock_engine()
    monkeypatch.setattr(fast_engine._TEMPLATES, "capacity", 1)  # other tests' engines asked for more
    (a, walk_a), (b, _) = games
    script = [("load", a), ("reset",), ("walk", 1, 5), ("load", b), ("reset",), ("walk", 2, 5),
              ("load", a), ("reset",), *[("step", c) for c in walk_a], ("reset",)]
    assert sc.replay(fast, stock, script) is None
    info = fast.unwrapped.cache_info()
    assert info["games"] == 1 and info["process_games"] == 1
    assert info["cache_hits"] == info["shared_hits"] == 0 and info["full_resets"] == 3
    assert info["cached_resets"] == 1


def test_engines_of_one_process_share_translated_games(games, monkeypatch):
    """The copies of a rollout group in one worker: the second engine neither parses nor
    translates, and its first reset is served from the first engine's snapshot."""
    first, second, stock = build_fast_engine(cache_size=4), build_fast_engine(cache_size=4), sc.build_stock_engine()
    (a, walk_a), _ = games
    first.load(a)
    first.reset()
    monkeypatch.setattr(fast_state, "pddl_to_sas", lambda *args, **kw: pytest.fail("translated again"))
    monkeypatch.setattr(fast_engine, "FastGameLogic", lambda *args, **kw: pytest.fail("parsed again"))
    script = [("load", a), ("reset",), *[("step", c) for c in walk_a], ("reset",), ("walk", 5, 6)]
    assert sc.replay(second, stock, script) is None
    info = second.unwrapped.cache_info()
    assert info["shared_hits"] == 1 and info["full_resets"] == 0 and info["cached_resets"] == 2
    # The first engine is unaffected by the second one's play.
    assert sc.replay(first, stock, [("reset",), ("walk", 6, 6)]) is None


def test_revisits_and_cached_resets_skip_translation(games, monkeypatch):
    fast = build_fast_engine(cache_size=4)
    (a, walk_a), (b, _) = games
    fast.load(a)
    fast.reset()
    fast.load(b)
    fast.reset()
    calls = []
    monkeypatch.setattr(fast_state, "pddl_to_sas", lambda *args, **kw: calls.append(args))
    fast.load(a)  # a revisit: no translation, one load_sas of the memoised SAS text
    state = fast.reset()
    for command in walk_a:
        state, score, done = fast.step(command)
    assert done and score == 1
    for _ in range(3):
        state = fast.reset()
        assert not state["won"] and "Your task is to: put a hot mug in cabinet." in state["feedback"]
    assert calls == []
    info = fast.unwrapped.cache_info()
    assert info["cache_hits"] == 1 and info["lib_loads"] == 3 and info["cached_resets"] == 4


def test_returned_states_are_copies_callers_may_mutate(games):
    fast = build_fast_engine(cache_size=2)
    fast.load(games[0][0])
    first = fast.reset()
    expected = list(first["admissible_commands"])
    first["admissible_commands"].append("teleport")
    first["feedback"] = "changed"
    second = fast.reset()
    assert second["admissible_commands"] == expected and second["feedback"] != "changed"


def test_game_content_keys_the_cache(games, tmp_path):
    data, _ = games[0]
    path = tmp_path / "game.tw-pddl"
    path.write_text(json.dumps(data))
    fast = build_fast_engine(cache_size=4)
    fast.load(str(path))
    first = fast.reset()
    fast.load(str(path))
    assert fast.reset()["feedback"] == first["feedback"]
    assert fast.unwrapped.cache_info()["cache_hits"] == 1
    path.write_text(json.dumps({**data, "grammar": data["grammar"].replace("a hot mug", "a warm mug")}))
    fast.load(str(path))  # changed content: a new game, not a stale cache hit
    changed = fast.reset()
    assert "put a warm mug in cabinet" in changed["feedback"] and changed["extra.gamefile"] == str(path)
    assert fast.unwrapped.cache_info()["games"] == 2 and fast.unwrapped.cache_info()["cache_hits"] == 1


def test_translation_does_not_clobber_sys_argv(games):
    before = list(sys.argv)
    fast = build_fast_engine(cache_size=2)
    fast.load(games[0][0])
    fast.reset()
    assert sys.argv == before


def test_planner_infos_match_stock_and_replanning_is_translated_lazily(games):
    """With planner-backed infos (policy_commands, facts) the fast engine still matches stock;
    without them the optimised translation is never made."""
    import textworld
    from alfworld.agents.environment.alfred_tw_env import AlfredDemangler, AlfredInfos
    from textworld.envs.pddl import PddlEnv

    lazy = build_fast_engine(cache_size=2)
    lazy.load(games[0][0])
    lazy.reset()
    lazy.step("go to countertop 1")
    assert lazy.unwrapped._pddl_state._translation._sas_replan is None

    infos = textworld.EnvInfos(won=True, admissible_commands=True, facts=True, policy_commands=True,
                               extras=["gamefile", "walkthrough"])
    fast = build_fast_engine(cache_size=2, infos=infos)
    stock = AlfredInfos(AlfredDemangler(shuffle=False)(PddlEnv(infos)))
    (a, walk_a), (b, _) = games
    script = [("load", a), ("reset",), *[("step", c) for c in walk_a[:3]], ("load", b), ("reset",),
              ("step", "go to fridge 1"), ("load", a), ("reset",), ("walk", 3, 3)]
    records = []
    assert sc.replay(fast, stock, script, on_step=records.append) is None
    assert records[0]["policy_commands"] and records[0]["facts"]
    # The game came from the shared cache, where a reset with the default infos left a snapshot:
    # that snapshot must not be served to an engine that requests other infos.
    assert fast.unwrapped.stats["shared_hits"] >= 1
    assert fast.unwrapped._pddl_state._translation._sas_replan is not None


def test_shuffled_names_are_rederived_not_served_from_a_stale_snapshot(games):
    """AlfredDemangler(shuffle=True) renames objects at every load: a cached reset after such a
    load must show the new names (the snapshot is keyed by the names it was derived with)."""
    from alfworld.agents.environment.alfred_tw_env import AlfredDemangler, AlfredInfos
    from textworld.envs.pddl import PddlEnv

    from envs.alfworld.engine import engine_request_infos

    fast = AlfredInfos(AlfredDemangler(shuffle=True)(FastPddlEnv(engine_request_infos(), cache_size=4)))
    stock = AlfredInfos(AlfredDemangler(shuffle=True)(PddlEnv(engine_request_infos())))
    (a, _), (b, _) = games
    names = set()
    for seed, game in enumerate([a, b, a, a, a]):
        random.seed(seed)
        fast.load(game)
        random.seed(seed)
        stock.load(game)
        fast_state_, stock_state = fast.reset(), stock.reset()
        assert sc.step_record(fast_state_) == sc.step_record(stock_state)
        names.add(_names(fast.unwrapped._entity_infos))
        for command in random.Random(seed).sample(stock_state["admissible_commands"], 2):
            assert sc.step_record(*fast.step(command)) == sc.step_record(*stock.step(command))
    assert len(names) > 1  # the demangler did renumber between loads
    assert fast.unwrapped.stats["full_resets"] >= 3


def test_self_check_passes_under_another_hash_seed(tmp_path):
    """Set iteration order follows PYTHONHASHSEED; the observations must not."""
    code = ("from envs.alfworld import fast_selfcheck as sc; r = sc.run_self_check(); "
            "print('OK' if r.ok else r.detail)")
    env = {"PYTHONHASHSEED": "12345", "SIRI_BENCH_CACHE": str(tmp_path), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300,
                         cwd=str(Path(__file__).resolve().parents[2]))
    assert out.stdout.strip().endswith("OK"), out.stdout + out.stderr


def test_fast_grammar_raises_like_stock_on_unknown_symbols(games):
    from textworld.envs.pddl.textgen import CSGUnknownSymbolError

    fast = build_fast_engine(cache_size=2)
    fast.load(games[0][0])
    fast.reset()
    env = fast.unwrapped
    context = {"state": env._pddl_state, "facts": [], "variables": {}, "mapping": {},
               "entity_infos": env._entity_infos}
    with pytest.raises(CSGUnknownSymbolError):
        env._logic.grammar.derive("#no_such_rule#", context)
    assert env._logic.grammar.derive("plain text", context) == "plain text"


def test_no_warning_when_the_fast_path_is_healthy(fresh_check):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        engine = make_fast_engine(cache_size=2)
    assert engine_mode(engine) == "fast"
