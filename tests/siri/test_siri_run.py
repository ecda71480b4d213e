"""SIRI end to end through the harness (``execute_run``) on the corridor test env with the tiny model:
warm-up, mining (template writer), paired validation, promotion, internalization, the event log,
checkpoints, and plain inference (every evaluation prompt is rendered and searched for skill text)."""

from __future__ import annotations

import json

import pytest
import torch

import algorithms.siri.algorithm as siri_module
import siri_bench.rollout as rollout_module
from algorithms.siri.validation import SKILL_VARIANT
from siri_bench.config import build_config, expand_runs
from siri_bench.evaluate import evaluate_run_dir
from siri_bench.registry import ALGORITHMS
from siri_bench.rollout import RolloutSettings, rebuild_prompt_ids
from siri_bench.runner import execute_run
from tests.rollout import corridor

#: every skill the bank shows a prompt starts with this line (``Skill.text``)
SKILL_HEADER = "Skill: "


@pytest.fixture(autouse=True)
def registered():
    corridor.register()
    ALGORITHMS.load()


def config(tmp_path, **algorithm):
    data = {
        "name": "siri_corridor",
        "env": {"id": corridor.ENV_ID, "train_split": "train", "eval_split": "train", "max_steps": 12,
                "kwargs": {"length": 2}},
        "policy": {"model": "tiny-random", "device": "cpu", "action_mode": "score", "score_temperature": 1000.0,
                   "history_length": 1, "cpu_threads": 1},
        "algorithm": {"name": "siri", "warmup_iters": 1, "mine_every": 1, "mine_min_success": 1, "mine_k": 2,
                      "skill_writer": "template", "validation_pairs": 1, "min_validations": 1,
                      "promote_threshold": -1.0, "retire_threshold": -1.0, "lambda_warmup_iters": 0,
                      "validation_return": "success", **algorithm},
        "iterations": 2,
        "train": {"groups_per_iter": 2, "group_size": 4, "minibatch_size": 64, "micro_batch_size": 16,
                  "lr": 1e-3, "checkpoint_every": 1, "kl_coef": 0.0},
        "eval": {"num_tasks": 2, "every": 1, "concurrency": 2, "score_temperature": 1000.0},
        "output_dir": str(tmp_path),
    }
    return build_config(data)


@pytest.fixture
def spies(monkeypatch):
    """Records the decoded prompt of every step the rollout engine builds (with the episode's phase
    and variant) and every prompt SIRI's loss term scores."""
    seen = {"prompts": [], "loss": []}
    real_prepare = rollout_module.RolloutEngine._prepare

    def prepare(self, ep):
        item = real_prepare(self, ep)
        if not isinstance(item, str):
            text = self.policy.tokenizer.decode(item.prompt_ids)
            seen["prompts"].append((ep.spec.phase, ep.spec.variant, text, tuple(item.additions)))
        return item

    real_loss = siri_module.internalization_loss

    def internalization_loss(policy, steps, weights, *, plain_prompt_ids, **kw):
        seen["tokenizer"] = policy.tokenizer
        seen["loss"].append([(step, list(plain_prompt_ids(step)), float(w)) for step, w in zip(steps, weights)])
        return real_loss(policy, steps, weights, plain_prompt_ids=plain_prompt_ids, **kw)

    monkeypatch.setattr(rollout_module.RolloutEngine, "_prepare", prepare)
    monkeypatch.setattr(siri_module, "internalization_loss", internalization_loss)
    return seen


def read_events(run):
    return [json.loads(line) for line in run.skills_path.read_text().splitlines()]


