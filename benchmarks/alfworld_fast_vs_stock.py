"""The fast ALFWorld engine against the stock engine, on the same games and action sequences.

Prints one table (issue 16 item 4, issue 13 item 5):

* first load (load + reset of a game never seen), cached reset (reset of the loaded game),
  revisit (load + reset of a game loaded earlier, with others in between), step (median, p95);
* episodes per second of a 2-worker ``EnvPool`` of ``siri_bench/ALFWorld-v0`` running 8-copy
  groups (GRPO-style: 8 rollouts of one game, seeded random walks), stock vs fast;
* memory: growth over 1,000 cached resets of one game, and over 1,000 resets cycling through
  the cached games (each with a few steps); the stock engine's growth over ``--stock-resets``
  resets for comparison.

Single-process figures interleave the engines game by game, so machine load hits both alike.
Every step's observation and admissible commands are checked equal between the engines while
timing (a benchmark of a wrong engine would be worthless).

    python benchmarks/alfworld_fast_vs_stock.py                 # 6 valid_unseen games
    python benchmarks/alfworld_fast_vs_stock.py --games 12 --groups 6 --skip-memory
    python benchmarks/alfworld_throughput.py --compare-engines  # the same, from the throughput script
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil  # noqa: E402
from alfworld_throughput import pick_games as round_robin_games  # noqa: E402  (this folder)

import envs  # noqa: E402,F401  (registers the env ids)
from envs.alfworld import ENV_ID  # noqa: E402
from envs.alfworld.data import TASK_TYPES, GameRecord  # noqa: E402
from envs.alfworld.engine import make_stock_engine  # noqa: E402
from envs.alfworld.fast_engine import (  # noqa: E402
    build_fast_engine,
    clear_shared_cache,
    engine_mode,
    make_fast_engine,
)
from envs.alfworld.fast_selfcheck import EXTRA_COMMANDS, random_commands  # noqa: E402


def pick_games(split: str, count: int, data_dir: str | None, offset: int = 0) -> list[GameRecord]:
    """``count`` games round-robin over the task types, skipping the first ``offset`` rounds (so
    that the figures below never meet a game another one has loaded)."""
    skip = offset * len(TASK_TYPES)
    return round_robin_games(split, skip + count, data_dir)[skip:]


def timed(fn: Any, *args: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def same(a: Any, b: Any, where: str) -> None:
    if a["feedback"] != b["feedback"] or a["admissible_commands"] != b["admissible_commands"] or a["won"] != b["won"]:
        raise SystemExit(f"fast and stock engines differ at {where}: benchmark aborted (run the equivalence tests)")


def latency(games: list[GameRecord], walk: int, resets: int) -> dict[str, dict[str, list[float]]]:
    """First load, cached reset, revisit and step times of both engines (single process)."""
    engines = {"stock": make_stock_engine(), "fast": build_fast_engine(cache_size=len(games))}
    times: dict[str, dict[str, list[float]]] = {
        name: {"first_load": [], "reset": [], "revisit": [], "step": []} for name in engines}
    for number, game in enumerate(games):
        states = {}
        for name, engine in engines.items():
            _, load_s = timed(engine.load, str(game.game_file))
            states[name], reset_s = timed(engine.reset)
            times[name]["first_load"].append(load_s + reset_s)
        same(states["fast"], states["stock"], f"{game.task_id} first reset")
        rng = random.Random(number)
        commands = list(game.walkthrough) + list(EXTRA_COMMANDS)
        for phase in range(2):  # walkthrough + extras, then a cached reset and a random walk
            if phase:
                for name, engine in engines.items():
                    for _ in range(resets if name == "fast" else 1):
                        states[name], reset_s = timed(engine.reset)
                        times[name]["reset"].append(reset_s)
                same(states["fast"], states["stock"], f"{game.task_id} reset")
                commands = []
            for k in range(len(commands) if not phase else walk):
                command = commands[k] if not phase else random_commands(rng, states["stock"]["admissible_commands"])
                for name, engine in engines.items():
                    (states[name], _, _), step_s = timed(engine.step, command)
                    times[name]["step"].append(step_s)
                same(states["fast"], states["stock"], f"{game.task_id} step {command!r}")
    for game in games:  # revisits: every other game was loaded since
        for name, engine in engines.items():
            _, load_s = timed(engine.load, str(game.game_file))
            states[name], reset_s = timed(engine.reset)
            times[name]["revisit"].append(load_s + reset_s)
        same(states["fast"], states["stock"], f"{game.task_id} revisit")
    for engine in engines.values():
        engine.close()
    return times


def pool_episodes_per_s(mode: str, games: list[GameRecord], data_dir: str | None, group_size: int,
                        max_steps: int) -> tuple[float, int, str]:
    """Episodes/s of a 2-worker EnvPool running ``group_size`` copies of each game in turn."""
    from envs.workers import EnvPool

    kwargs = {"split": games[0].task_id.split("/")[0], "engine": mode, "data_dir": data_dir,
              "max_steps": max_steps, "cache_size": 64}
    with EnvPool(ENV_ID, kwargs, num_envs=group_size, workers=2, backend="process", timeout_s=900) as pool:
        running = ",".join(sorted(set(pool.call("prepare_engine").values())))  # engines built (self-check)
        pool.reset([(i, 0, {"task_id": games[-1].task_id}) for i in range(group_size)])  # warm
        episodes = 0
        start = time.perf_counter()
        for number, game in enumerate(games[:-1]):
            results = pool.reset([(i, 0, {"task_id": game.task_id}) for i in range(group_size)])
            rngs = {i: random.Random(1000 * number + i) for i in range(group_size)}
            live = set(range(group_size))
            while live:
                actions = {i: random_commands(rngs[i], results[i].info["admissible_actions"]) for i in live}
                stepped = pool.step(actions)
                results.update(stepped)
                live = {i for i in live if not (stepped[i].terminated or stepped[i].truncated)}
            episodes += group_size
        return episodes / (time.perf_counter() - start), episodes, running


def rss() -> int:
    gc.collect()
    return psutil.Process().memory_info().rss


def memory_growth(games: list[GameRecord], resets: int, stock_resets: int) -> dict[str, int]:
    """RSS growth (bytes) over cached resets of the fast engine and over stock resets."""
    import tracemalloc

    fast = build_fast_engine(cache_size=len(games))
    for game in games:  # load, first reset and a short episode of every game: the warm state
        fast.load(str(game.game_file))
        state = fast.reset()
        for _ in range(3):
            state, _, _ = fast.step(random_commands(random.Random(0), state["admissible_commands"]))
    fast.load(str(games[0].game_file))
    for _ in range(100):
        fast.reset()
    out = {}
    before = rss()
    for _ in range(resets):
        fast.reset()
    out["fast_one_game_rss"] = rss() - before
    tracemalloc.start()
    for _ in range(100):  # the objects alive at the end were allocated under tracing too
        fast.reset()
    gc.collect()
    heap = tracemalloc.get_traced_memory()[0]
    for _ in range(resets):
        fast.reset()
    gc.collect()
    out["fast_one_game_heap"] = tracemalloc.get_traced_memory()[0] - heap
    tracemalloc.stop()

    def cycle(count: int) -> None:
        rng = random.Random(1)
        for k in range(count):
            fast.load(str(games[k % len(games)].game_file))
            state = fast.reset()
            for _ in range(3):
                state, _, _ = fast.step(random_commands(rng, state["admissible_commands"]))

    cycle(2 * len(games) * 5)  # every reachable state of the measured walks registered once
    before = rss()
    cycle(resets)
    out["fast_cycling_rss"] = rss() - before
    fast.close()

    stock = make_stock_engine()
    stock.load(str(games[0].game_file))
    for _ in range(3):
        stock.reset()
    before = rss()
    for _ in range(stock_resets):
        stock.reset()
    out["stock_rss"] = rss() - before
    stock.close()
    return out


def retained_per_new_game(games: list[GameRecord]) -> dict[str, float]:
    """Python heap kept per distinct game once it left every cache (tracemalloc; both engines).

    TextWorld interns every ``Proposition`` and ``Signature`` it creates in a process-global,
    never-emptied dict (the ``mementos`` package), so each new game leaves some memory behind
    in any engine; the fast engine's own caches are bounded (its LRU holds 2 games here).
    """
    import tracemalloc

    out = {}
    quarter = len(games) // 4  # each engine: a quarter to warm up, a quarter measured; no game shared
    for number, name in enumerate(("stock", "fast")):
        if name == "fast":
            clear_shared_cache(capacity=2)
            engine = build_fast_engine(cache_size=2)
        else:
            engine = make_stock_engine()
        mine = games[2 * quarter * number: 2 * quarter * (number + 1)]
        for game in mine[:quarter]:
            engine.load(str(game.game_file))
            engine.reset()
        gc.collect()
        tracemalloc.start()
        heap = tracemalloc.get_traced_memory()[0]
        for game in mine[quarter:]:
            engine.load(str(game.game_file))
            engine.reset()
        gc.collect()
        out[name] = (tracemalloc.get_traced_memory()[0] - heap) / quarter
        tracemalloc.stop()
        engine.close()
    return out


def ms(seconds: float) -> str:
    return f"{1000 * seconds:.2f}"


def add_arguments(parser: argparse.ArgumentParser, shared: bool = True) -> None:
    """This benchmark's options (``shared``: also --games, --split, --data-dir, --skip-pool, which
    alfworld_throughput.py defines itself)."""
    if shared:
        parser.add_argument("--games", type=int, default=6, help="games for the latency figures (round-robin over types)")
        parser.add_argument("--split", default="valid_unseen")
        parser.add_argument("--data-dir", default=None, help="folder holding json_2.1.1 (default: as the env finds it)")
        parser.add_argument("--skip-pool", action="store_true", help="no EnvPool figure")
    parser.add_argument("--walk", type=int, default=30, help="random-walk steps per game after the walkthrough")
    parser.add_argument("--resets", type=int, default=20, help="cached resets timed per game (fast)")
    parser.add_argument("--groups", type=int, default=4, help="8-copy groups per engine in the pool figure")
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--max-steps", type=int, default=20, help="episode length of the pool's random walks")
    parser.add_argument("--memory-resets", type=int, default=1000)
    parser.add_argument("--stock-resets", type=int, default=100, help="stock resets for its memory growth")
    parser.add_argument("--distinct-games", type=int, default=8, help="new games for the retained-memory figure")
    parser.add_argument("--skip-memory", action="store_true")


def run(args: argparse.Namespace) -> None:
    """Measure and print the tables (see the module docstring)."""
    # Runs (or reads) the self-check, as every worker's env will; it warns and falls back on failure.
    engine = make_fast_engine(cache_size=2)
    if engine_mode(engine) != "fast":
        raise SystemExit("the fast engine is not available here (see the warning above)")
    engine.close()

    games = pick_games(args.split, args.games, args.data_dir)
    print(f"{len(games)} {args.split} games; walkthrough + look/inventory/invalid + {args.walk}-step random walk each")
    times = latency(games, args.walk, args.resets)
    stock, fast = times["stock"], times["fast"]
    first_load = statistics.median(stock["first_load"])
    rows = [
        ("first load (load + reset), median", statistics.median, "first_load", ">= 2.5x"),
        ("cached reset of the loaded game, median", statistics.median, "reset", "<= 1% of stock first load"),
        ("revisit (load + reset), median", statistics.median, "revisit", ""),
        ("step, median", statistics.median, "step", ">= 10x"),
        ("step, p95", lambda v: percentile(v, 0.95), "step", ""),
    ]
    print("\n| measure | stock ms | fast ms | speed-up | goal |\n|---|---:|---:|---:|---|")
    for label, stat, key, goal in rows:
        a, b = stat(stock[key]), stat(fast[key])
        print(f"| {label} | {ms(a)} | {ms(b)} | {a / b:.1f}x | {goal} |")
    reset_share = statistics.median(fast["reset"]) / first_load
    print(f"| fast cached reset / stock first load | | | {100 * reset_share:.3f}% | <= 1% |")
    print(f"| steps timed | {len(stock['step'])} | {len(fast['step'])} | | |")

    if not args.skip_pool:
        pool_games = pick_games(args.split, args.groups + 1, args.data_dir, offset=args.games // len(TASK_TYPES) + 1)
        print(f"\n2-worker EnvPool ({ENV_ID}), {args.groups} groups x {args.group_size} copies, "
              f"random walks of up to {args.max_steps} steps, fresh games (first loads):")
        print("| engine | episodes/s | episodes |\n|---|---:|---:|")
        results = {}
        for mode in ("stock", "fast"):
            results[mode] = pool_episodes_per_s(mode, pool_games, args.data_dir, args.group_size, args.max_steps)
            rate, episodes, running = results[mode]
            print(f"| {mode} (running: {running}) | {rate:.2f} | {episodes} |")
        print(f"| speed-up | {results['fast'][0] / results['stock'][0]:.1f}x | |")

    if not args.skip_memory:
        growth = memory_growth(games, args.memory_resets, args.stock_resets)
        per = 1000 / args.memory_resets
        print("\nmemory growth (RSS after gc.collect; goal: 0 beyond noise, <= 1 MB per 1,000 resets)")
        print("| loop | growth | per 1,000 resets |\n|---|---:|---:|")
        print(f"| fast: {args.memory_resets} cached resets of one game (RSS) | {growth['fast_one_game_rss']} B "
              f"| {per * growth['fast_one_game_rss'] / 1e6:.3f} MB |")
        print(f"| fast: {args.memory_resets} cached resets of one game (Python heap, tracemalloc) "
              f"| {growth['fast_one_game_heap']} B | {per * growth['fast_one_game_heap'] / 1e6:.3f} MB |")
        print(f"| fast: {args.memory_resets} resets cycling {len(games)} cached games, 3 steps each (RSS) "
              f"| {growth['fast_cycling_rss']} B | {per * growth['fast_cycling_rss'] / 1e6:.3f} MB |")
        print(f"| stock: {args.stock_resets} resets of one game (RSS) | {growth['stock_rss']} B "
              f"| {1000 / args.stock_resets * growth['stock_rss'] / 1e6:.3f} MB (extrapolated) |")
        distinct = pick_games(args.split, 4 * args.distinct_games, args.data_dir, offset=4)
        kept = retained_per_new_game(distinct)
        print(f"\nheap kept per distinct game after it left the caches (textworld's global interning, "
              f"{args.distinct_games} games): stock {kept['stock'] / 1e6:.2f} MB, fast {kept['fast'] / 1e6:.2f} MB")



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    run(parser.parse_args())


if __name__ == "__main__":
    main()
