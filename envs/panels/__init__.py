"""Canonical task panels: fixed, versioned lists of content-derived task ids shipped in the package.

A panel names exactly which tasks an evaluation plays, in which order, on every machine and with
any number of env workers. Its ids are the envs' content ids (``info["task_uid"]``: ALFWorld
``alfworld-<sha256 of the PDDL problem + relative game path>``, WebShop ``webshop-<sha256 of the
goal index, instruction, attributes, options and price cap>``), so a panel also pins the data: a
game or goal that changed has another id, and evaluating a panel on such data fails with a
message instead of quietly scoring different tasks.

Panels are text files under ``envs/panels/lists/<env>/<split>.v<version>.txt``: ``# key: value``
header lines (``name``, ``version``, ``envs``, ``split``, ``source``, ``count``, ``ids_sha256``)
followed by one task id per line. They are generated once from the data by
``python -m envs.panels.make_panels`` (ids only; the data is never committed) and never edited
by hand: a new data release gets a new version, old versions stay, so published numbers keep
naming the tasks they were measured on.

Use: ``eval.split: alfworld/valid_unseen`` (the newest version) or ``alfworld/valid_unseen@v1``;
``siri-bench panels`` lists them and ``siri-bench panels show NAME`` prints the ids.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from siri_bench.errors import ConfigError, DataError

LISTS_DIR = Path(__file__).resolve().parent / "lists"
_FILE_NAME = re.compile(r"^(?P<split>[A-Za-z0-9_.\-]+)\.v(?P<version>\d+)\.txt$")
_REF = re.compile(r"^(?P<name>[A-Za-z0-9_.\-]+/[A-Za-z0-9_.\-]+)(?:@v(?P<version>\d+))?$")
_HEADER_KEYS = ("name", "version", "envs", "split", "source", "count", "ids_sha256")


def ids_sha256(ids: Sequence[str]) -> str:
    """sha256 (16 hex digits) of task ids, one per line, in order."""
    return hashlib.sha256("".join(f"{i}\n" for i in ids).encode("utf-8")).hexdigest()[:16]


def is_panel_name(split: str) -> bool:
    """Whether an ``eval.split`` value names a panel (``env/name``) rather than an env split."""
    return "/" in split


@dataclass(frozen=True)
class Panel:
    """One version of one panel."""

    name: str                  # "alfworld/valid_unseen"
    version: int
    envs: tuple[str, ...]      # env ids whose tasks these are
    split: str                 # the env split holding exactly these tasks
    source: str                # what data it was made from (for error messages)
    task_uids: tuple[str, ...]
    path: Path

    @property
    def ref(self) -> str:
        return f"{self.name}@v{self.version}"

    def fingerprint(self) -> dict[str, object]:
        """What a run's fingerprint records of the panel it was evaluated on."""
        return {"panel": self.name, "version": self.version, "tasks": len(self.task_uids),
                "ids_sha256": ids_sha256(self.task_uids)}

    def check_env(self, env_id: str) -> None:
        if env_id not in self.envs:
            raise ConfigError(f"panel {self.ref} holds tasks of {', '.join(self.envs)}, not of {env_id}; "
                              f"pick a panel of {env_id} (see `siri-bench panels`)")

    def select(self, task_ids: Sequence[str], task_uids: Sequence[str], env_id: str) -> list[str]:
        """The env's task ids of this panel's tasks, in panel order.

        ``task_ids``/``task_uids`` are the env split's tasks (``env.unwrapped.task_ids`` and
        ``task_uids``). The split must hold exactly the panel's tasks; otherwise the data differ
        from what the panel was made from, and a DataError says how.
        """
        if len(task_ids) != len(task_uids):
            raise DataError(f"{env_id}: {len(task_ids)} task ids but {len(task_uids)} task uids")
        by_uid = dict(zip(task_uids, task_ids))
        missing = [u for u in self.task_uids if u not in by_uid]
        extra = sorted(set(task_uids) - set(self.task_uids))
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"{len(missing)} of its {len(self.task_uids)} tasks are not in the data "
                             f"(e.g. {missing[0]})")
            if extra:
                parts.append(f"the data has {len(extra)} task(s) the panel does not (e.g. {by_uid[extra[0]]})")
            raise DataError(
                f"panel {self.ref} does not match split {self.split!r} of {env_id}: {'; '.join(parts)}. "
                f"The panel was made from {self.source}; the data or env options used here differ "
                f"(changed or missing files, another catalog, goal set or price seed). Use the original data, "
                f"or evaluate on the split itself (eval.split: {self.split}) and compare only runs made on it")
        return [by_uid[u] for u in self.task_uids]


