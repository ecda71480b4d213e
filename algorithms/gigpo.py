"""GiGPO (Feng et al. 2025, "Group-in-Group Policy Optimization for LLM Agent Training"):
A = A_episode + omega * A_step. A_episode is GRPO's; A_step normalises the discounted return
R_t = sum_k gamma^k r_{t+k} over the *step group* of rows (of one episode group) that share an
anchor key, i.e. that acted in the same environment state; singleton step groups get 0.

The training loop is the harness's (:func:`siri_bench.trainer.train`); the algorithm only names its
estimator through its ``Config``, so the class is a registration.
The estimator is ``algorithms.estimators.gigpo`` (``gigpo_table`` shows the grouping).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from algorithms.base import Algorithm
from algorithms.grpo import GRPOConfig
from siri_bench.registry import register_algorithm


class GiGPOConfig(GRPOConfig):
    """GiGPO's parameters: GRPO's plus the step level. What the anchor key is (the env state or the
    raw observation) is the rollout's ``env.anchor``, which records it on every step."""

    estimator: ClassVar[str] = "gigpo"

    gamma: float = Field(0.95, ge=0, le=1, description="discount of the step-level returns R_t")
    omega: float = Field(1.0, ge=0, description="weight of the step-level advantage (the paper uses 1)")


@register_algorithm("gigpo")
class GiGPO(Algorithm):
    """GiGPO: episode-level plus anchor-state step-level advantages, PPO-clip update with KL."""

    Config = GiGPOConfig
    trains: ClassVar[bool] = True
