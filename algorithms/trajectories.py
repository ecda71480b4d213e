"""Episodes as compact text, for the prompts of writers (reflections, memories, skills)."""

from __future__ import annotations

from typing import Any

from algorithms.model_output import clip


def outcome_text(episode: Any) -> str:
    """``success``, or ``failure (step_limit)`` etc."""
    return "success" if episode.won else f"failure ({episode.status})"


def render_trajectory(episode: Any, *, max_steps: int = 30, observation_chars: int = 300) -> str:
    """The episode's steps as ``Step k: observation -> action`` lines (the last ``max_steps``),
    followed by the outcome. Observations are shortened to ``observation_chars`` characters."""
    steps = list(episode.steps)
    lines = []
    if len(steps) > max_steps:
        lines.append(f"(first {len(steps) - max_steps} steps left out)")
        steps = steps[-max_steps:]
    for s in steps:
        obs = clip(" ".join(str(s.observation).split()), observation_chars)
        action = s.action if s.parsed_action is not None else f"{s.action} (no valid <action> given)"
        note = "" if s.valid else " [invalid]"
        lines.append(f"Step {s.step + 1}: Observation: {obs}\n  Action: {action}{note}")
    lines.append(f"Outcome: {outcome_text(episode)} after {episode.num_steps} steps.")
    return "\n".join(lines)


def action_sequence(episode: Any, max_actions: int = 40) -> list[str]:
    """The actions the env received, in order (the valid ones; at most ``max_actions``)."""
    actions = [s.action for s in episode.steps if s.valid and s.action]
    return actions[:max_actions]