def parse_panel(path: Path) -> Panel:
    """Read and check one panel file (DataError naming the file when it is damaged)."""
    header: dict[str, str] = {}
    ids: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            key, sep, value = line[1:].partition(":")
            if sep and key.strip() in _HEADER_KEYS:
                header[key.strip()] = value.strip()
            continue
        if not re.fullmatch(r"[A-Za-z0-9_.:\-]+", line):
            raise DataError(f"panel file {path} line {number}: {line[:60]!r} is not a task id")
        ids.append(line)
    missing = [k for k in _HEADER_KEYS if k not in header]
    if missing:
        raise DataError(f"panel file {path} lacks header line(s) {', '.join(missing)}")
    if len(set(ids)) != len(ids):
        raise DataError(f"panel file {path} lists a task id twice")
    if int(header["count"]) != len(ids) or header["ids_sha256"] != ids_sha256(ids):
        raise DataError(f"panel file {path} was edited: its ids do not match its count/ids_sha256 header; "
                        "regenerate it with `python -m envs.panels.make_panels`")
    return Panel(name=header["name"], version=int(header["version"]), envs=tuple(json.loads(header["envs"])),
                 split=header["split"], source=header["source"], task_uids=tuple(ids), path=path)


def format_panel(name: str, version: int, envs: Sequence[str], split: str, source: str,
                 task_uids: Sequence[str]) -> str:
    """The text of a panel file (what :func:`parse_panel` reads)."""
    lines = ["# siri-bench task panel: generated by `python -m envs.panels.make_panels`; do not edit",
             f"# name: {name}", f"# version: {version}", f"# envs: {json.dumps(list(envs))}", f"# split: {split}",
             f"# source: {source}", f"# count: {len(task_uids)}", f"# ids_sha256: {ids_sha256(task_uids)}"]
    return "\n".join(lines + list(task_uids)) + "\n"


def panel_path(name: str, version: int, root: Path = LISTS_DIR) -> Path:
    family, _, split = name.partition("/")
    return root / family / f"{split}.v{version}.txt"


@lru_cache(maxsize=1)
def _all_panels() -> tuple[Panel, ...]:
    found = []
    for path in sorted(LISTS_DIR.glob("*/*.txt")):
        match = _FILE_NAME.match(path.name)
        if not match:
            continue
        panel = parse_panel(path)
        expected = f"{path.parent.name}/{match['split']}"
        if panel.name != expected or panel.version != int(match["version"]):
            raise DataError(f"panel file {path} says it is {panel.ref}, but its file name says {expected}@v"
                            f"{match['version']}")
        found.append(panel)
    return tuple(sorted(found, key=lambda p: (p.name, p.version)))


def available_panels(all_versions: bool = False) -> list[Panel]:
    """Every shipped panel (the newest version of each, unless ``all_versions``), sorted by name."""
    panels = list(_all_panels())
    if all_versions:
        return panels
    newest: dict[str, Panel] = {}
    for panel in panels:
        newest[panel.name] = panel
    return list(newest.values())


def get_panel(ref: str) -> Panel:
    """The panel ``ref`` names: ``env/name`` (newest version) or ``env/name@vN``."""
    match = _REF.match(ref.strip())
    versions = [p for p in _all_panels() if match and p.name == match["name"]]
    if not versions:
        known = ", ".join(p.name for p in available_panels()) or "none"
        raise ConfigError(f"unknown task panel {ref!r}; known panels: {known} (see `siri-bench panels`)")
    if match["version"] is None:
        return versions[-1]
    for panel in versions:
        if panel.version == int(match["version"]):
            return panel
    have = ", ".join(p.ref for p in versions)
    raise ConfigError(f"task panel {ref!r} has no version {match['version']}; shipped: {have}")


def resolve_split(env_id: str, split: str) -> tuple[str, Panel | None]:
    """(the env split to make envs on, the panel or None) for an ``eval.split`` value."""
    if not is_panel_name(split):
        return split, None
    panel = get_panel(split)
    panel.check_env(env_id)
    return panel.split, panel
