"""ALFWorld game files: where they are, which splits exist, and a cached index of each split.

The data folder has the layout ``alfworld-download`` makes::

    DATA/json_2.1.1/<split>/<task_type>-<objects>-<scene>/<trial>/game.tw-pddl

The folder is found, in this order: an explicit ``data_dir``; ``$ALFWORLD_DATA``; the folder
registered by ``siri-bench data alfworld --path DIR``; the default ``~/.cache/siri-bench/alfworld``
(``$SIRI_BENCH_CACHE/alfworld`` when that is set). ``data_dir`` and ``$ALFWORLD_DATA`` may point at
``DATA`` or at ``DATA/json_2.1.1`` itself.

A split's index lists its games in canonical order (sorted relative paths, never the file
system's listing order) with ``task_id`` (the game folder's path relative to ``json_2.1.1``, e.g.
``valid_unseen/look_at_obj_in_light-AlarmClock-None-DeskLamp-308/trial_T20190908_222917_366542``),
``task_uid`` (``alfworld-`` + 16 hex digits of sha256 over the PDDL problem and the task id: the
same on every machine and data location), ``task_type`` (the first ``-``-separated field of the
game's folder), the task sentence, the walkthrough and the sha256 of the game file (so
:meth:`SplitIndex.fingerprint`, the run's data fingerprint, costs no extra reading). Games whose file says ``solvable: false``
are excluded and counted. Reading 3,553 training games takes several seconds, so the index is
cached as JSON under ``<cache>/alfworld-index/``, keyed by the file list with sizes and times.

The splits ``builtin_train`` and ``builtin_eval`` are the built-in generated data set shipped in
the package (``envs.alfworld.builtin``), usable without any download.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from siri_bench.errors import DataError

log = logging.getLogger(__name__)

GAME_FILE = "game.tw-pddl"
DATA_SUBDIR = "json_2.1.1"
INDEX_VERSION = 2  # 2: rows carry the sha256 of their game file (data fingerprints)

#: The six ALFWorld task types, in ALFWorld's numbering order (1-6).
TASK_TYPES: tuple[str, ...] = (
    "pick_and_place_simple",
    "look_at_obj_in_light",
    "pick_clean_then_place_in_recep",
    "pick_heat_then_place_in_recep",
    "pick_cool_then_place_in_recep",
    "pick_two_obj_and_place",
)

#: Splits of the public ALFWorld 2.1.1 data (folder names under json_2.1.1).
REAL_SPLITS: tuple[str, ...] = ("train", "valid_seen", "valid_unseen", "valid_train")
#: Splits of the built-in generated data set -> their folder under its json_2.1.1.
BUILTIN_SPLITS: dict[str, str] = {"builtin_train": "train", "builtin_eval": "eval"}
SPLITS: tuple[str, ...] = REAL_SPLITS + tuple(BUILTIN_SPLITS)

_TASK_RULE = re.compile(r'"task"\s*:\s*\[\s*\{\s*"rhs"\s*:\s*("(?:[^"\\]|\\.)*")')
_TASK_PREFIX = "Your task is to: "


def how_to_get_data() -> str:
    """The ways to get the ALFWorld data, for error messages."""
    return ("set ALFWORLD_DATA to a folder holding json_2.1.1/, or run `siri-bench data alfworld --archive "
            "PATH` with a json_2.1.1 tar archive, or `siri-bench data alfworld --download` (needs internet), "
            "or use the built-in splits builtin_train/builtin_eval")


def default_data_dir() -> Path:
    """Where ``siri-bench data alfworld`` puts the data unless told otherwise."""
    from siri_bench.models import cache_dir

    return cache_dir() / "alfworld"


def registered_path_file() -> Path:
    """The file that remembers the folder given to ``siri-bench data alfworld --path DIR``."""
    from siri_bench.models import cache_dir

    return cache_dir() / "alfworld-data-path.txt"


def register_data_dir(path: Path) -> None:
    """Remember ``path`` as the ALFWorld data folder (when it is not the default one)."""
    from siri_bench.store import atomic_write_text

    atomic_write_text(registered_path_file(), str(Path(path).resolve()) + "\n")


def _as_json_root(path: Path) -> Path:
    """``path`` itself if it is a json_2.1.1 folder, else ``path/json_2.1.1``."""
    path = Path(path).expanduser()
    if path.name == DATA_SUBDIR or (not (path / DATA_SUBDIR).is_dir() and any((path / s).is_dir() for s in REAL_SPLITS)):
        return path
    return path / DATA_SUBDIR


def candidate_roots(data_dir: str | Path | None = None) -> list[tuple[str, Path]]:
    """The json_2.1.1 folders looked at, in order, each with where it came from."""
    if data_dir is not None:
        return [("data_dir", _as_json_root(Path(data_dir)))]
    found: list[tuple[str, Path]] = []
    if os.environ.get("ALFWORLD_DATA"):
        found.append(("$ALFWORLD_DATA", _as_json_root(Path(os.environ["ALFWORLD_DATA"]))))
    registered = registered_path_file()
    if registered.is_file():
        text = registered.read_text(encoding="utf-8").strip()
        if text:
            found.append((f"registered in {registered}", _as_json_root(Path(text))))
    found.append(("default folder", _as_json_root(default_data_dir())))
    return found


def data_root(data_dir: str | Path | None = None) -> Path:
    """The json_2.1.1 folder of the real ALFWorld data; DataError listing the options if none exists."""
    candidates = candidate_roots(data_dir)
    for where, root in candidates:
        if root.is_dir():
            return root
        if where == "$ALFWORLD_DATA":
            log.warning("ALFWORLD_DATA is set but %s does not exist; looking elsewhere", root)
    looked = "; ".join(f"{where}: {root}" for where, root in candidates)
    raise DataError(f"ALFWorld data not found (looked at {looked}); {how_to_get_data()}")


def builtin_root() -> Path:
    """The json_2.1.1 folder of the built-in generated data set."""
    try:
        builtin = importlib.import_module("envs.alfworld.builtin")
    except ModuleNotFoundError as exc:
        if exc.name != "envs.alfworld.builtin":
            raise
        raise DataError("the built-in ALFWorld data set (envs.alfworld.builtin) is not installed in this "
                        "version; use a real split (train, valid_seen, valid_unseen) with ALFWORLD_DATA set") from None
    return Path(builtin.builtin_data_root()) / DATA_SUBDIR


# ----------------------------------------------------------------------------------------------
# Index
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GameRecord:
    """One game of a split."""

    task_id: str
    task_uid: str
    task_type: str
    task: str
    game_file: Path
    walkthrough: tuple[str, ...]
    file_sha256: str = ""           # sha256 of the game file's bytes (data fingerprints)

    def info(self) -> dict[str, object]:
        return {"task_id": self.task_id, "task_uid": self.task_uid, "task_type": self.task_type,
                "task": self.task, "game_file": str(self.game_file), "walkthrough": list(self.walkthrough)}


@dataclass(frozen=True)
class SplitIndex:
    """The solvable games of one split in canonical order, and what was excluded."""

    split: str
    root: Path
    games: tuple[GameRecord, ...]
    excluded_unsolvable: tuple[str, ...] = ()
    _by_id: dict[str, GameRecord] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_id.update({g.task_id: g for g in self.games})

    @property
    def task_ids(self) -> list[str]:
        return [g.task_id for g in self.games]

    def get(self, task_id: str) -> GameRecord:
        try:
            return self._by_id[task_id]
        except KeyError:
            raise DataError(f"unknown ALFWorld task_id {task_id!r} in split {self.split!r} "
                            f"({len(self.games)} games, e.g. {self.games[0].task_id if self.games else 'none'})") from None

    def filter(self, task_types: list[str] | tuple[str, ...] | None) -> SplitIndex:
        """The games of the given task types (all when None), same order."""
        if not task_types:
            return self
        wanted = set(task_types)
        unknown = wanted - set(TASK_TYPES)
        if unknown:
            raise DataError(f"unknown ALFWorld task type(s) {sorted(unknown)}; known: {', '.join(TASK_TYPES)}")
        games = tuple(g for g in self.games if g.task_type in wanted)
        return SplitIndex(self.split, self.root, games, self.excluded_unsolvable)

    def fingerprint(self) -> dict[str, object]:
        """What a run's numbers on these games depend on, independent of where the data lies:
        ``games_sha256`` hashes each game's path relative to ``json_2.1.1`` with the sha256 of its
        file, in canonical order (the games of this index, after any task type filter)."""
        digest = hashlib.sha256()
        for g in self.games:
            digest.update(f"{g.task_id}\t{g.file_sha256}\n".encode())
        source = "builtin" if self.split in BUILTIN_SPLITS else "real"
        return {"split": self.split, "source": source, "games": len(self.games),
                "excluded_unsolvable": len(self.excluded_unsolvable), "games_sha256": digest.hexdigest()[:16]}

    def counts(self) -> dict[str, int]:
        out = {t: 0 for t in TASK_TYPES}
        for g in self.games:
            out[g.task_type] = out.get(g.task_type, 0) + 1
        return out


def task_type_of(task_id: str) -> str:
    """The task type named by the game folder (``pick_two_obj_and_place-Pen-None-Dresser-311``)."""
    parts = Path(task_id).parts
    folder = parts[-2] if len(parts) >= 2 else parts[-1]
    return folder.split("-", 1)[0]


def task_uid(pddl_problem: str, task_id: str) -> str:
    """Content id of a game: stable across machines, data locations and worker counts."""
    digest = hashlib.sha256((pddl_problem + task_id).encode("utf-8")).hexdigest()
    return f"alfworld-{digest[:16]}"


def task_sentence(grammar: str) -> str:
    """The task from the game grammar's ``task`` rule ('' if the grammar has none)."""
    match = _TASK_RULE.search(grammar)
    if not match:
        return ""
    text = json.loads(match.group(1))
    return text[len(_TASK_PREFIX):] if text.startswith(_TASK_PREFIX) else text