def test_all_phases_run_and_inference_is_plain(tmp_path, spies):
    # weighting none, no gate: every step with A_t > 0 of the skill-augmented group is internalized
    # with weight 1 (the tiny random policy's gains are noise, so U may be <= 0)
    spec = expand_runs(config(tmp_path, weighting="none", gate=False))[0]
    run = execute_run(spec)
    assert run.is_done()
    rows = {r["iteration"]: r for r in run.read_metrics()}

    # phase 1: iteration 1 is warm-up, plain only; its successes fill the buffer and are mined
    assert rows[1]["siri/warmup"] == 1 and rows[1]["siri/skill_episodes"] == 0
    assert rows[1]["siri/buffer_successes"] >= 1 and rows[1]["siri/created"] >= 1
    # phase 2: iteration 2 validates one skill with G plain + G skill-augmented episodes
    assert rows[2]["siri/warmup"] == 0 and rows[2]["siri/pairs"] == 1 and rows[2]["siri/skill_episodes"] == 4
    assert rows[2]["train/episodes"] == 2 * 4 + 2 * 4

    events = read_events(run)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "created" and "validated" in kinds and "promoted" in kinds
    for e in events:
        assert {"skill_id", "category", "iteration"} <= set(e) and e["category"] == "corridor"
    validated = [e for e in events if e["event"] == "validated"]
    assert len(validated) == 1
    v = validated[0]
    # d = mean(R_skill) - mean(R_plain) (R = success); U = (1 - 0.3) * 0 + 0.3 * d from a new skill
    assert v["gain"] == pytest.approx(v["r_skill"] - v["r_plain"])
    assert v["utility"] == pytest.approx(0.3 * v["gain"]) and v["n"] == 1 and v["iteration"] == 2
    skill_id = v["skill_id"]
    created = next(e for e in events if e["event"] == "created" and e["skill_id"] == skill_id)
    skill_text = created["text"]
    assert skill_text.startswith(SKILL_HEADER)

    # the skill-augmented training prompts carry the skill text, the plain ones do not
    train_skill = [t for phase, variant, t, _ in spies["prompts"] if phase == "train" and variant == SKILL_VARIANT]
    train_plain = [t for phase, variant, t, _ in spies["prompts"] if phase == "train" and variant != SKILL_VARIANT]
    assert train_skill and all(skill_text in t for t in train_skill)
    assert train_plain and not any(SKILL_HEADER in t for t in train_plain)

    # plain inference: every evaluation prompt of the run, rendered, has no skill text and no additions
    evals = [(t, a) for phase, _, t, a in spies["prompts"] if phase == "eval"]
    assert len(evals) >= 2 * 2                      # 2 tasks x at least one step, in rounds 1 and 2
    assert not any(SKILL_HEADER in t or a for t, a in evals)
    # ... and the saved evaluation steps record no prompt additions
    assert all(len(a) == 0 for a in run.read_steps()["prompt_additions"])

    # phase 3: internalization in iteration 2 (not in the warm-up), skill-guided actions scored under
    # exactly the plain prompt (rebuilt without the skill)
    assert rows[1].get("loss/internalization") is None and rows[1]["siri/internalization_steps"] == 0
    assert rows[2]["siri/internalization_steps"] > 0 and rows[2]["loss/internalization"] > 0
    assert 0 < rows[2]["siri/internalization_token_fraction"] < 1
    settings = RolloutSettings.from_config(spec.config, "train")
    tok = spies["tokenizer"]
    scored = [item for call in spies["loss"] for item in call]
    assert scored and all(w == 1.0 for _, _, w in scored)                          # weighting none
    for step, ids, _ in scored:
        assert step.variant == SKILL_VARIANT and step.prompt_additions == [skill_text]   # sampled with it,
        assert skill_text in tok.decode(step.prompt_ids)
        assert SKILL_HEADER not in tok.decode(ids)                                       # scored without it
        assert ids == rebuild_prompt_ids(step, settings, tok)

    # the bank is in the last checkpoint
    algo_state = torch.load(run.latest_checkpoint().path / "algorithm.pt", weights_only=False)
    assert skill_id in {s["skill_id"] for s in algo_state["bank"]["skills"]}
    assert any(s["status"] == "active" for s in algo_state["bank"]["skills"])

    # `siri-bench eval` of the checkpoint (bank loaded, an active skill in it) renders plain prompts too
    spies["prompts"].clear()
    evaluate_run_dir(run.path, overrides=["eval.num_tasks=1"])
    evals = [(t, a) for phase, _, t, a in spies["prompts"] if phase == "eval"]
    assert evals and not any(SKILL_HEADER in t or a for t, a in evals)


def test_inference_skills_ablation_puts_active_skills_in_eval_prompts(tmp_path, spies):
    run = execute_run(expand_runs(config(tmp_path, inference_skills=True))[0])
    events = read_events(run)
    assert any(e["event"] == "promoted" for e in events)
    evals = [t for phase, _, t, _ in spies["prompts"] if phase == "eval"]
    # round 1 (after the warm-up: a candidate only) is plain; round 2 (an active skill) is not
    assert evals and any(SKILL_HEADER in t for t in evals)
    # so is `siri-bench eval` of the checkpoint, which loads the bank with the weights
    spies["prompts"].clear()
    evaluate_run_dir(run.path, overrides=["eval.num_tasks=1"])
    evals = [t for phase, _, t, _ in spies["prompts"] if phase == "eval"]
    assert evals and all(SKILL_HEADER in t for t in evals)


def test_warm_up_is_exactly_the_base_optimizer(tmp_path):
    """A warm-up iteration of SIRI is a plain GiGPO iteration: same episodes, same update, same metrics."""
    def first_row(cfg):
        cfg = cfg.model_copy(update={"iterations": 1})
        row = execute_run(expand_runs(cfg)[0]).read_metrics()[-1]
        return {k: v for k, v in row.items() if not k.startswith(("time/", "siri/")) and "_per_s" not in k}

    siri = build_config(config(tmp_path / "siri").to_dict(), ["eval.num_tasks=1"])
    gigpo = build_config({**siri.to_dict(), "output_dir": str(tmp_path / "gigpo"),
                          "algorithm": {"name": "gigpo", "gamma": 0.95, "omega": 1.0, "norm": "std"}})
    siri_row, gigpo_row = first_row(siri), first_row(gigpo)
    assert siri_row["train/optimizer_steps"] >= 1 and siri_row["iteration"] == 1
    assert siri_row == gigpo_row
