"""RLOO (Ahmadian et al. 2024) for multi-step agents: the episode return minus the mean return of
the other rollouts of its group is every step's advantage (the update is still PPO-clip, as in
verl-agent, so this is "LOOP-like").

The training loop is the harness's (:func:`siri_bench.trainer.train`); the algorithm only names its
estimator through its ``Config``, so the class is a registration.
The estimator is ``algorithms.estimators.rloo``.
"""

from __future__ import annotations

from typing import ClassVar

from algorithms.advantage_params import GroupBaselineParams
from algorithms.base import Algorithm
from siri_bench.registry import register_algorithm


class RLOOConfig(GroupBaselineParams):
    """RLOO's advantage-estimator parameters."""

    estimator: ClassVar[str] = "rloo"


@register_algorithm("rloo")
class RLOO(Algorithm):
    """RLOO: leave-one-out episode baseline, PPO-clip update with KL (LOOP-like)."""

    Config = RLOOConfig
    trains: ClassVar[bool] = True
