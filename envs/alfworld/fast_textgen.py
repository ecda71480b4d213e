"""Text generation for the fast ALFWorld engine: TextWorld's context-sensitive grammar, derived
without re-parsing or deep-copying.

TextWorld's ``ContextSensitiveGrammar.derive`` (textworld 1.7.0, ``textworld/envs/pddl/textgen``)
re-parses every string it derives with TatSu, re-parses every rule condition, and deep-copies
symbol trees and contexts (including the entity infos) at every expansion: 97% of a stock step.
``FastGrammar.derive`` computes the same text from the same parsed symbols, but treats parsed
symbols as immutable templates: the work stack holds ``(symbol, context)`` pairs instead of
mutated symbol copies, parses are memoised by text, and contexts are shared (they are never
mutated after creation; only ``query`` makes new ones). Nothing in textworld is patched: the
grammar objects built here are used by the fast engine's own ``GameLogic`` only.

Semantics mirrored from the stock symbols (checked by tests/alfworld/test_fast_engine_equivalence.py):

- terminal: its literal; nonterminal ``#x#``: the first production of ``x`` whose condition
  (a conjunctive query) has an assignment in the state, given the context's mapping;
- ``{expr | given}``: ``expr`` once per assignment of ``given`` (once with no ``given``), each
  with the context extended by that assignment's variables;
- ``{python expression}``: ``eval`` with the context's variables as locals (the stock code runs
  ``locals().update(variables)`` then ``eval``, so ``self`` and ``context`` shadow variables of
  that name and ``value`` is never visible; we build the same namespace);
- ``[...]``: the derived items joined by ``#list_separator#`` and ``#list_last_separator#``, or
  ``#list_empty#`` for none.

One deliberate difference: stock evaluates the conditions of every production of a nonterminal
before taking the first applicable one; we stop at the first applicable one. The text is the
same; only a malformed condition *after* it would raise in stock and not here.

Private textworld 1.7.0 internals used (read only): ``textgen._parse_and_convert`` (the TatSu
parse of a string into symbols), ``pddl.logic._PARSER`` and ``pddl.logic._ModelConverter`` (the
grammar file's parser and model walker), the model node classes of ``pddl.logic.model``, and the
symbol classes' attributes (``symbol``, ``expression``, ``given``).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import textworld.logic
from textworld.envs.pddl import logic as pddl_logic
from textworld.envs.pddl import textgen
from textworld.envs.pddl.logic import model as logic_model
from textworld.envs.pddl.textgen import (
    ConditionalSymbol,
    ContextSensitiveGrammar,
    CSGUnknownSymbolError,
    EvalSymbol,
    ListSymbol,
    NonterminalSymbol,
    ProductionRule,
    TerminalSymbol,
)
from textworld.logic import Rule
from textworld.utils import check_flag

#: Bound on each memo below. ALFWorld's grammars share all but a handful of strings (the task
#: sentence differs per game), so a few thousand entries cover every split.
MEMO_SIZE = 8192

_LIST_EMPTY = NonterminalSymbol("list_empty")
_LIST_SEPARATOR = NonterminalSymbol("list_separator")
_LIST_LAST_SEPARATOR = NonterminalSymbol("list_last_separator")


@lru_cache(maxsize=MEMO_SIZE)
def parse_symbols(text: str) -> tuple:
    """The symbols of ``text`` (TatSu rule ``symbols``), parsed once; never mutate them."""
    return tuple(textgen._parse_and_convert(text, rule_name="symbols"))


@lru_cache(maxsize=MEMO_SIZE)
def parse_query(expression: str) -> Rule:
    """``Rule.parse_conjunctive_query`` memoised (the rule is only read by ``all_assignments``)."""
    return Rule.parse_conjunctive_query(expression)


@lru_cache(maxsize=MEMO_SIZE)
def _compile(expression: str):
    return compile(expression, "<string>", "eval")


def _context(context: dict, variables: dict, mapping: dict) -> dict:
    # The five keys of textgen.copy_context, in its order; other keys are dropped as it does.
    return {
        "state": context["state"],
        "facts": context["facts"],
        "variables": variables,
        "mapping": mapping,
        "entity_infos": context["entity_infos"],
    }


def _query(given: str, context: dict) -> list[dict]:
    """One new context per assignment of the conjunctive query ``given`` (stock ``textgen.query``)."""
    rule = parse_query(given)
    infos = context["entity_infos"]
    contexts = []
    for assignment in context["state"].all_assignments(rule, context["mapping"]):
        variables = dict(context["variables"])
        variables.update({ph.name: infos[var.name] for ph, var in assignment.items()})
        mapping = dict(context["mapping"])
        mapping.update(assignment)
        contexts.append(_context(context, variables, mapping))
    return contexts


def _evaluate(symbol: EvalSymbol, context: dict) -> Any:
    namespace = dict(context["variables"])
    namespace["self"] = symbol
    namespace["context"] = context
    namespace.pop("value", None)
    return eval(_compile(symbol.expression), textgen.__dict__, namespace)  # noqa: S307 - as textworld does


def _expand(symbol, context: dict) -> list[tuple]:
    """What stock ``symbol.derive()`` returns for a conditional, eval or list symbol, as pairs."""
    if isinstance(symbol, ConditionalSymbol):
        contexts = _query(symbol.given, context) if symbol.given else [context]
        return [(symbol.expression, ctx) for ctx in contexts]
    if isinstance(symbol, EvalSymbol):
        return [(TerminalSymbol(_evaluate(symbol, context)), context)]
    if isinstance(symbol, ListSymbol):
        items = _expand(symbol.symbol, context)
        if not items:
            return [(_LIST_EMPTY, context)]
        if len(items) == 1:
            return items
        joined = []
        for item in items[:-1]:
            joined.append(item)
            joined.append((_LIST_SEPARATOR, context))
        joined[-1] = (_LIST_LAST_SEPARATOR, context)
        joined.append(items[-1])
        return joined
    raise AttributeError(f"{type(symbol).__name__!r} object has no attribute 'derive'")


class FastGrammar(ContextSensitiveGrammar):
    """A ``ContextSensitiveGrammar`` whose ``derive`` neither re-parses nor deep-copies."""

    def _production(self, name: str, context: dict) -> tuple:
        rules = self._rules.get(name)
        if not rules:
            raise CSGUnknownSymbolError(name)
        state, mapping = context["state"], context["mapping"]
        for rule in rules:
            if not rule.condition:
                return rule.rhs
            for _ in state.all_assignments(parse_query(rule.condition), mapping):
                return rule.rhs
        raise IndexError("list index out of range")  # stock: ``rules[0]`` of an empty list

    def derive(self, start: str, context: dict = {}) -> str:  # noqa: B006 - stock signature
        if check_flag("TW_CSG_TRACE") or check_flag("TW_CSG_DEBUG"):
            return super().derive(start, context)  # textworld's tracing/debug output
        base = _context(context, dict(context["variables"]), dict(context["mapping"]))
        stack = [(symbol, base) for symbol in reversed(parse_symbols(start))]
        out = []
        while stack:
            symbol, ctx = stack.pop()
            if isinstance(symbol, TerminalSymbol):
                out.append(str(symbol))
            elif isinstance(symbol, NonterminalSymbol):
                stack.extend((s, ctx) for s in reversed(self._production(str(symbol), ctx)))
            elif isinstance(symbol, (ConditionalSymbol, EvalSymbol, ListSymbol)):
                stack.extend(reversed(_expand(symbol, ctx)))
            else:
                raise NotImplementedError(f"Unknown symbol: {type(symbol)}")
        return "".join(out)

    @classmethod
    def from_rules(cls, data: dict) -> FastGrammar:
        """Build from the grammar's JSON object (what ``ContextSensitiveGrammar.parse`` loads)."""
        grammar = cls()
        for name, rules in data.items():
            for rule in rules:
                grammar.add_rule(ProductionRule(lhs=name, rhs=parse_symbols(rule["rhs"]),
                                                weight=rule.get("weight", 1),
                                                condition=rule.get("condition", "")))
        return grammar


