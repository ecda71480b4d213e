"""GRPO (Shao et al. 2024) for multi-step agents: the episode return, normalised within the group
of G rollouts of one task, is every step's advantage.

The training loop is the harness's (:func:`siri_bench.trainer.train`); the algorithm only names its
estimator through its ``Config``, so the class is a registration.
The estimator is ``algorithms.estimators.grpo``.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from algorithms.advantage_params import GroupBaselineParams
from algorithms.base import Algorithm
from siri_bench.registry import register_algorithm


class GRPOConfig(GroupBaselineParams):
    """GRPO's advantage-estimator parameters."""

    estimator: ClassVar[str] = "grpo"

    norm: Literal["std", "mean"] = Field("std", description=(
        "'std': (R - mean) / (std + eps); 'mean': R - mean (Dr. GRPO; verl-agent's GiGPO WebShop script)"))


@register_algorithm("grpo")
class GRPO(Algorithm):
    """GRPO: group-normalised episode returns as every step's advantage, PPO-clip update with KL."""

    Config = GRPOConfig
    trains: ClassVar[bool] = True
