"""The shipped SIRI configs: they validate; the paper-scale ones are the GiGPO recipe plus SIRI's
reference defaults; the ablation grid has one cell per switch of the spec."""

from __future__ import annotations

from pathlib import Path

import pytest

from algorithms.siri.config import SIRIConfig
from siri_bench.config import expand_runs, load_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SIRI_CONFIGS = ["siri_alfworld_tiny.yaml", "siri_alfworld_qwen7b.yaml", "siri_webshop_qwen7b.yaml",
                "siri_ablations.yaml"]

#: shared/reference/siri.md's defaults
SPEC_DEFAULTS = {"buffer_per_category": 64, "mine_min_success": 4, "mine_k": 4, "skill_max_tokens": 128,
                 "beta": 0.3, "min_validations": 3, "promote_threshold": 0.05, "retire_threshold": 0.0,
                 "max_active": 8, "weighting": "both", "lambda_int_max": 1.0, "lambda_warmup_iters": 10,
                 "skill_writer": "self", "validation": True, "gate": True, "base": "gigpo",
                 "inference_skills": False}


@pytest.mark.parametrize("name", SIRI_CONFIGS)
def test_config_validates(name):
    cfg = load_config(CONFIGS / name)
    assert cfg.name == Path(name).stem and cfg.iterations >= 1
    runs = expand_runs(cfg)
    assert runs and all(r.config.algorithm_params() is not None for r in runs)


def test_the_config_defaults_are_the_specs():
    params = SIRIConfig()
    assert {k: getattr(params, k) for k in SPEC_DEFAULTS} == SPEC_DEFAULTS


@pytest.mark.parametrize("siri, gigpo, norm, measure", [
    ("siri_alfworld_qwen7b.yaml", "gigpo_alfworld_qwen7b.yaml", "std", "return"),
    ("siri_webshop_qwen7b.yaml", "gigpo_webshop_qwen7b.yaml", "mean", "score"),
])
def test_paper_scale_configs_are_the_gigpo_recipe_plus_siri(siri, gigpo, norm, measure):
    s, g = load_config(CONFIGS / siri), load_config(CONFIGS / gigpo)
    # everything but the algorithm is the GiGPO recipe (same rollouts, rewards, optimizer, evaluation)
    for section in ("env", "policy", "train", "eval"):
        assert getattr(s, section) == getattr(g, section), section
    assert (s.seeds, s.iterations) == (g.seeds, g.iterations)
    params = s.algorithm_params()
    assert s.algorithm_name == "siri" and isinstance(params, SIRIConfig)
    base = g.algorithm_params()
    assert (params.gamma, params.omega, params.norm) == (base.gamma, base.omega, base.norm) == (0.95, 1.0, norm)
    assert {k: getattr(params, k) for k in SPEC_DEFAULTS} == SPEC_DEFAULTS
    assert params.validation_return == measure and params.category == "task_type"


def test_tiny_config_says_it_uses_the_template_writer():
    cfg = load_config(CONFIGS / "siri_alfworld_tiny.yaml")
    assert cfg.policy.model == "tiny-random" and cfg.policy.device == "cpu"
    assert cfg.algorithm_params().skill_writer == "template"
    assert "TEMPLATE writer" in (CONFIGS / "siri_alfworld_tiny.yaml").read_text()


def test_ablation_grid_has_one_cell_per_switch():
    cfg = load_config(CONFIGS / "siri_ablations.yaml")
    runs = expand_runs(cfg)
    by_cell = {r.cell: r.config for r in runs if r.seed == cfg.seeds[0]}
    assert len(runs) == len(by_cell) * len(cfg.seeds) and len(cfg.seeds) >= 3
    full = by_cell["full"].algorithm_params()
    assert {k: getattr(full, k) for k in SPEC_DEFAULTS} == SPEC_DEFAULTS

    def changed(cell):
        """The SIRI fields a cell changes relative to the full method."""
        p = by_cell[cell].algorithm_params()
        return {k: v for k, v in p.model_dump().items() if v != full.model_dump()[k]}

    expected = {
        "no_validation": {"validation": False},
        "weighting_none": {"weighting": "none"},
        "weighting_utility": {"weighting": "utility"},
        "weighting_advantage": {"weighting": "advantage"},
        "no_gate": {"gate": False},
        "writer_template": {"skill_writer": "template"},
        "base_grpo": {"base": "grpo"},
        "inference_skills": {"inference_skills": True},
    }
    for cell, diff in expected.items():
        assert changed(cell) == diff, cell
    external = changed("writer_external")
    assert external.pop("skill_writer") == "external" and set(external) == {"external"}
    # the base optimizers without SIRI, on the same rollout and update settings
    assert by_cell["plain_gigpo"].algorithm_name == "gigpo" and by_cell["plain_grpo"].algorithm_name == "grpo"
    for cell, run_cfg in by_cell.items():
        assert (run_cfg.env, run_cfg.policy, run_cfg.train, run_cfg.eval) == (
            by_cell["full"].env, by_cell["full"].policy, by_cell["full"].train, by_cell["full"].eval), cell
    assert set(by_cell) == {"full", "writer_external", "plain_gigpo", "plain_grpo", *expected}
    assert cfg.report["ablation"]["full"] == "siri[full]"
