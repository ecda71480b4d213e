"""Name -> object registries for algorithms and environments, with Python entry points.

Built-in objects register themselves with a decorator when their module is imported
(``@register_algorithm("gigpo")``). Third-party packages add objects without editing this
repository through the entry-point groups ``siri_bench.algorithms`` and ``siri_bench.envs``:

* ``siri_bench.algorithms``: ``name = "pkg.module:AlgorithmClass"``; the loaded class is
  registered under the entry point's name.
* ``siri_bench.envs``: ``name = "pkg.module:register"``; the loaded object is called with no
  arguments if it is callable (it is expected to call :func:`register_env`), otherwise importing
  its module is taken to have registered the env(s).

Entry points are read lazily, the first time a registry is queried, so a plain import of
``siri_bench`` stays cheap.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from siri_bench.errors import RegistryError

log = logging.getLogger(__name__)

T = TypeVar("T")


def first_doc_line(obj: Any) -> str:
    """The first non-empty line of an object's docstring ('' if none)."""
    doc = getattr(obj, "__doc__", None) or ""
    for line in doc.strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


@dataclass
class Entry(Generic[T]):
    """One registered object with its one-line description and where it came from."""

    name: str
    obj: T
    description: str
    source: str = "builtin"


@dataclass
class Registry(Generic[T]):
    """A registry of named objects that also reads one entry-point group.

    ``builtin_modules`` are imported before the first lookup so that decorators in them run.
    """

    kind: str
    entry_point_group: str
    builtin_modules: tuple[str, ...] = ()
    _entries: dict[str, Entry[T]] = field(default_factory=dict)
    _loaded: bool = False
    _failed_entry_points: dict[str, str] = field(default_factory=dict)

    # -- registration -------------------------------------------------------------------
    def register(self, name: str, obj: T | None = None, *, description: str | None = None,
                 source: str = "builtin", replace: bool = False) -> Any:
        """Register ``obj`` under ``name``; used as ``@registry.register("name")`` without ``obj``."""

        def add(target: T) -> T:
            existing = self._entries.get(name)
            if existing is not None and existing.obj is not target and not replace:
                raise RegistryError(
                    f"{self.kind} {name!r} is registered twice "
                    f"(first by {existing.source}, again by {source})"
                )
            self._entries[name] = Entry(name, target, description or first_doc_line(target), source)
            return target

        if obj is not None:
            return add(obj)
        return add

    def unregister(self, name: str) -> None:
        """Remove ``name`` (tests that register throw-away entries clean up with this)."""
        self._entries.pop(name, None)

    # -- lookup ---------------------------------------------------------------------------
    def load(self, reload_entry_points: bool = False) -> None:
        """Import built-in modules and load entry points (once, unless asked to reload)."""
        if self._loaded and not reload_entry_points:
            return
        self._loaded = True
        for module in self.builtin_modules:
            importlib.import_module(module)
        for ep in _entry_points(self.entry_point_group):
            if ep.name in self._entries and self._entries[ep.name].source != "builtin":
                continue
            try:
                obj = ep.load()
            except Exception as exc:  # a broken plugin must not break the harness
                self._failed_entry_points[ep.name] = f"{type(exc).__name__}: {exc}"
                log.warning("could not load %s entry point %r (%s): %s", self.kind, ep.name, ep.value, exc)
                continue
            self._register_entry_point(ep, obj)

    def _register_entry_point(self, ep: importlib.metadata.EntryPoint, obj: Any) -> None:
        if ep.name in self._entries and self._entries[ep.name].source == "builtin":
            log.warning("%s entry point %r shadows a built-in name; keeping the built-in", self.kind, ep.name)
            return
        self.register(ep.name, obj, source=f"entry point {ep.value}", replace=True)

    def get(self, name: str) -> T:
        """The object registered as ``name``; a clear error lists the known names otherwise."""
        self.load()
        if name not in self._entries:
            known = ", ".join(sorted(self._entries)) or "(none)"
            hint = ""
            if name in self._failed_entry_points:
                hint = f"; its entry point failed to load: {self._failed_entry_points[name]}"
            raise RegistryError(f"unknown {self.kind} {name!r}; known: {known}{hint}")
        return self._entries[name].obj

    def entries(self) -> list[Entry[T]]:
        self.load()
        return [self._entries[k] for k in sorted(self._entries)]

    def names(self) -> list[str]:
        return [e.name for e in self.entries()]

    def __contains__(self, name: object) -> bool:
        self.load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def _entry_points(group: str) -> list[importlib.metadata.EntryPoint]:
    return list(importlib.metadata.entry_points(group=group))


class EnvEntryPointRegistry(Registry[Any]):
    """The env registry: an ``siri_bench.envs`` entry point is a function that registers envs."""

    def _register_entry_point(self, ep: importlib.metadata.EntryPoint, obj: Any) -> None:
        before = set(self._entries)
        if callable(obj):
            obj()
        added = set(self._entries) - before
        if not added:
            log.warning("env entry point %r (%s) registered no environment", ep.name, ep.value)
        for name in added:
            self._entries[name].source = f"entry point {ep.value}"


ALGORITHMS: Registry[Any] = Registry("algorithm", "siri_bench.algorithms", ("algorithms",))
ENVS: EnvEntryPointRegistry = EnvEntryPointRegistry("environment", "siri_bench.envs", ("envs",))


def register_algorithm(name: str, *, description: str | None = None) -> Callable[[T], T]:
    """Class decorator: make an algorithm available to configs as ``algorithm: {name: ...}``."""
    return ALGORITHMS.register(name, description=description)


@dataclass
class EnvSpec:
    """What the harness knows about a registered environment id.

    ``config_model`` (a pydantic model or None) validates the ``env.kwargs`` of experiment files;
    ``splits`` names the task splits the env accepts.
    """

    id: str
    entry_point: str | Callable[..., Any]
    description: str
    config_model: Any = None
    splits: tuple[str, ...] = ()
    default_max_steps: int | None = None


def register_env(env_id: str, entry_point: str | Callable[..., Any], *, description: str,
                 config_model: Any = None, splits: tuple[str, ...] = (),
                 max_episode_steps: int | None = None, **gym_kwargs: Any) -> EnvSpec:
    """Register an environment with gymnasium *and* with the siri-bench env registry.

    ``max_episode_steps`` is recorded as the env's default step limit; the env enforces it itself
    (truncation with ``info['truncated_by']``) so no gymnasium TimeLimit wrapper is added.
    """
    import gymnasium

    spec = EnvSpec(env_id, entry_point, description, config_model, tuple(splits), max_episode_steps)
    if env_id not in gymnasium.registry:
        gymnasium.register(id=env_id, entry_point=entry_point, **gym_kwargs)
    ENVS.register(env_id, spec, description=description, replace=True)
    return spec
