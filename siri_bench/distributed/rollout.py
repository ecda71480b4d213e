"""Training rollouts split over the trainer processes by whole groups.

:func:`sharded_rollout` is the training loop's ``play(specs)`` at any scale: with one process it
plays every spec; with N, process ``r`` plays the groups :func:`~siri_bench.distributed.assign_groups`
gives it (a group's G copies stay together, so GiGPO's anchor-state groups are never cut), then the
finished episodes of all processes are gathered on every process and returned in spec order.

Algorithm state must stay the same on every process (prompt additions depend on it), so during a
sharded rollout the engine sees the algorithm through :class:`DeferredEpisodeEnd`: every hook passes
through except ``on_episode_end``, which every process calls afterwards for every episode of the
rollout, in spec order (one process calls it as each episode finishes).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from siri_bench.rollout import RolloutResult


class DeferredEpisodeEnd:
    """The algorithm as one process's rollout engine sees it (see the module docstring)."""

    def __init__(self, algorithm: Any):
        self._algorithm = algorithm

    def on_episode_end(self, episode: Any, phase: str) -> None:
        """Called later, for all processes' episodes (:func:`sharded_rollout`)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._algorithm, name)


def sharded_rollout(dist: Any, specs: Sequence[Any], play_here: Callable[[list[Any], Any], RolloutResult],
                    algorithm: Any) -> RolloutResult:
    """Play ``specs`` over the processes of ``dist``; every process returns all episodes in spec order.

    ``play_here(specs, hooks)`` plays specs in this process with ``hooks`` as the engine's algorithm.
    """
    if not dist.enabled:
        return play_here(list(specs), algorithm)
    mine = dist.local_specs(specs)
    hooks = DeferredEpisodeEnd(algorithm) if algorithm is not None else None
    with dist.inference_weights():
        local = play_here(mine, hooks) if mine else RolloutResult([])
    by_id = {e.episode_id: e for part in dist.gather(local.episodes) for e in part}
    missing = [s.episode_id for s in specs if s.episode_id not in by_id]
    if missing:
        raise RuntimeError(f"{len(missing)} episode(s) came back from no process, e.g. {missing[0]}")
    episodes = [by_id[s.episode_id] for s in specs]
    if algorithm is not None:
        for spec, episode in zip(specs, episodes):
            algorithm.on_episode_end(episode, spec.phase)
    return RolloutResult(episodes, env_s=local.env_s, policy_s=local.policy_s)
