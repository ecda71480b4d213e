"""Per-iteration metrics of the training rollout (stable names; see :mod:`siri_bench.trainer`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from siri_bench.records import EpisodeRecord


def rollout_metrics(episodes: Sequence[EpisodeRecord], table: pd.DataFrame, rollout_s: float) -> dict[str, Any]:
    """``train/*`` outcome metrics over the iteration's training episodes and ``env/steps_per_s``.

    ``train/return`` is the mean episode sum of the training reward (after ``shape_rewards``),
    ``train/native_return`` the env's own. With several variants (e.g. SIRI's skill groups)
    ``train/success/<variant>`` gives each one's success rate.
    """
    n = max(1, len(episodes))
    steps = int(sum(e.num_steps for e in episodes))
    out: dict[str, Any] = {
        "train/episodes": len(episodes),
        "train/steps": steps,
        "train/success": sum(e.won for e in episodes) / n,
        "train/score": sum(e.score for e in episodes) / n,
        "train/return": float(table.groupby("episode_id", sort=False)["reward"].sum().mean()) if len(table) else 0.0,
        "train/native_return": sum(e.return_ for e in episodes) / n,
        "train/episode_length": steps / n,
        "train/invalid_rate": sum(e.invalid_steps for e in episodes) / max(1, steps),
        "train/prompt_tokens": int(sum(e.prompt_tokens for e in episodes)),
        "train/completion_tokens": int(sum(e.completion_tokens for e in episodes)),
        "env/steps_per_s": steps / rollout_s if rollout_s > 0 else 0.0,
        "rollout/completion_tokens_per_s": sum(e.completion_tokens for e in episodes) / rollout_s if rollout_s > 0 else 0.0,
    }
    variants = sorted({e.variant for e in episodes})
    if len(variants) > 1:
        for v in variants:
            members = [e for e in episodes if e.variant == v]
            out[f"train/success/{v}"] = sum(e.won for e in members) / len(members)
    return out
