"""SIRI's parameters: one pydantic model, every field documented with its default.

The defaults are those of ``shared/reference/siri.md`` where it gives one; a field the reference
leaves open carries our choice and says so. The base optimizer's estimator fields (``norm``,
``eps``, ``gamma``, ``omega``, ``baseline_over``, ``penalty_mode``) are GiGPO's; with ``base: grpo``
the GiGPO-only ones (``gamma``, ``omega``) are ignored. Import-light (pydantic only), so configs validate without torch.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from algorithms.gigpo import GiGPOConfig
from siri_bench.config import OpenAIConfig

Weighting = Literal["none", "utility", "advantage", "both"]
WriterName = Literal["self", "external", "template"]

#: estimator fields GRPO does not take (GiGPO's step level)
_GIGPO_ONLY = frozenset({"gamma", "omega"})


class SIRIConfig(GiGPOConfig):
    """SIRI = a base group optimizer + self-skill mining with paired validation + internalization."""

    #: what the trainer's default ``advantages`` would use; SIRI's own hook uses ``base`` instead
    estimator: ClassVar[str] = "gigpo"

    # -- base optimizer -------------------------------------------------------------------------
    base: Literal["gigpo", "grpo"] = Field("gigpo", description=(
        "base optimizer whose advantages drive the policy loss and the internalization's action "
        "selection (ablation: grpo)"))

    # -- phase 1: warm-up and the success buffer --------------------------------------------------
    warmup_iters: int = Field(10, ge=0, description=(
        "iterations of plain base-optimizer training before the first mining (our default; the paper "
        "warms up until enough successes exist)"))
    category: Literal["task_type", "single"] = Field("task_type", description=(
        "what keys the success buffer and the skill bank: the env's task_type (ALFWorld task type, WebShop "
        "product category) or one category for everything"))
    buffer_per_category: int = Field(64, ge=1, description="successful plain episodes kept per category (newest)")

    # -- phase 2: mining ---------------------------------------------------------------------------
    mine_every: int = Field(5, ge=1, description=(
        "mine every N iterations, the first time at the end of the last warm-up iteration (our default)"))
    mine_min_success: int = Field(4, ge=1, description="buffered successes a category needs to be mined")
    mine_k: int = Field(4, ge=1, description="successful episodes the writer summarises into one skill")
    skill_writer: WriterName = Field("self", description=(
        "self: the current policy writes the skill; external: an OpenAI-compatible endpoint (`external`); "
        "template: no model, the action pattern the successes share (tests; ablation)"))
    skill_max_tokens: int = Field(128, ge=8, description="at most this many tokens of steps per skill")
    writer_temperature: float = Field(0.0, ge=0.0, description="sampling temperature of the writer (0: greedy)")
    writer_max_new_tokens: int = Field(320, ge=16, description="token limit of the writer's answer (title, when, steps)")
    writer_max_actions: int = Field(30, ge=1, description="actions of each episode shown to the writer (the first N)")
    external: OpenAIConfig = Field(default_factory=OpenAIConfig, description=(
        "the endpoint of skill_writer: external (base_url, model, api_key_env, ...)"))
    max_candidates: int = Field(2, ge=1, description=(
        "candidate skills awaiting validation per category; a category at the cap is not mined (our addition: "
        "keeps mining from outrunning validation)"))
    dedup_threshold: float = Field(0.9, ge=0.0, le=1.0, description=(
        "a new skill whose normalised steps text has similarity above this with an existing skill of its "
        "category (any status) is dropped (rapidfuzz ratio in [0, 1]; our default)"))

    # -- phase 2: paired validation and the lifecycle ----------------------------------------------
    validation: bool = Field(True, description=(
        "paired validation; false (ablation): every mined skill is active at once, with utility 1 and never "
        "updated, and only max_active eviction retires skills"))
    validation_pairs: int = Field(2, ge=1, description=(
        "skills validated per iteration: each gets G plain + G skill-augmented rollouts (G = "
        "train.group_size) on one training task of its category, same task and env seed (our default)"))
    validation_return: Literal["return", "success", "score"] = Field("return", description=(
        "R in the paired gain and the gate: the episode's native return, its success (0/1) or its final score"))
    beta: float = Field(0.3, gt=0.0, le=1.0, description="EMA rate of the utility: U <- (1 - beta) U + beta d")
    min_validations: int = Field(3, ge=1, description="validations before a skill may be promoted or retired")
    promote_threshold: float = Field(0.05, description="candidate -> active when n >= min_validations and U >= this")
    retire_threshold: float = Field(0.0, description="-> retired when n >= min_validations and U < this")
    max_active: int = Field(8, ge=1, description="active skills per category; above it the lowest U is retired")

    # -- phase 3: internalization ------------------------------------------------------------------
    gate: bool = Field(True, description=(
        "trajectory gate: a skill-augmented episode is used only if its skill is active (or U > gate_threshold) "
        "and its R is at least the mean R of its paired plain group (ablation: false)"))
    gate_threshold: float = Field(0.0, description="a non-active, non-retired skill passes the gate when U > this")
    weighting: Weighting = Field("both", description=(
        "internalization weight of a kept step (A_t > 0): both = clip(U,0,1) * A_t, utility = clip(U,0,1), "
        "advantage = A_t, none = 1"))
    lambda_int_max: float = Field(1.0, ge=0.0, description="final weight of the internalization loss")
    lambda_warmup_iters: int = Field(10, ge=0, description=(
        "lambda_int rises linearly from 0 to lambda_int_max over this many iterations from the first "
        "internalization step: lambda(k) = lambda_int_max * min(1, k / W), k = 1 at that step"))

    # -- inference -----------------------------------------------------------------------------------
    inference_skills: bool = Field(False, description=(
        "ablation: keep the active skills of the task's category in the prompt at evaluation (a SkillRL-like "
        "upper bound on retrieval); default false: evaluation sees the plain prompt only"))

    @model_validator(mode="after")
    def _thresholds(self) -> SIRIConfig:
        if self.retire_threshold > self.promote_threshold:
            raise ValueError(f"retire_threshold ({self.retire_threshold}) must not exceed promote_threshold "
                             f"({self.promote_threshold})")
        if self.mine_k > self.buffer_per_category:
            raise ValueError(f"mine_k ({self.mine_k}) cannot exceed buffer_per_category ({self.buffer_per_category})")
        return self

    def estimator_params(self, invalid_penalty: float = 0.0) -> dict[str, Any]:
        """Keyword arguments of ``estimators.compute(self.base, steps, **params)`` (GRPO: without
        GiGPO's ``gamma`` and ``omega``); ``invalid_penalty`` is the run's ``policy.invalid_action_penalty``."""
        fields = set(GiGPOConfig.model_fields)
        if self.base == "grpo":
            fields -= _GIGPO_ONLY
        return {**self.model_dump(include=fields), "invalid_penalty": float(invalid_penalty)}
