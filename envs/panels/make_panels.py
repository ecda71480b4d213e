"""Generate the shipped task panels from the data (ids only; the data itself is never committed).

    python -m envs.panels.make_panels --alfworld-data /path/holding/json_2.1.1 --webshop-data /path/to/webshop
    python -m envs.panels.make_panels --check    # regenerate in memory and compare with the shipped files

Each panel is the task list of one env split, in the env's canonical order, as content ids
(``env.unwrapped.task_uids``). Panels of the built-in data sets need no download. A panel file that
exists is never overwritten with different ids: changed data gets a new version
(``--new-version``), so the ids a published number was measured on stay in the package.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envs.panels import LISTS_DIR, format_panel, panel_path, parse_panel

ALFWORLD = "siri_bench/ALFWorld-v0"
WEBSHOP_ENVS = ("siri_bench/WebShop-v0", "siri_bench/WebShopHTML-v0")


@dataclass(frozen=True)
class PanelSource:
    """How a panel is made: the env split whose tasks it lists, and the env options that fix them."""

    name: str
    envs: tuple[str, ...]
    split: str
    source: str
    data: str | None = None                 # "alfworld" / "webshop": needs that real data folder
    kwargs: dict[str, Any] = field(default_factory=dict)


PANELS: tuple[PanelSource, ...] = (
    PanelSource("alfworld/valid_seen", (ALFWORLD,), "valid_seen",
                "ALFWorld 2.1.1 json_2.1.1/valid_seen (in-distribution evaluation games)", "alfworld"),
    PanelSource("alfworld/valid_unseen", (ALFWORLD,), "valid_unseen",
                "ALFWorld 2.1.1 json_2.1.1/valid_unseen (out-of-distribution evaluation games)", "alfworld"),
    PanelSource("alfworld/builtin_eval", (ALFWORLD,), "builtin_eval",
                "the built-in generated ALFWorld split builtin_eval shipped in envs/alfworld/builtin"),
    PanelSource("webshop/test", WEBSHOP_ENVS, "test",
                "WebShop's 1000-product catalog, synthetic goals, price_seed 42, goals 0-499 of the fixed "
                "random.seed(233) order", "webshop", {"catalog": "real", "goals": "synthetic", "price_seed": 42}),
    PanelSource("webshop/builtin_test", WEBSHOP_ENVS, "builtin_test",
                "the built-in WebShop catalog, synthetic goals, price_seed 42, goals 0-99 of the fixed order",
                None, {"goals": "synthetic", "price_seed": 42}),
)


def panel_task_uids(spec: PanelSource, data_dirs: dict[str, str | None]) -> list[str]:
    """The content ids of the panel's split, made through the registered env (canonical order)."""
    import gymnasium

    import envs  # noqa: F401  (registers the env ids)

    kwargs = dict(spec.kwargs)
    if spec.data is not None and data_dirs.get(spec.data):
        kwargs["data_dir"] = data_dirs[spec.data]
    env = gymnasium.make(spec.envs[0], split=spec.split, **kwargs)
    try:
        return list(env.unwrapped.task_uids)
    finally:
        env.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alfworld-data", default=None, help="folder holding json_2.1.1 (default: as the env finds it)")
    parser.add_argument("--webshop-data", default=None, help="WebShop data folder (default: as the env finds it)")
    parser.add_argument("--only", action="append", default=[], help="panel name(s) to make (default: all)")
    parser.add_argument("--new-version", action="store_true", help="write changed panels as a new version")
    parser.add_argument("--check", action="store_true", help="compare with the shipped files; write nothing")
    parser.add_argument("--out", type=Path, default=LISTS_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    data_dirs = {"alfworld": args.alfworld_data, "webshop": args.webshop_data}
    problems = 0
    for spec in PANELS:
        if args.only and spec.name not in args.only:
            continue
        uids = panel_task_uids(spec, data_dirs)
        existing = sorted(args.out.glob(f"{spec.name}.v*.txt"), key=lambda p: int(p.stem.rsplit(".v", 1)[1]))
        latest = parse_panel(existing[-1]) if existing else None
        if latest is not None and list(latest.task_uids) == uids:
            print(f"{latest.ref}: {len(uids)} tasks, unchanged")
            continue
        if args.check:
            what = "missing" if latest is None else f"differs from {latest.ref}"
            print(f"{spec.name}: {len(uids)} tasks from the data here; the shipped panel {what}", file=sys.stderr)
            problems += 1
            continue
        if latest is not None and not args.new_version:
            print(f"{spec.name}: the data give other ids than {latest.ref}; refusing to overwrite it "
                  "(use --new-version if the data really changed)", file=sys.stderr)
            problems += 1
            continue
        version = 1 if latest is None else latest.version + 1
        path = panel_path(spec.name, version, args.out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(format_panel(spec.name, version, spec.envs, spec.split, spec.source, uids), encoding="utf-8")
        print(f"{spec.name}@v{version}: {len(uids)} tasks -> {path}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
