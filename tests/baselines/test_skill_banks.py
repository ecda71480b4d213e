"""Skill banks: D2Skill's UCB retrieval score, credits, intrinsic reward and eviction by hand;
SkillRL's retrieval and JSON; both banks persist across a checkpoint and a resume."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from algorithms.base import PromptContext
from algorithms.d2skill import D2Skill, D2SkillConfig, parse_reflection
from algorithms.d2skill_bank import D2SkillBank, retrieval_score
from algorithms.skillrl_bank import SkillRLBank
from algorithms.skills import Skill, parse_skills
from algorithms.writers import TemplateWriter
from siri_bench.config import expand_runs
from siri_bench.evaluate import evaluate_run_dir
from siri_bench.runner import execute_run
from siri_bench.store import RunDir
from tests.baselines.conftest import corridor_config
from tests.baselines.test_memrl import AngleSimilarity


def d2_bank() -> D2SkillBank:
    bank = D2SkillBank(AngleSimilarity({"k0": 0.9, "k1": 0.6, "k2": 0.3}))
    for key, u, n in (("k0", 0.1, 3), ("k1", 0.5, 1), ("k2", 0.0, 0)):
        (skill,) = bank.add([Skill("", f"title {key}", f"principle of {key}", key=key)], "task")
        skill.utility, skill.retrievals = u, n
    return bank


def test_d2skill_ucb_retrieval_score_matches_hand_computation():
    bank = d2_bank()
    # N = 3 + 1 + 0 = 4, ln(max(2, 1 + N)) = ln 5 = 1.609438; alpha 0.1, c 0.05
    # k0: 0.1 * (0.9 + 1) / 2 + 0.9 * (0.1 + 0.05 * sqrt(1.609438 / 4)) = 0.095 + 0.9 * 0.131716 = 0.213544
    # k1: 0.1 * 0.8             + 0.9 * (0.5 + 0.05 * sqrt(1.609438 / 2)) = 0.080 + 0.9 * 0.544853 = 0.570368
    # k2: 0.1 * 0.65            + 0.9 * (0.0 + 0.05 * sqrt(1.609438 / 1)) = 0.065 + 0.9 * 0.063432 = 0.122089
    found = bank.retrieve("task", "q", top_k=2, top_2k=3, alpha=0.1, c=0.05, threshold=None)
    assert [s.skill.key for s in found] == ["k1", "k0"]
    assert [s.score for s in found] == pytest.approx([0.570368, 0.213544], abs=1e-6)
    assert retrieval_score(0.3, 0.0, 4, 0, alpha=0.1, c=0.05) == pytest.approx(0.122089, abs=1e-6)
    # the threshold applies to the similarity of the kept skills: k1 (0.6) is dropped at 0.7
    assert [s.skill.key for s in bank.retrieve("task", "q", top_k=2, top_2k=3, threshold=0.7)] == ["k0"]
    # only the top_2k most similar are ranked: with 2, k2 never competes
    assert [s.skill.key for s in bank.retrieve("task", "q", top_k=3, top_2k=2, threshold=None)] == ["k1", "k0"]
    # before any update (N = 0) the bonus uses ln 2: c * sqrt(ln 2)
    fresh = D2SkillBank(AngleSimilarity({"k0": 0.9}))
    fresh.add([Skill("", "a title here", "a principle that reads", key="k0")], "task")
    (only,) = fresh.retrieve("task", "q", top_k=1, threshold=None)
    assert only.score == pytest.approx(0.1 * 0.95 + 0.9 * 0.05 * math.sqrt(math.log(2)))


def fake_episode(episode_id, group_id, variant, won):
    return SimpleNamespace(episode_id=episode_id, group_id=group_id, variant=variant, won=won)


def test_paired_credits_and_intrinsic_reward_by_hand():
    algo = D2Skill(D2SkillConfig(utility_beta=0.5, intrinsic_coef=1.0), similarity=AngleSimilarity({}))
    bank = algo.bank
    (task_skill,) = bank.add([Skill("", "task skill t", "principle of the task skill", key="t")], "task")
    step_a, step_b = bank.add([Skill("", "step skill a", "principle of step a", key="a"),
                               Skill("", "step skill b", "principle of step b", key="b")], "step")
    episodes = [fake_episode("g-m0", "g", "skill", True), fake_episode("g-m1", "g", "skill", False),
                fake_episode("g-m2", "g", "plain", True), fake_episode("g-m3", "g", "plain", True),
                fake_episode("h-m0", "h", "skill", True), fake_episode("h-m1", "h", "plain", False)]
    algo._used["g-m0"] = {"task": {task_skill.id}, "step": {step_b.id}}
    algo._used["g-m1"] = {"task": {task_skill.id}, "step": {step_a.id}}
    algo._used["h-m0"] = {"task": set(), "step": {step_b.id}}
    # group g: baseline 1.0 (plain half 1, 1); skill half 1, 0 -> task credit 0.5 - 1 = -0.5,
    #   step credits m0: 1 - 1 = 0, m1: 0 - 1 = -1; group h: baseline 0, m0 credit 1
    assert algo.update_utilities(episodes, iteration=3) == 4
    assert task_skill.utility == pytest.approx(0.5 * -0.5) and task_skill.retrievals == 1
    assert step_a.utility == pytest.approx(0.5 * -1.0)
    assert step_b.utility == pytest.approx(0.5 * (0.5 * 0.0) + 0.5 * 1.0) and step_b.retrievals == 2
    assert step_b.last_retrieved == 3
    # intrinsic reward on the last step: coef * (success_i - baseline_g)
    steps = pd.DataFrame({"episode_id": [e.episode_id for e in episodes for _ in range(2)],
                          "step": [0, 1] * len(episodes), "reward": [0.0, 10.0, 0.0, 0.0, 0.0, 10.0, 0.0, 10.0,
                                                                     0.0, 10.0, 0.0, 0.0]})
    shaped = algo.shape_rewards(steps, episodes)
    assert list(shaped["reward"]) == [0.0, 10.0, 0.0, -1.0, 0.0, 10.0, 0.0, 10.0, 0.0, 11.0, 0.0, 0.0]
    assert list(steps["reward"])[3] == 0.0                      # the input table is left as it was


def test_eviction_keeps_recent_and_valuable_skills():
    bank = D2SkillBank(AngleSimilarity({}))
    skills = bank.add([Skill("", f"skill number {i}", f"principle number {i} here", key=f"k{i}") for i in range(4)],
                      "step", iteration=0)
    for s, u in zip(skills, [0.3, -0.2, 0.1, -0.5]):
        s.utility = u
    skills[3].last_retrieved = 18                      # updated recently: protected
    removed = bank.evict("step", cap=2, iteration=20, protect=10, c=0.05)
    # N = 0: no bonus; lowest utilities among the unprotected: -0.2 (skill 1), then 0.1 (skill 2)
    assert [s.id for s in removed] == [skills[1].id, skills[2].id]
    assert [s.id for s in bank.pools["step"]] == [skills[0].id, skills[3].id]
    assert bank.evict("step", cap=2, iteration=20) == []


def test_d2skill_reflection_parser():
    text = ('FIRST_ERROR_STEP: 3\nSTEP_REFLECTION:\n{"title": "Open the fridge", "principle": "Open a closed '
            'fridge before looking for food in it.", "when_to_apply": "A closed fridge"}\nTASK_REFLECTION:\n'
            '```json\n{"title": "Cool then place", "principle": "Cool the object in the fridge, then put it '
            'in place.", "when_to_apply": "Cooling tasks"}\n```')
    step, step_skill, task_skill = parse_reflection(text)
    assert step == 3 and step_skill.title == "Open the fridge" and task_skill.title == "Cool then place"
    assert parse_reflection("random ]] tokens {")[1:] == (None, None)


def test_skillrl_bank_from_skillrl_json_and_retrieval():
    data = {"general_skills": [{"skill_id": f"gen_{i:03d}", "title": f"General {i}", "principle": "p",
                                "when_to_apply": "w"} for i in range(1, 9)] +
            [{"skill_id": "dyn_001", "title": "Evolved one", "principle": "p", "when_to_apply": "w"}],
            "task_specific_skills": {"clean": [{"skill_id": "cln_001", "title": "Use the sink", "principle": "p"}],
                                     "heat": [{"skill_id": "heat_001", "title": "Use the microwave", "principle": "p"}]},
            "common_mistakes": [{"mistake_id": f"err_{i}", "description": f"mistake {i}", "how_to_avoid": "fix"}
                                for i in range(7)]}
    bank = SkillRLBank.from_json(data)
    assert len(bank.general) == 8 and [s.id for s in bank.evolved] == ["dyn_001"]
    sel = bank.retrieve_template("clean", top_k=6)
    # evolved skills first, then the first static general skills up to top_k; all of the type; 5 mistakes
    assert [s.id for s in sel.general] == ["dyn_001", "gen_001", "gen_002", "gen_003", "gen_004", "gen_005"]
    assert [s.id for s in sel.task] == ["cln_001"] and len(sel.mistakes) == 5
    assert sel.mistakes[0].title == "mistake 0" and sel.mistakes[0].principle == "fix"
    assert [s.id for s in bank.retrieve_template("clean", top_k=6, with_evolved=False).general][0] == "gen_001"
    assert bank.retrieve_template("unknown").task == []
    again = SkillRLBank.from_json(bank.to_json())
    assert [s.to_dict() for s in again.all_skills()] == [s.to_dict() for s in bank.all_skills()]


def test_parse_skills_drops_and_counts_garbage():
    skills, dropped = parse_skills('Here: [{"title": "Open containers first", "principle": "Open closed '
                                   'containers before judging them empty."}, {"title": "", "principle": "x"}] '
                                   'and {"title": "12 ]]", "principle": "## 99"}')
    assert [s.title for s in skills] == ["Open containers first"] and dropped == 2
    assert parse_skills("<|endoftext|> qz 1 2") == ([], 1)


class Interrupt(BaseException):
    """A kill between two iterations."""


SKILL_WRITERS = {
    "skillrl": {"name": "skillrl", "build_groups": 2, "update_every": 1, "validation_tasks": 2,
                "writer": {"kind": "template"}},
    "d2skill": {"name": "d2skill", "similarity": "bm25", "threshold": 0.3, "evict_every": 1, "max_step_skills": 2,
                "protect_recent": 0, "writer": {"kind": "template"}},
}


def training_config(tmp_path, algorithm):
    return corridor_config(tmp_path, algorithm, max_steps=2, iterations=2,
                           policy={"action_mode": "generate", "max_new_tokens": 8},
                           train={"groups_per_iter": 2, "group_size": 2, "minibatch_size": 8, "micro_batch_size": 8,
                                  "checkpoint_every": 1, "lr": 1e-4},
                           eval={"every": 1, "at_start": False, "num_tasks": 1, "concurrency": 1,
                                 "keep_transcripts": "eval+sample", "train_transcript_fraction": 1.0})


@pytest.mark.parametrize("name", ["skillrl", "d2skill"])
def test_skill_bank_persists_across_checkpoint_and_resume(tmp_path, monkeypatch, name):
    import siri_bench.training.checkpoint as checkpoint

    whole = execute_run(expand_runs(training_config(tmp_path / "whole", SKILL_WRITERS[name]))[0])
    state = {c.iteration: torch.load(c.path / "algorithm.pt", weights_only=False) for c in whole.checkpoints()}
    assert sorted(state) == [1, 2]
    assert len(whole.read_metrics()) == 2
    bank_size = state[2]["bank"]
    assert bank_size, "the bank is part of the checkpoint"
    events = pd.read_json(whole.skills_path, lines=True)
    assert (events["event"] == "created").any()
    # skills are in the prompts at training (iteration 2: the bank is not empty any more) and at inference
    train = pd.concat([pd.read_parquet(f) for f in sorted((whole.path / "train_steps").glob("iter_000002*.parquet"))])
    with_skills = train["prompt_additions"].map(len) > 0
    assert with_skills.any()
    if name == "d2skill":       # only the skill half of each group: members m00 (of 2)
        assert set(train.loc[with_skills, "episode_id"].str[-3:]) == {"m00"}
        assert not with_skills[train["episode_id"].str.endswith("m01")].any()
    eval_steps = whole.read_steps()
    assert (eval_steps["prompt_additions"].map(len) > 0).all()
    # `siri-bench evaluate` of the last checkpoint starts from its bank: the same prompts as the run's last round
    separate = RunDir(evaluate_run_dir(whole.path, out=tmp_path / "separate")).read_steps()
    last = eval_steps[eval_steps["episode_id"].str.startswith("eval-i000002")]
    key = ["episode_id", "step"]
    assert len(separate) == len(last) > 0
    assert list(separate.sort_values(key)["prompt_additions"].map(list)) == \
        list(last.sort_values(key)["prompt_additions"].map(list))

    real = checkpoint.save_checkpoint

    def fail_at_2(run_dir, iteration, **kwargs):
        if iteration == 2:
            raise Interrupt
        return real(run_dir, iteration, **kwargs)

    cfg = training_config(tmp_path / "resumed", SKILL_WRITERS[name])
    monkeypatch.setattr(checkpoint, "save_checkpoint", fail_at_2)
    with pytest.raises(Interrupt):
        execute_run(expand_runs(cfg)[0])
    monkeypatch.setattr(checkpoint, "save_checkpoint", real)
    resumed = execute_run(expand_runs(cfg)[0])
    final = torch.load(resumed.latest_checkpoint().path / "algorithm.pt", weights_only=False)
    assert final["bank"] == state[2]["bank"]
    assert final["episodes_seen"] == state[2]["episodes_seen"]
    cols = ["episode_id", "position", "steps", "prompt_tokens"]
    pd.testing.assert_frame_equal(resumed.read_episodes()[cols].sort_values("episode_id").reset_index(drop=True),
                                  whole.read_episodes()[cols].sort_values("episode_id").reset_index(drop=True))


def test_d2skill_bad_top_2k_and_changed_similarity_are_clear_errors():
    from algorithms.retrieval import BM25Similarity
    from siri_bench.config import build_config
    from siri_bench.errors import ConfigError, RunStateError

    with pytest.raises(ConfigError, match=r"top_2k \(2\) < top_k_task / top_k_step \(3\)"):
        build_config({"name": "x", "env": {"id": "siri_bench/ALFWorld-v0"}, "algorithm": {"name": "d2skill", "top_2k": 2}})
    with pytest.raises(RunStateError, match="skill bank was built with angles similarity"):
        D2SkillBank(BM25Similarity()).load_state_dict(d2_bank().state_dict())


def test_d2skill_skill_without_key_is_retrieved_by_its_text():
    from algorithms.d2skill_bank import retrieval_text

    loaded = Skill("", "Open the fridge", "Open it before looking inside.", when_to_apply="A closed fridge")
    assert retrieval_text(loaded) == "Open the fridge. Open it before looking inside.. A closed fridge"
    assert retrieval_text(Skill("", "t", "p", key="the task")) == "the task"


class RecordingWriter(TemplateWriter):
    def __init__(self, templates):
        super().__init__(templates)
        self.requests = []

    def write(self, requests):
        self.requests += list(requests)
        return super().write(requests)


def validation_episode(k, task_type, won):
    return SimpleNamespace(episode_id=f"v{k}", task_type=task_type, won=won, task=f"{task_type} task number {k}",
                           steps=[], num_steps=0, status="success" if won else "step_limit")


def test_skillrl_adds_skills_from_failures_of_weak_types_to_training_prompts_only():
    from algorithms.skillrl import SkillRL, SkillRLConfig
    from siri_bench.seeding import TaskDraw

    algo = SkillRL(SkillRLConfig(update_every=5, validation_tasks=5, update_threshold=0.4, max_new_skills=1))
    algo.built = True
    algo.writer = RecordingWriter({"skill_update": '[{{"title": "Check the goal after {n_failures} failures", '
                                                   '"principle": "Reread the task before acting again."}}]'})
    # heat: 1 of 2 won (0.5, not weak); clean: 1 of 3 won (0.33 < 0.4, weak): its 2 failures go to the writer
    episodes = [validation_episode(0, "heat", True), validation_episode(1, "heat", False),
                validation_episode(2, "clean", True), validation_episode(3, "clean", False),
                validation_episode(4, "clean", False)]
    planned = []
    state = SimpleNamespace(iteration=5, run_seed=0, train_task_ids=["a", "b"],
                            task_stream=SimpleNamespace(draw=lambda ids, n: [TaskDraw(ids[i % 2], i) for i in range(n)]),
                            rollout=lambda specs: planned.extend(specs) or SimpleNamespace(episodes=episodes))
    metrics = algo.on_iteration_end(state)
    assert len(planned) == 5 and {s.phase for s in planned} == {"validation"}
    assert metrics["skillrl/validation_success"] == pytest.approx(2 / 5)
    assert metrics["skillrl/weak_types"] == 1 and metrics["skillrl/new_skills"] == 1
    (request,) = algo.writer.requests
    assert "clean task number 3" in request.prompt and "clean task number 4" in request.prompt
    assert "heat task number 1" not in request.prompt and request.fields["n_failures"] == "2"
    (evolved,) = algo.bank.evolved
    assert (evolved.id, evolved.title, evolved.created_at) == ("dyn_001", "Check the goal after 2 failures", 5)
    # in training prompts, not in evaluation prompts (evolved_in_eval: false)
    ctx = dict(env_id="e", task_id="a", task_type="clean", task="clean task", step=0, observation="", admissible_actions=[])
    assert "Check the goal" in algo.prompt_additions(PromptContext(**ctx, phase="train", episode_id="t"))[0]
    assert not algo.prompt_additions(PromptContext(**ctx, phase="eval", episode_id="e"))
    # no update between validations
    state.iteration = 6
    assert "skillrl/weak_types" not in algo.on_iteration_end(state) and len(algo.writer.requests) == 1


def test_skillrl_embedding_retrieval_takes_the_most_similar_skills():
    from algorithms.retrieval import BM25Similarity

    bank = SkillRLBank()
    bank.add([Skill("", "Heat with the microwave", "Put the food in the microwave to heat it.", kind="general"),
              Skill("", "Clean in the sink", "Rinse the object in the sinkbasin to clean it.", kind="general"),
              Skill("", "Cool in the fridge", "Put the object in the fridge to cool it.", kind="task",
                    category="cool")])
    sel = bank.retrieve_embedding("heat some egg and put it in the microwave", BM25Similarity(), top_k=1,
                                  task_top_k=1)
    assert [s.title for s in sel.general] == ["Heat with the microwave"]
    assert [s.title for s in sel.task] == ["Cool in the fridge"]       # task skills across all types
