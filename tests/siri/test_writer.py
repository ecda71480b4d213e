"""Skill writers: the parser of model answers, the step budget, the template writer's shared
action pattern, and the self/external writers on fake back ends."""

from __future__ import annotations

import json

import httpx
import pytest

from algorithms.siri.buffer import SuccessEpisode
from algorithms.siri.config import SIRIConfig
from algorithms.siri.writer import (
    WRITER_PROMPT_ID,
    ModelWriter,
    TemplateWriter,
    abstract_action,
    action_shape,
    build_writer,
    fit_steps,
    parse_skill,
    template_steps,
    word_count,
)
from siri_bench.config import OpenAIConfig
from siri_bench.policy.base import Completion
from siri_bench.policy.openai import OpenAIPolicy


def ep(task: str, actions: list[str], i: int = 0) -> SuccessEpisode:
    return SuccessEpisode(f"e{i}", f"t{i}", "pick_clean", task, tuple(actions), "obs", 0, 1.0)


# ----------------------------------------------------------------------------------------------
# parser
# ----------------------------------------------------------------------------------------------
def test_parse_plain_format():
    text = "Title: Clean then place\nWhen: a task asks for a clean object\nSteps:\n1. find the object\n2. take it\n3. clean it at the sinkbasin"
    draft, reason = parse_skill(text, max_tokens=128)
    assert reason == "" and draft.title == "Clean then place" and draft.when == "a task asks for a clean object"
    assert draft.steps == ("find the object", "take it", "clean it at the sinkbasin")


def test_parse_markdown_think_and_bullets():
    text = ("<think>I should summarise.</think>\n**Title:** Heat it\n**When to use:** heating tasks\n\n"
            "## Steps:\n- go to the microwave\n* heat the object\n• put it on the target\n")
    draft, _ = parse_skill(text, max_tokens=128)
    assert draft.title == "Heat it" and draft.when == "heating tasks"
    assert draft.steps == ("go to the microwave", "heat the object", "put it on the target")


def test_parse_inline_steps_step_numbering_and_missing_fields():
    draft, _ = parse_skill("Steps: 1. look around 2. take the key 3. open the door", max_tokens=128, category="door")
    assert draft.steps == ("look around", "take the key", "open the door")
    assert draft.title == "door" and draft.when == "tasks of type door"
    draft, _ = parse_skill("Here is a plan.\nStep 1: go east\nStep 2: take key\nStep 2: take key\nthanks",
                           max_tokens=128)
    assert draft.steps == ("go east", "take key")          # repeated step dropped, prose ignored


def test_parse_failures_are_reported():
    assert parse_skill("", max_tokens=64) == (None, "empty")
    assert parse_skill("I cannot help with that.", max_tokens=64) == (None, "no steps")
    # the format's own placeholders are not steps
    assert parse_skill("Title: <a short name>\nSteps:\n1. <first step>\n2. <next step>", max_tokens=64) == \
        (None, "no steps")
    assert parse_skill("<think>never closed ... 1. a step inside thinking", max_tokens=64) == (None, "no steps")


def test_fit_steps_budget_by_hand():
    steps = ["a b c", "d e", "f g h i"]
    # joined with newlines: 3 words, then 5, then 9
    assert fit_steps(steps, 5, word_count) == ["a b c", "d e"]
    assert fit_steps(steps, 9, word_count) == steps
    assert fit_steps(steps, 2, word_count) == ["a b"]        # the first step alone is cut
    draft, _ = parse_skill("Steps:\n1. aa bb cc\n2. dd ee\n3. ff gg hh ii", max_tokens=5)
    assert draft.steps == ("aa bb cc", "dd ee")


# ----------------------------------------------------------------------------------------------
# template writer
# ----------------------------------------------------------------------------------------------
def test_abstraction_and_shapes():
    assert abstract_action("take Mug 2 from desk 10") == ["take", "mug", "N", "from", "desk", "N"]
    assert action_shape(abstract_action("take mug 2 from desk 1")) == "take <x> from <x>"
    assert abstract_action("click[Buy  Now]") == ["click", "[", "buy now", "]"]
    assert action_shape(abstract_action("click[Buy Now]")) == "click []"
    assert action_shape(abstract_action("look")) == "look"


