"""Memory growth of ALFWorld env workers over many resets of cached games (issue 13, item 5).

TextWorld's ``reset()`` is known to leak (TextWorld #367); Jericho's tests hold under 1 MB per
1,000 load/unload cycles, and that is the goal here for the default (fast) engine. Each engine is
measured in its own fresh process, through the real env (``siri_bench/ALFWorld-v0``,
``reset(options={"task_id": ...})``) as a worker runs it:

* warm-up: every game of the cycle is loaded and played once (caches filled, interned objects made);
* ``resets``: N resets cycling through the cached games, nothing else;
* ``episodes``: N resets cycling through the games, each followed by a short random walk with fresh
  random actions (what training does; new states are visited every episode).

Figures: RSS (after ``gc.collect()``) and Python heap (``tracemalloc``, a second pass) growth,
per 1,000 resets. The stock engine re-derives everything on each reset (about a second each), so
it runs fewer resets (``--stock-resets``) and its growth is extrapolated to 1,000.

    python benchmarks/alfworld_memory.py                         # real valid_unseen games if found, else built-in
    python benchmarks/alfworld_memory.py --games 8 --resets 1000 --stock-resets 100
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def rss() -> int:
    import psutil

    gc.collect()
    return psutil.Process().memory_info().rss


def choose_games(split: str, count: int, data_dir: str | None) -> tuple[str, list[str]]:
    """(split used, task ids): one game per task type in turn; the built-in split without real data."""
    from envs.alfworld.data import TASK_TYPES, load_split
    from siri_bench.errors import DataError

    try:
        games = load_split(split, data_dir).games
    except DataError:
        split, games = "builtin_eval", load_split("builtin_eval").games
    by_type = [[g.task_id for g in games if g.task_type == t] for t in TASK_TYPES]
    chosen: list[str] = []
    for k in range(max(map(len, by_type))):
        chosen += [ids[k] for ids in by_type if k < len(ids)]
    return split, chosen[:count]


def loop(env: Any, games: list[str], count: int, walk: int, rng: random.Random) -> None:
    for k in range(count):
        _, info = env.reset(options={"task_id": games[k % len(games)]})
        for _ in range(walk):
            _, _, terminated, truncated, info = env.step(rng.choice(info["admissible_actions"]))
            if terminated or truncated:
                break


def measure(engine: str, split: str, games: list[str], resets: int, walk: int, data_dir: str | None) -> dict:
    """Run in a fresh process (see :func:`main`): growth of RSS and Python heap over the loops."""
    import tracemalloc

    import gymnasium

    import envs  # noqa: F401  (registers the env ids)

    kwargs = {"split": split, "engine": engine, "cache_size": max(len(games), 1), "max_steps": 1000}
    if data_dir:
        kwargs["data_dir"] = data_dir
    env = gymnasium.make("siri_bench/ALFWorld-v0", **kwargs).unwrapped
    running = env.prepare_engine()
    warm = len(games) * (2 if engine == "fast" else 1)
    loop(env, games, warm, walk, random.Random(0))  # warm-up: every game loaded and played
    out: dict[str, Any] = {"engine": engine, "running": running, "games": len(games), "resets": resets,
                           "walk": walk}
    for name, steps in (("resets", 0), ("episodes", walk)):
        before = rss()
        start = time.perf_counter()
        loop(env, games, resets, steps, random.Random(1))
        out[f"{name}_s_per_reset"] = (time.perf_counter() - start) / resets
        out[f"{name}_rss"] = rss() - before
        tracemalloc.start()
        loop(env, games, warm, steps, random.Random(2))  # objects alive at the end were traced too
        gc.collect()
        heap = tracemalloc.get_traced_memory()[0]
        loop(env, games, resets, steps, random.Random(3))
        gc.collect()
        out[f"{name}_heap"] = tracemalloc.get_traced_memory()[0] - heap
        tracemalloc.stop()
    env.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", default="valid_unseen")
    parser.add_argument("--data-dir", default=None, help="folder holding json_2.1.1 (default: as the env finds it)")
    parser.add_argument("--games", type=int, default=8, help="cached games cycled through")
    parser.add_argument("--resets", type=int, default=1000, help="resets per loop (fast engine)")
    parser.add_argument("--stock-resets", type=int, default=20, help="resets per loop (stock engine, about 3 s "
                        "each: it loads the game again on every switch; extrapolated to 1,000)")
    parser.add_argument("--walk", type=int, default=5, help="random steps after each reset in the episodes loop")
    parser.add_argument("--engines", default="fast,stock")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:  # one measurement in this (fresh) process; JSON on the last stdout line
        job = json.loads(args.child)
        print(json.dumps(measure(**job)))
        return
    split, games = choose_games(args.split, args.games, args.data_dir)
    print(f"{len(games)} cached {split} games cycled; episodes loop: {args.walk} random steps after each reset")
    print("| engine (running) | loop | resets | RSS growth | per 1,000 resets | heap growth | per 1,000 resets "
          "| ms per reset |\n|---|---|---:|---:|---:|---:|---:|---:|")
    for engine in args.engines.split(","):
        resets = args.resets if engine == "fast" else args.stock_resets
        job = {"engine": engine, "split": split, "games": games, "resets": resets, "walk": args.walk,
               "data_dir": args.data_dir}
        proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(job)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"{engine} measurement failed:\n{proc.stderr[-2000:]}")
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        scale = 1000 / r["resets"]
        for name in ("resets", "episodes"):
            rss_b, heap_b = r[f"{name}_rss"], r[f"{name}_heap"]
            note = "" if r["resets"] == 1000 else " (extrapolated)"
            print(f"| {engine} ({r['running']}) | {name} | {r['resets']} | {rss_b / 1e6:.3f} MB "
                  f"| {scale * rss_b / 1e6:.3f} MB{note} | {heap_b / 1e6:.3f} MB | {scale * heap_b / 1e6:.3f} MB{note} "
                  f"| {1000 * r[f'{name}_s_per_reset']:.1f} |")
    print("\ngoal: <= 1 MB per 1,000 resets for the default (fast) engine")


if __name__ == "__main__":
    main()
