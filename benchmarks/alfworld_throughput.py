"""Throughput of ``siri_bench/ALFWorld-v0`` against the raw engine it wraps.

Plays the same games with the same walkthrough action sequences through

* the raw engine (``envs.alfworld.engine.make_engine``: TextWorld's PDDL env with ALFWorld's
  wrappers; ``--engine`` picks stock or fast), and
* the Gymnasium env made with ``gymnasium.make`` (what users get, checker wrappers included),

single process and with 2 worker processes (raw engine in a ``multiprocessing`` pool, env in an
:class:`~envs.workers.EnvPool`). Each game is played twice: after its first load, and after a reset
of the loaded game. Prints steps/s, resets/s, first load vs reset, and the wrapper overhead in two
ways: A/B (env time / raw time - 1, noisy on a shared machine) and attributed (time inside env.step
and env.reset that is not spent in the engine, measured in the same calls).

    python benchmarks/alfworld_throughput.py --games 6 --engine stock
    python benchmarks/alfworld_throughput.py --compare-engines   # stock vs fast engine, in one run
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import envs  # noqa: E402,F401  (registers the env ids)
from envs.alfworld import ENV_ID  # noqa: E402
from envs.alfworld.data import TASK_TYPES, GameRecord, load_split  # noqa: E402
from envs.alfworld.engine import make_engine  # noqa: E402
from envs.workers import EnvPool  # noqa: E402


def pick_games(split: str, count: int, data_dir: str | None) -> list[GameRecord]:
    """``count`` games, round-robin over the task types (canonical order within a type)."""
    index = load_split(split, data_dir)
    by_type = {t: [g for g in index.games if g.task_type == t] for t in TASK_TYPES}
    chosen: list[GameRecord] = []
    depth = 0
    while len(chosen) < count and any(len(v) > depth for v in by_type.values()):
        chosen += [v[depth] for v in by_type.values() if len(v) > depth][: count - len(chosen)]
        depth += 1
    return chosen


class TimedEngine:
    """Forwards to an engine and adds up the seconds spent in it (for the attributed overhead)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.seconds = 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    def _timed(self, fn: Any, *args: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.seconds += time.perf_counter() - start

    def load(self, game_file: str) -> None:
        return self._timed(self.engine.load, game_file)

    def reset(self) -> Any:
        return self._timed(self.engine.reset)

    def step(self, command: str) -> Any:
        return self._timed(self.engine.step, command)


def play_raw(engine: Any, game: GameRecord, timings: dict[str, list[float]]) -> None:
    """First load + reset, walkthrough, reset of the loaded game, walkthrough (raw engine)."""
    start = time.perf_counter()
    engine.load(str(game.game_file))
    engine.reset()
    timings["first_load"].append(time.perf_counter() - start)
    for replay in range(2):
        if replay:
            start = time.perf_counter()
            engine.reset()
            timings["reset"].append(time.perf_counter() - start)
        for action in game.walkthrough:
            start = time.perf_counter()
            state, _, _ = engine.step(action)
            timings["step"].append(time.perf_counter() - start)
        assert state["won"], f"raw walkthrough did not win {game.task_id}"


def play_env(env: Any, game: GameRecord, timings: dict[str, list[float]]) -> None:
    """The same sequence through the Gymnasium env."""
    for replay in range(2):
        start = time.perf_counter()
        env.reset(options={"task_id": game.task_id})
        timings["reset" if replay else "first_load"].append(time.perf_counter() - start)
        for action in game.walkthrough:
            start = time.perf_counter()
            _, _, terminated, _, info = env.step(action)
            timings["step"].append(time.perf_counter() - start)
        assert terminated and info["won"], f"env walkthrough did not win {game.task_id}"


def new_timings() -> dict[str, list[float]]:
    return {"first_load": [], "reset": [], "step": []}


def single_process(games: list[GameRecord], engine_mode: str, data_dir: str | None, split: str,
                   rounds: int) -> dict[str, Any]:
    import gymnasium

    raw_engine = make_engine(engine_mode)  # type: ignore[arg-type]
    env = gymnasium.make(ENV_ID, split=split, engine=engine_mode, data_dir=data_dir, max_steps=100)
    running = env.unwrapped.prepare_engine()
    print(f"engine actually running in the env: {running}")
    timed = TimedEngine(env.unwrapped._engine)  # the env's own engine, wrapped before first use
    env.unwrapped._engine = timed
    raw, wrapped = new_timings(), new_timings()
    env_seconds = 0.0
    for _ in range(rounds):
        for game in games:  # interleaved, so machine load hits both alike
            play_raw(raw_engine, game, raw)
            before = sum(map(sum, wrapped.values()))
            play_env(env, game, wrapped)
            env_seconds += sum(map(sum, wrapped.values())) - before
    raw_engine.close()
    env.close()
    attributed = (env_seconds - timed.seconds) / timed.seconds
    return {"raw": raw, "env": wrapped, "attributed_overhead": attributed}


def _raw_worker(args: tuple[str, list[tuple[str, str, tuple[str, ...]]]]) -> dict[str, list[float]]:
    engine_mode, games = args
    engine = make_engine(engine_mode)  # type: ignore[arg-type]
    timings = new_timings()
    for task_id, game_file, walkthrough in games:
        record = GameRecord(task_id, "", "", "", Path(game_file), walkthrough)
        play_raw(engine, record, timings)
    engine.close()
    return timings


def two_workers(games: list[GameRecord], engine_mode: str, data_dir: str | None, split: str) -> dict[str, Any]:
    """Raw engine in 2 processes vs the env in a 2-worker EnvPool; wall-clock figures."""
    halves = [[(g.task_id, str(g.game_file), g.walkthrough) for g in games[w::2]] for w in range(2)]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        pool.map(_warm, [engine_mode] * 2)  # imports and self-checks done before the clock starts
        start = time.perf_counter()
        per_worker = pool.map(_raw_worker, [(engine_mode, h) for h in halves])
        raw_wall = time.perf_counter() - start
    raw_steps = sum(len(t["step"]) for t in per_worker)
    raw_step_wall = max(sum(t["step"]) for t in per_worker)
    raw_reset_wall = max(sum(t["reset"]) for t in per_worker)

    kwargs = {"split": split, "engine": engine_mode, "data_dir": data_dir, "max_steps": 100}
    start = time.perf_counter()
    env_pool = EnvPool(ENV_ID, kwargs, num_envs=2, workers=2, backend="process", timeout_s=600)
    env_pool.call("prepare_engine")
    startup = time.perf_counter() - start
    queues = [list(games[w::2]) for w in range(2)]
    step_wall = reset_wall = first_wall = 0.0
    steps = resets = 0
    start_all = time.perf_counter()
    with env_pool:
        for round_ in range(max(len(q) for q in queues)):
            current = {w: q[round_] for w, q in enumerate(queues) if round_ < len(q)}
            for replay in range(2):
                start = time.perf_counter()
                env_pool.reset([(w, None, {"task_id": g.task_id}) for w, g in current.items()])
                elapsed = time.perf_counter() - start
                if replay:
                    reset_wall += elapsed
                    resets += len(current)
                else:
                    first_wall += elapsed
                for k in range(max(len(g.walkthrough) for g in current.values())):
                    actions = {w: g.walkthrough[k] for w, g in current.items() if k < len(g.walkthrough)}
                    start = time.perf_counter()
                    results = env_pool.step(actions)
                    step_wall += time.perf_counter() - start
                    steps += len(actions)
                    assert all(r.error is None for r in results.values()), results
                assert all(r.info["won"] for r in results.values())
    env_wall = time.perf_counter() - start_all
    return {"raw_wall": raw_wall, "raw_steps_per_s": raw_steps / raw_step_wall,
            "raw_resets_per_s": len(games) / raw_reset_wall, "env_wall": env_wall, "env_startup": startup,
            "env_steps_per_s": steps / step_wall, "env_resets_per_s": resets / reset_wall}


def _warm(engine_mode: str) -> None:
    make_engine(engine_mode).close()  # type: ignore[arg-type]


def median_ms(values: list[float]) -> float:
    return 1000 * statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--games", type=int, default=6, help="games to play (round-robin over task types)")
    parser.add_argument("--split", default="valid_unseen")
    parser.add_argument("--engine", choices=["stock", "fast"], default="stock",
                        help="engine of both the raw runs and the env (fast falls back to stock if unavailable)")
    parser.add_argument("--rounds", type=int, default=1, help="times the single-process set is played")
    parser.add_argument("--data-dir", default=None, help="folder holding json_2.1.1 (default: as the env finds it)")
    parser.add_argument("--skip-pool", action="store_true", help="single process only")
    parser.add_argument("--compare-engines", action="store_true",
                        help="instead: stock vs fast engine on the same games and actions, pool episodes/s and "
                             "memory growth (benchmarks/alfworld_fast_vs_stock.py, whose options follow)")
    import alfworld_fast_vs_stock  # this folder; imported here, as it imports pick_games from this module

    alfworld_fast_vs_stock.add_arguments(parser, shared=False)
    args = parser.parse_args()
    if args.compare_engines:
        alfworld_fast_vs_stock.run(args)
        return

    games = pick_games(args.split, args.games, args.data_dir)
    steps = sum(len(g.walkthrough) for g in games)
    print(f"{len(games)} {args.split} games, {steps} walkthrough steps each pass, engine={args.engine}, "
          f"rounds={args.rounds}")
    single = single_process(games, args.engine, args.data_dir, args.split, args.rounds)
    raw, env = single["raw"], single["env"]
    print("\nsingle process                raw engine        env     env/raw")
    rows = [
        ("step, median ms", median_ms(raw["step"]), median_ms(env["step"])),
        ("steps/s (sum of step times)", len(raw["step"]) / sum(raw["step"]), len(env["step"]) / sum(env["step"])),
        ("first load + reset, median ms", median_ms(raw["first_load"]), median_ms(env["first_load"])),
        ("reset of loaded game, median ms", median_ms(raw["reset"]), median_ms(env["reset"])),
        ("resets/s (loaded game)", len(raw["reset"]) / sum(raw["reset"]), len(env["reset"]) / sum(env["reset"])),
    ]
    for name, a, b in rows:
        print(f"  {name:<30} {a:>10.2f} {b:>10.2f} {b / a:>10.3f}")
    ab = (sum(env["step"]) + sum(env["reset"]) + sum(env["first_load"])) / (
        sum(raw["step"]) + sum(raw["reset"]) + sum(raw["first_load"])) - 1
    print(f"  wrapper overhead, A/B (all env time / all raw time - 1):  {100 * ab:+.2f}%")
    print(f"  wrapper overhead, attributed (env time outside the engine): {100 * single['attributed_overhead']:+.2f}%"
          "   goal < 5%")
    ratio = statistics.median(env["reset"]) / statistics.median(env["first_load"])
    print(f"  env reset of a loaded game / first load: {100 * ratio:.1f}%   (issue 3 goal <= 10%: the fast engine's job)")

    if not args.skip_pool:
        pool = two_workers(games, args.engine, args.data_dir, args.split)
        print("\n2 worker processes            raw engine        env     env/raw")
        print(f"  {'steps/s':<30} {pool['raw_steps_per_s']:>10.2f} {pool['env_steps_per_s']:>10.2f} "
              f"{pool['env_steps_per_s'] / pool['raw_steps_per_s']:>10.3f}")
        print(f"  {'resets/s (loaded game)':<30} {pool['raw_resets_per_s']:>10.2f} {pool['env_resets_per_s']:>10.2f} "
              f"{pool['env_resets_per_s'] / pool['raw_resets_per_s']:>10.3f}")
        print(f"  {'wall s, all games x 2 passes':<30} {pool['raw_wall']:>10.2f} {pool['env_wall']:>10.2f} "
              f"{pool['env_wall'] / pool['raw_wall']:>10.3f}")
        print(f"  EnvPool start-up (2 spawned workers, engines built): {pool['env_startup']:.2f} s; "
              f"pool vs single-process env steps/s: {pool['env_steps_per_s'] / (len(env['step']) / sum(env['step'])):.2f}x")


if __name__ == "__main__":
    main()
