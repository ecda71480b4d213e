"""Planner-side pieces of the fast ALFWorld engine: translation memo, libdownward handle and a
``PddlState`` that can snapshot and restore itself.

Stock textworld 1.7.0 (``textworld/envs/pddl/logic/__init__.py``) builds a ``PddlState`` by
running Fast Downward's Python translator twice (a plain translation for state tracking and an
optimised one for replanning), and ``PddlEnv`` builds two states per load + reset: four
translations, ~90% of a first load. Here:

- ``Translation`` holds the plain translation of one (domain, problem), made once per game, and
  makes the optimised (``optimize=True``) one only when the planner first needs it
  (``PddlState.replan``, used by the planner expert and by ``policy_commands`` infos);
- ``LibHandle`` owns one dlopen'ed copy of libdownward and knows which translation is loaded
  in it. ``load_sas`` deletes the lib's ``StateRegistry``, so every state id taken before is
  void: the handle keeps the id of the loaded task's initial state and replaces it at each
  load (nothing else keeps state ids);
- ``FastPddlState`` is a ``PddlState`` built from a ``Translation`` through the handle, whose
  Python fact structures can be snapshotted at the initial state and restored in microseconds.

Private internals touched (validated on textworld 1.7.0 / fast-downward-textworld 20.6.4):
``PddlState``'s attributes ``_facts``, ``_vars_by_name``, ``_vars_by_type``, ``_var_counts``,
``_operators``, ``_actions``, ``task``, ``sas``, ``sas_replan``, ``name2type``; the C symbols
``get_state_id()`` and ``set_state_id(int)`` of the bundled libdownward, which
``fast_downward.interface.load_lib`` does not declare (their ctypes signatures are set here).
"""

from __future__ import annotations

import ctypes
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

import fast_downward
import textworld.logic
from fast_downward.translate.pddl import conditions as fd_conditions
from fast_downward.translate.pddl import f_expression as fd_expressions
from textworld.envs.pddl import logic as pddl_logic
from textworld.logic import Proposition, Variable
from textworld.utils import check_flag

#: The undeclared libdownward symbols the fast path calls, with their C signatures.
STATE_ID_SYMBOLS = {"get_state_id": ([], ctypes.c_int), "set_state_id": ([ctypes.c_int], None)}


class MissingSymbolError(RuntimeError):
    """The bundled libdownward lacks a symbol the fast path needs (another fast-downward build)."""


def bind_state_symbols(lib: Any) -> None:
    """Declare ``get_state_id() -> int`` and ``set_state_id(int)`` on ``lib``; raise if absent."""
    for name, (argtypes, restype) in STATE_ID_SYMBOLS.items():
        try:
            function = getattr(lib, name)
        except AttributeError as exc:
            raise MissingSymbolError(f"libdownward has no symbol {name!r}") from exc
        function.argtypes = argtypes
        function.restype = restype


def pddl_to_sas(domain: str, problem: str, optimize: bool) -> tuple[Any, str]:
    """``fast_downward.pddl2sas``, without its side effect of overwriting ``sys.argv``."""
    argv = sys.argv
    try:
        return fast_downward.pddl2sas(domain, problem, verbose=check_flag("TW_PDDL_DEBUG"), optimize=optimize)
    finally:
        sys.argv = argv


class Translation:
    """The SAS translations of one (domain, problem): plain now, optimised (replanning) on demand."""

    def __init__(self, domain: str, problem: str):
        self.domain = domain
        self.problem = problem
        self.task, self.sas = pddl_to_sas(domain, problem, optimize=False)
        self._sas_replan: str | None = None

    @property
    def sas_replan(self) -> str:
        if self._sas_replan is None:
            _, self._sas_replan = pddl_to_sas(self.domain, self.problem, optimize=True)
        return self._sas_replan


class LibHandle:
    """One libdownward copy and what is loaded in it (task, replanning task, initial state id)."""

    def __init__(self, lib: Any):
        bind_state_symbols(lib)
        self.lib = lib
        self.loaded: Translation | None = None
        self.replan_loaded: Translation | None = None
        self.initial_state_id: int | None = None
        self.loads = 0

    def activate(self, translation: Translation) -> int:
        """Make ``translation`` the lib's task (``load_sas`` only if another one is loaded) and
        return the id of its initial state, valid until the next load."""
        if self.loaded is not translation:
            self.loaded = None
            self.initial_state_id = None
            self.lib.load_sas(translation.sas.encode("utf-8"))
            self.loads += 1
            self.loaded = translation
            self.initial_state_id = self.lib.get_state_id()
        return self.initial_state_id

    def activate_replan(self, translation: Translation) -> None:
        if self.replan_loaded is not translation:
            self.lib.load_sas_replan(translation.sas_replan.encode("utf-8"))
            self.replan_loaded = translation

    def forget(self) -> None:
        """Drop what the handle knows (the next ``activate`` reloads)."""
        self.loaded = self.replan_loaded = None
        self.initial_state_id = None