def test_template_steps_by_hand():
    episodes = [
        ep("put a clean mug in cabinet.", ["go to desk 1", "take mug 2 from desk 1", "look", "go to sinkbasin 1",
                                           "clean mug 2 with sinkbasin 1", "go to cabinet 3", "move mug 2 to cabinet 3"]),
        ep("clean some apple and put it in fridge.", ["go to shelf 2", "take apple 1 from shelf 2", "go to sinkbasin 1",
                                                      "clean apple 1 with sinkbasin 1", "go to fridge 1",
                                                      "move apple 1 to fridge 1"], 1),
    ]
    assert template_steps(episodes) == [
        "go to <any> N",                        # desk vs shelf: not in the tasks
        "take <task item 1> N from <any> N",    # mug / apple: the first object each task names
        "go to sinkbasin N",
        "clean <task item 1> N with sinkbasin N",
        "go to <task item 2> N",                # cabinet / fridge: the second
        "move <task item 1> N to <task item 2> N",
    ]


def test_template_steps_webshop_brackets():
    episodes = [ep("find red shoes", ["search[red shoes]", "click[b0abc]", "click[buy now]"]),
                ep("find a blue hat", ["search[blue hat]", "click[b0xyz]", "click[large]", "click[buy now]"], 1)]
    assert template_steps(episodes) == ["search[<task words>]", "click[<any>]", "click[buy now]"]


def test_template_writer_drops_when_nothing_is_shared():
    writer = TemplateWriter(max_tokens=64)
    (ok,) = writer.write([("clean", [ep("t", ["go to desk 1", "look"]), ep("u", ["go to bed 2", "look"], 1)], 0)])
    assert ok.draft.steps == ("go to <any> N", "look") and ok.reason == "" and "clean" in ok.draft.title
    (bad,) = writer.write([("clean", [ep("t", ["look"]), ep("u", ["inventory"], 1)], 0)])
    assert bad.draft is None and bad.reason == "no shared pattern"


# ----------------------------------------------------------------------------------------------
# model writers
# ----------------------------------------------------------------------------------------------
class FakePolicy:
    """Answers every request with the next canned text; records requests and rollout calls."""

    def __init__(self, answers: list[str], tokenizer=None):
        self.answers = list(answers)
        self.tokenizer = tokenizer
        self.requests, self.params, self.calls = [], [], []

    def before_rollout(self):
        self.calls.append("before")

    def after_rollout(self):
        self.calls.append("after")

    def generate(self, requests, params):
        self.requests += list(requests)
        self.params.append(params)
        self.calls.append("generate")
        return [Completion([], [], self.answers.pop(0)) for _ in requests]


def test_self_writer_prompt_parse_and_drop():
    policy = FakePolicy(["Title: Clean\nWhen: cleaning\nSteps:\n1. take it\n2. clean it", "no idea"])
    writer = ModelWriter(policy, name="self", temperature=0.0, max_new_tokens=99, max_actions=2, max_tokens=64,
                         count=word_count)
    episodes = [ep("put a clean mug in cabinet.", ["go to desk 1", "take mug 2 from desk 1", "look"])]
    good, bad = writer.write([("pick_clean", episodes, 11), ("heat", episodes, 12)])
    assert good.draft.steps == ("take it", "clean it") and good.reason == ""
    assert bad.draft is None and bad.reason == "no steps" and bad.raw == "no idea"
    assert policy.calls == ["before", "generate", "after"]
    assert policy.params[0].temperature == 0.0 and policy.params[0].max_new_tokens == 99
    prompt = policy.requests[0].messages[0]["content"]
    assert "Task: put a clean mug in cabinet." in prompt and "1. go to desk 1" in prompt
    assert "3. look" not in prompt and "(1 more actions)" in prompt          # max_actions = 2
    assert "Title:" in prompt and "Steps:" in prompt and "(pick_clean)" in prompt
    assert [r.seed for r in policy.requests] == [11, 12]
    assert WRITER_PROMPT_ID == "siri.skill_writer/v1"


def test_self_writer_encodes_the_chat_with_the_policy_tokenizer():
    from siri_bench.models import build_tiny_tokenizer

    tok = build_tiny_tokenizer()
    policy = FakePolicy(["Steps:\n1. look"], tokenizer=tok)
    writer = ModelWriter(policy, name="self", max_tokens=64)
    writer.write([("c", [ep("t", ["look"])], 0)])
    request = policy.requests[0]
    assert tok.decode(request.prompt_ids).startswith("<|im_start|>user")
    assert "Steps:" in tok.decode(request.prompt_ids)


