"""SFT: behaviour cloning on expert trajectories (BUTLER-style imitation), and a warm start for RL.

Each iteration plays one expert episode per task drawn from the run's task stream
(``train.groups_per_iter`` tasks; ``train.group_size`` is ignored: copies of a demonstration would be
identical) through the rollout engine with ``actor="expert"``: the env's ``expert_plan()`` supplies
the actions (ALFWorld: the game's walkthrough; WebShop: the oracle path search -> item -> options ->
Buy Now), and the step records hold the policy's own prompts (same templates and history) with the
expert's response:

* **generate mode** - the target ``<think>Next step: {action}.</think><action>{action}</action>``
  followed by EOS. The think text only restates the planned action
  (:data:`siri_bench.rollout.EXPERT_THINK`); it teaches the output format, not reasoning that the
  demonstrations do not contain;
* **score mode** - the expert action's index among the candidate actions; the loss unit is
  ``log softmax(s / tau)`` of the expert candidate. An expert action that is not a candidate (e.g. a
  WebShop search query other than the derived ones) is played but not trained on
  (``sft/untrainable_steps``).

The loss is the token-mean negative log-likelihood of these loss units (the same log-probs the RL
losses use), summed over the micro-batches of an optimizer step; there is no PPO term, no KL and no
advantage. The last checkpoint initialises any other run with the same ``policy.model``
(``train.init_from: RUN_DIR``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from algorithms.base import Algorithm, NoParams
from siri_bench.registry import register_algorithm


def _trainable(step: Any) -> bool:
    """Whether an expert step has a loss unit (score mode: the expert action is a candidate)."""
    return step.candidate_index >= 0 if step.action_mode == "score" else sum(step.action_mask) > 0


@register_algorithm("sft")
class SFT(Algorithm):
    """Behaviour cloning: NLL of expert actions (walkthroughs, oracle paths), in either action mode."""

    Config: ClassVar[type[NoParams]] = NoParams
    trains: ClassVar[bool] = True

    def plan_rollouts(self, iteration: int, tasks: Sequence[Any], state: Any) -> list[Any]:
        from siri_bench.rollout import group_specs

        return group_specs(tasks, run_seed=state.run_seed, iteration=iteration, group_size=1, actor="expert")

    def advantages(self, steps: Any) -> Any:
        import numpy as np

        return np.zeros(len(steps))

    def base_loss_rows(self, steps: Any) -> Any:
        import numpy as np

        return np.zeros(len(steps), dtype=bool)

    def loss_terms(self, batch: Any, policy: Any) -> dict[str, Any]:
        import torch

        from algorithms.losses import weighted_nll
        from siri_bench.records import loss_unit_count

        steps = [s for s in batch.steps if _trainable(s)]
        total = sum(loss_unit_count(s) for s in batch.minibatch_steps if _trainable(s))
        if not steps or total == 0:
            return {}
        lp = batch.logprobs(policy, steps)
        weights = torch.ones(len(steps), dtype=lp.values.dtype, device=lp.values.device)
        return {"sft_nll": weighted_nll(lp.values, lp.mask, weights, weight_total=float(total))}

    def on_iteration_end(self, state: Any) -> dict[str, Any]:
        """Demonstration statistics and the expert actions' likelihood *before* this iteration's
        update (``sft/expert_logprob``: mean log-prob per loss unit at rollout time)."""
        steps = [s for e in state.episodes for s in e.steps]
        trainable = [s for s in steps if _trainable(s)]
        units = [x for s in trainable for x in ([s.action_logprob] if s.action_mode == "score" else
                                                [lp for lp, m in zip(s.sample_logprobs, s.action_mask) if m])]
        return {
            "sft/expert_episodes": len(state.episodes),
            "sft/expert_success": sum(e.won for e in state.episodes) / max(1, len(state.episodes)),
            "sft/expert_steps": len(steps),
            "sft/untrainable_steps": len(steps) - len(trainable),
            "sft/expert_logprob": sum(units) / len(units) if units else None,
        }