@dataclass(frozen=True)
class FactSnapshot:
    """The Python side of a ``PddlState`` (facts, variables, last applicable operators)."""

    facts: dict
    vars_by_name: dict
    vars_by_type: dict
    var_counts: Counter
    operators: dict | None


class FastPddlState(pddl_logic.PddlState):
    """A ``PddlState`` built from a memoised ``Translation``, with snapshot and restore.

    Construction equals the stock one (same facts, same lib state) minus the translations and
    the eager replanning load; ``replan`` loads the replanning task into the lib when needed.
    """

    def __init__(self, handle: LibHandle, translation: Translation, logic: pddl_logic.GameLogic):
        self._facts = defaultdict(set)
        self._vars_by_name = {}
        self._vars_by_type = defaultdict(set)
        self._var_counts = Counter()
        self._bind(handle, translation, logic)
        for fd_type in self.task.types:
            try:
                logic.types.add(textworld.logic.Type(fd_type.name, fd_type.supertype_names))
            except ValueError:
                pass  # already known (as in stock)
        handle.activate(translation)
        self.add_facts([fact for fact in map(self._init_fact, self.task.init) if fact is not None])
        atoms = (pddl_logic.Atom * self.downward_lib.get_state_size())()
        self.downward_lib.get_state(atoms)
        facts = (atom.get_fact(self.name2type) for atom in atoms)
        self.add_facts([fact for fact in facts if not fact.is_negation])

    @classmethod
    def from_snapshot(cls, handle: LibHandle, translation: Translation, logic: pddl_logic.GameLogic,
                      snapshot: FactSnapshot) -> FastPddlState:
        """The state another engine snapshotted at the initial state, bound to ``handle``'s lib.

        The lib is not touched: ``FastPddlEnv.reset`` activates the translation and sets the
        lib's state to the initial one before the state is used.
        """
        state = cls.__new__(cls)
        state._bind(handle, translation, logic)
        state.restore(snapshot)
        return state

    def _bind(self, handle: LibHandle, translation: Translation, logic: pddl_logic.GameLogic) -> None:
        """The attributes stock ``PddlState.__init__`` sets besides the facts."""
        self._logic = logic
        self._handle = handle
        self._translation = translation
        self.downward_lib = handle.lib
        self.pddl_problem = translation.problem
        self.task, self.sas = translation.task, translation.sas
        self._actions = {action.name: action for action in self.task.actions}
        self.name2type = {obj.name: obj.type_name for obj in self.task.objects}

    def _init_fact(self, atom: Any) -> Proposition | None:
        """A fact of the problem's ``:init`` as a Proposition (None for '=', costs, distances)."""
        if isinstance(atom, fd_conditions.Atom):
            if atom.predicate == "=":
                return None
            return Proposition(atom.predicate, [Variable(arg, self.name2type[arg]) for arg in atom.args])
        if isinstance(atom, fd_expressions.Assign):
            if atom.fluent.symbol == "total-cost":
                return None
            name = f"{atom.expression.value}"
            if str.isdigit(name):
                return None
            return Proposition(name, [Variable(arg, self.name2type[arg]) for arg in atom.fluent.args])
        return None

    @property
    def sas_replan(self) -> str:
        return self._translation.sas_replan

    def replan(self, infos):
        self._handle.activate_replan(self._translation)
        return super().replan(infos)

    def snapshot(self) -> FactSnapshot:
        return FactSnapshot(
            facts={sig: frozenset(facts) for sig, facts in self._facts.items()},
            vars_by_name=dict(self._vars_by_name),
            vars_by_type={name: frozenset(vars_) for name, vars_ in self._vars_by_type.items()},
            var_counts=Counter(self._var_counts),
            operators=dict(self._operators) if hasattr(self, "_operators") else None,
        )

    def restore(self, snapshot: FactSnapshot) -> None:
        """Put the Python facts back to ``snapshot`` (the lib's state is the caller's business)."""
        self._facts = defaultdict(set, {sig: set(facts) for sig, facts in snapshot.facts.items()})
        self._vars_by_name = dict(snapshot.vars_by_name)
        self._vars_by_type = defaultdict(set, {name: set(vars_) for name, vars_ in snapshot.vars_by_type.items()})
        self._var_counts = Counter(snapshot.var_counts)
        if snapshot.operators is not None:
            self._operators = dict(snapshot.operators)