class _LogicConverter(pddl_logic._ModelConverter):
    """textworld's TatSu-model converter, building a ``FastGrammar`` from memoised rule parses."""

    def walk_PddlDocumentNode(self, node):
        actions, grammar = {}, {}
        for part in node.parts:
            if isinstance(part, logic_model.ActionTypeNode):
                action = self.walk(part)
                actions[action.name.lower()] = action
                lines = action.grammar.split("\n")
                grammar.update(json.loads("\n".join(line for line in lines if not line.lstrip().startswith("#"))))
            elif isinstance(part, logic_model.ActionGrammarNode):
                grammar.update(json.loads(self._unescape_block(part.code)))
        # Stock round-trips through json.dumps/json.loads; loads(dumps(x)) == x for JSON data.
        return actions, FastGrammar.from_rules(grammar)


class FastGameLogic(pddl_logic.GameLogic):
    """``GameLogic`` (actions, grammar, types) whose grammar is a ``FastGrammar``."""

    def __init__(self, domain: str, grammar: str):  # noqa: D107 - mirrors GameLogic.__init__
        self.domain = domain
        self.grammar = FastGrammar()
        self.actions = {}
        self.types = textworld.logic.TypeHierarchy()
        actions, parsed = _LogicConverter().walk(pddl_logic._PARSER.parse(grammar, rule_name="pddlStart"))
        self.actions.update(actions)
        self.grammar.update(parsed)


def clear_memos() -> None:
    """Empty the process-wide parse memos (tests; after a textworld reload)."""
    for memo in (parse_symbols, parse_query, _compile):
        memo.cache_clear()
