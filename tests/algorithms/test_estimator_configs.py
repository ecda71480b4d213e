"""The GRPO / RLOO / GiGPO config models: defaults, validation, and the hand-off to the estimators."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError

from algorithms import estimators as E
from algorithms.gigpo import GiGPOConfig
from algorithms.grpo import GRPOConfig
from algorithms.rloo import RLOOConfig

REPO = Path(__file__).resolve().parents[2]
CONFIGS = [GRPOConfig, RLOOConfig, GiGPOConfig]

STEPS = pd.DataFrame({
    "episode_id": ["a", "a", "b", "b"], "group_id": ["g"] * 4, "step": [0, 1, 0, 1],
    "reward": [0.0, 10.0, 0.0, 0.0], "anchor": ["s0", "s1", "s0", "s2"], "valid": [True, True, False, True],
})


@pytest.mark.parametrize("config", CONFIGS)
def test_config_params_are_exactly_what_the_estimator_takes(config):
    params = config().estimator_params()
    accepted = {p.name for p in inspect.signature(E.ESTIMATORS.get(config.estimator)).parameters.values()
                if p.kind is p.KEYWORD_ONLY}
    assert set(params) == accepted
    # the invalid-action penalty is not an algorithm field: it is policy.invalid_action_penalty, passed in
    assert "invalid_penalty" not in config.model_fields
    assert config().estimator_params(invalid_penalty=0.1)["invalid_penalty"] == 0.1
    # the config's defaults are the estimator's defaults
    defaults = {p.name: p.default for p in inspect.signature(E.ESTIMATORS.get(config.estimator)).parameters.values()
                if p.kind is p.KEYWORD_ONLY}
    assert params == defaults
    assert E.compute(config.estimator, STEPS, **params).shape == (4,)


def test_gigpo_defaults_and_fields():
    cfg = GiGPOConfig()
    assert (cfg.gamma, cfg.omega, cfg.norm, cfg.eps, cfg.baseline_over) == (0.95, 1.0, "std", 1e-6, "episodes")
    assert cfg.penalty_mode == "reward"
    # the anchor key is the rollout's env.anchor (one knob), not a GiGPO field
    assert "anchor" not in GiGPOConfig.model_fields
    verl = GiGPOConfig(baseline_over="steps", penalty_mode="verl", norm="mean")
    assert E.compute("gigpo", STEPS, **verl.estimator_params(invalid_penalty=0.1)).shape == (4,)
    for config in CONFIGS:
        for name, field in config.model_fields.items():
            assert field.description, f"{config.__name__}.{name} has no description"


@pytest.mark.parametrize("config, values, message", [
    (GiGPOConfig, {"gamma": 1.2}, "less than or equal to 1"),
    (GiGPOConfig, {"omega": -0.5}, "greater than or equal to 0"),
    (GiGPOConfig, {"anchor": "observation"}, "Extra inputs are not permitted"),
    (GRPOConfig, {"norm": "max"}, "'std' or 'mean'"),
    (GRPOConfig, {"eps": 0}, "greater than 0"),
    (RLOOConfig, {"invalid_penalty": 0.1}, "Extra inputs are not permitted"),
    (RLOOConfig, {"norm": "std"}, "Extra inputs are not permitted"),
    (RLOOConfig, {"baseline_over": "tokens"}, "'episodes' or 'steps'"),
    (GRPOConfig, {"penalty_mode": "verl"}, "penalty_mode='verl' needs baseline_over='steps'"),
])
def test_bad_values_are_rejected(config, values, message):
    with pytest.raises(ValidationError, match=message):
        config(**values)


def test_config_modules_are_import_light():
    """Validating configs and listing algorithms must not import torch (seconds per process, e.g. for
    every `siri-bench algos` or grid dry-run); numpy and pandas are cheap and SIRI's module needs them."""
    code = ("import sys, algorithms.gigpo, algorithms.rloo; "
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
