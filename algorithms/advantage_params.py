"""Config fields shared by the group-baseline estimators (GRPO, RLOO, GiGPO).

Each algorithm's ``Config`` (``algorithms/grpo.py``, ``rloo.py``, ``gigpo.py``) extends
:class:`GroupBaselineParams`; :meth:`GroupBaselineParams.estimator_params` gives the keyword
arguments of ``algorithms.estimators.compute(config.estimator, steps, **params)``; the invalid-action
penalty comes from ``policy.invalid_action_penalty`` (one knob for the rollout's records and the
estimators). This module
stays import-light (pydantic only) so that configs validate without numpy, pandas or torch.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from siri_bench.config import StrictModel


class GroupBaselineParams(StrictModel):
    """Episode-group baseline options every group estimator shares."""

    #: the registered estimator these parameters belong to
    estimator: ClassVar[str] = ""
    #: fields that configure something other than the estimator (e.g. the rollout's anchor key)
    non_estimator_fields: ClassVar[frozenset[str]] = frozenset()

    eps: float = Field(1e-6, gt=0, description=(
        "added to the std before dividing; a group whose std is below eps counts as tied and gets "
        "advantage 0"))
    baseline_over: Literal["episodes", "steps"] = Field("episodes", description=(
        "what the episode-level group mean/std run over: 'episodes' (each of the N episode returns "
        "once; the GiGPO paper) or 'steps' (every step row carries its episode's return, so longer "
        "episodes weigh more; verl-agent)"))
    penalty_mode: Literal["reward", "verl"] = Field("reward", description=(
        "'reward': the penalty is subtracted from the step's reward, so it enters the episode "
        "return and the discounted returns of earlier steps; 'verl': subtracted from that row's "
        "episode score and step return only (verl-agent; needs baseline_over='steps')"))

    @model_validator(mode="after")
    def _verl_penalty_needs_step_statistics(self) -> GroupBaselineParams:
        if self.penalty_mode == "verl" and self.baseline_over != "steps":
            raise ValueError("penalty_mode='verl' needs baseline_over='steps' (as in verl-agent); "
                             "or use penalty_mode='reward'")
        return self

    def estimator_params(self, invalid_penalty: float = 0.0) -> dict[str, Any]:
        """Keyword arguments for ``estimators.compute(self.estimator, steps, **params)``.

        ``invalid_penalty`` is not an algorithm parameter: the one knob is
        ``policy.invalid_action_penalty`` (the rollout records it per step), which the trainer passes here.
        """
        return {**self.model_dump(exclude=set(self.non_estimator_fields)), "invalid_penalty": float(invalid_penalty)}