def _game_files(split_dir: Path) -> list[tuple[str, int, int]]:
    """(path relative to split_dir, size, mtime_ns) of every game file, sorted by path."""
    found = []
    for folder, dirs, files in os.walk(split_dir):
        dirs.sort()
        if GAME_FILE in files:
            path = Path(folder) / GAME_FILE
            stat = path.stat()
            found.append((path.relative_to(split_dir).as_posix(), stat.st_size, stat.st_mtime_ns))
    found.sort()
    return found


def _read_game(path: Path, task_id: str) -> dict[str, object]:
    try:
        raw = path.read_bytes()
        data = json.loads(raw.decode("utf-8"))
        problem = data["pddl_problem"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"ALFWorld game file {path} is unreadable or malformed ({type(exc).__name__}: {exc}); "
                        f"re-extract the data ({how_to_get_data()})") from None
    return {
        "task_id": task_id,
        "task_uid": task_uid(problem, task_id),
        "task_type": task_type_of(task_id),
        "task": task_sentence(data.get("grammar", "")),
        "solvable": bool(data.get("solvable", False)),
        "walkthrough": list(data.get("walkthrough") or []),
        "file_sha256": hashlib.sha256(raw).hexdigest(),
    }


def _index_cache_path(key: str, split: str) -> Path:
    from siri_bench.models import cache_dir

    return cache_dir() / "alfworld-index" / f"{split}-{key[:24]}.json"