def test_external_writer_through_the_openai_back_end():
    bodies = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        bodies.append(body)
        text = "**Title:** Cool it\n**When:** cooling tasks\n**Steps:**\n1. open the fridge\n2. cool the object"
        return httpx.Response(200, json={"choices": [{"message": {"content": text}, "finish_reason": "stop"}]})

    cfg = OpenAIConfig(base_url="http://writer.test/v1", model="gemini-flash", check_seed=False)
    client = httpx.Client(base_url=cfg.base_url, transport=httpx.MockTransport(handler))
    writer = ModelWriter(OpenAIPolicy(cfg, client=client), name="external", max_tokens=64)
    (result,) = writer.write([("cool", [ep("put a cool apple in fridge.", ["go to fridge 1"])], 3)])
    assert result.draft.title == "Cool it" and result.draft.steps == ("open the fridge", "cool the object")
    assert bodies[0]["model"] == "gemini-flash" and bodies[0]["temperature"] == 0.0
    assert "put a cool apple in fridge." in bodies[0]["messages"][0]["content"]


def test_external_writer_error_is_a_drop():
    def handler(request):
        return httpx.Response(404, text="no such model")

    cfg = OpenAIConfig(base_url="http://writer.test/v1", check_seed=False, max_retries=0)
    client = httpx.Client(base_url=cfg.base_url, transport=httpx.MockTransport(handler))
    (result,) = ModelWriter(OpenAIPolicy(cfg, client=client), name="external").write([("c", [ep("t", ["look"])], 0)])
    assert result.draft is None and result.reason.startswith("writer error")


def test_build_writer_picks_by_config():
    policy = FakePolicy([])
    assert isinstance(build_writer(SIRIConfig(skill_writer="template"), policy), TemplateWriter)
    self_writer = build_writer(SIRIConfig(skill_writer="self", writer_temperature=0.2), policy)
    assert isinstance(self_writer, ModelWriter) and self_writer.policy is policy and self_writer.temperature == 0.2
    ext = build_writer(SIRIConfig(skill_writer="external", external={"base_url": "http://x.test/v1", "model": "m"}),
                       policy)
    assert isinstance(ext.policy, OpenAIPolicy) and ext.policy.cfg.model == "m" and ext.name == "external"
    ext.policy.close()


@pytest.mark.parametrize("bad", [{"retire_threshold": 0.2, "promote_threshold": 0.1}, {"mine_k": 65},
                                 {"weighting": "tokens"}, {"base": "ppo"}, {"skill_writer": "gpt"}])
def test_config_rejects_bad_values(bad):
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        SIRIConfig(**bad)


# what SmolLM2-135M-Instruct answered to the writer prompt (greedy, on built-in ALFWorld successes)
SMOLLM2_ANSWERS = [
    "1. [1]\n2. [2]\n3. [3]\n4. [4]\n\nThe skill is to examine the alarmclock with the desklamp.\n\n"
    "The steps to solve this skill are:\n1. [1]\n2. [2]\n",
    "1. [insert step 1]\n2. [insert step 2]\n3. [insert step 3]\n\nThe skill is to use a specific object to put a "
    "creditcard on a toilet.\n",
    "1. [insert step 1]\n2. [insert step 2]\n\nThe skill is to find two cellphone and put them in drawer.\n\n"
    "Steps:\n1. [insert step 1]\n2. [insert step 2]\n\nThe skill is to find two cellphone and put them in shelf.\n\n"
    "Steps:\n1. [insert step 1]\n",
]


@pytest.mark.parametrize("answer", SMOLLM2_ANSWERS)
def test_placeholder_answers_of_a_small_model_are_dropped(answer):
    assert parse_skill(answer, max_tokens=128) == (None, "no steps")


def test_prose_after_the_list_ends_it():
    draft, _ = parse_skill("Steps:\n1. go to the fridge\n2. cool the apple\n\nThis skill helps a lot.\n3. extra",
                           max_tokens=128)
    assert draft.steps == ("go to the fridge", "cool the apple")
    draft, _ = parse_skill("Steps:\ngo to the fridge\ncool the apple", max_tokens=128)
    assert draft.steps == ("go to the fridge", "cool the apple")