def _build_rows(root: Path, folder: str, listing: tuple[tuple[str, int, int], ...]) -> list[dict[str, object]]:
    split_dir = root / folder
    rows = []
    for rel, _, _ in listing:
        task_id = f"{folder}/{rel[: -len(GAME_FILE) - 1]}"
        rows.append(_read_game(split_dir / rel, task_id))
    return rows


@lru_cache(maxsize=16)
def _load_rows(root: Path, folder: str, key: str,
               listing: tuple[tuple[str, int, int], ...]) -> tuple[dict[str, object], ...]:
    cache = _index_cache_path(key, folder)
    if cache.is_file():
        try:
            payload = json.loads(cache.read_text(encoding="utf-8"))
            if payload.get("version") == INDEX_VERSION and payload.get("key") == key:
                return tuple(payload["games"])
        except (OSError, ValueError):
            log.warning("ignoring unreadable ALFWorld index cache %s", cache)
    log.info("indexing %d ALFWorld games in %s (once; cached in %s)", len(listing), root / folder, cache.parent)
    rows = _build_rows(root, folder, listing)
    try:
        from siri_bench.store import atomic_write_json

        atomic_write_json(cache, {"version": INDEX_VERSION, "key": key, "root": str(root), "games": rows})
    except OSError as exc:
        log.warning("could not write the ALFWorld index cache %s (%s); indexing again next time", cache, exc)
    return tuple(rows)


def load_split(split: str, data_dir: str | Path | None = None) -> SplitIndex:
    """The index of a split (see the module docstring); DataError if the data or split is missing."""
    if split in BUILTIN_SPLITS:
        root, folder = builtin_root(), BUILTIN_SPLITS[split]
    elif split in REAL_SPLITS:
        root, folder = data_root(data_dir), split
    else:
        raise DataError(f"unknown ALFWorld split {split!r}; known: {', '.join(SPLITS)}")
    split_dir = root / folder
    if not split_dir.is_dir():
        raise DataError(f"ALFWorld split folder {split_dir} does not exist; the data folder {root} is incomplete "
                        f"({how_to_get_data()})")
    listing = tuple(_game_files(split_dir))
    if not listing:
        raise DataError(f"ALFWorld split folder {split_dir} holds no {GAME_FILE} files ({how_to_get_data()})")
    # Keyed by the relative listing only, so a copy of the same files elsewhere reuses the index.
    key = hashlib.sha256(json.dumps([INDEX_VERSION, folder, listing]).encode()).hexdigest()
    rows = _load_rows(root.resolve(), folder, key, listing)
    games, excluded = [], []
    for row in rows:
        if not row["solvable"]:
            excluded.append(str(row["task_id"]))
            continue
        games.append(GameRecord(
            task_id=str(row["task_id"]), task_uid=str(row["task_uid"]), task_type=str(row["task_type"]),
            task=str(row["task"]), game_file=root / f"{row['task_id']}/{GAME_FILE}",
            walkthrough=tuple(row["walkthrough"]),  # type: ignore[arg-type]
            file_sha256=str(row["file_sha256"]),
        ))
    if excluded:
        log.info("ALFWorld split %s: excluded %d game(s) marked solvable: false", split, len(excluded))
    if not games:
        raise DataError(f"ALFWorld split {split!r} at {split_dir} has no solvable games")
    return SplitIndex(split, root, tuple(games), tuple(excluded))
