"""Golden trajectories: the success definitions of both envs, pinned through the rollout engine.

A scripted policy plays a fixed action list (ALFWorld walkthroughs, WebShop oracle purchases and
deliberate mistakes); the episode's status, ``won`` and score must follow the failure taxonomy:
``success`` only on the engine's own win, never on a truncated episode, never on a wrong purchase.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import pytest

from envs.alfworld.data import TASK_TYPES, load_split
from envs.webshop.env import WebShopEnv, expert_plan
from envs.workers import EnvPool
from siri_bench.policy import Completion, GenerationRequest, Policy, SamplingParams
from siri_bench.records import EpisodeRecord
from siri_bench.rollout import EpisodeSpec, RolloutEngine, RolloutSettings
from siri_bench.seeding import EpisodeSeeds
from siri_bench.store import EPISODE_STATUSES

ALFWORLD = "siri_bench/ALFWorld-v0"
WEBSHOP = "siri_bench/WebShop-v0"


class PlanPolicy(Policy):
    """Answers each step with the next action of a fixed plan (then ``look``), in the expected format."""

    backend = "scripted"

    def __init__(self, plan: Sequence[str]):
        self.plan = deque(plan)

    def generate(self, requests: Sequence[GenerationRequest], params: SamplingParams) -> list[Completion]:
        assert len(requests) == 1, "one episode at a time"
        action = self.plan.popleft() if self.plan else "look"
        return [Completion([], [], f"<think>following the plan</think><action>{action}</action>")]


def play(pool: EnvPool, env_id: str, task_id: str, plan: Sequence[str], max_steps: int | None = None) -> EpisodeRecord:
    settings = RolloutSettings(env_id=env_id, max_steps=max_steps)
    spec = EpisodeSpec("golden", "golden", task_id, EpisodeSeeds(1, 2, 3), phase="eval")
    episode = RolloutEngine(pool, PlanPolicy(plan), settings).run([spec]).episodes[0]
    assert episode.status in EPISODE_STATUSES and episode.won == (episode.status == "success")
    return episode


def alfworld_games(split: str, data_dir=None, per_type: int = 1):
    games = load_split(split, data_dir).games
    return [g for t in TASK_TYPES for g in [g for g in games if g.task_type == t][:per_type]]


def check_walkthroughs(games, env_kwargs) -> int:
    """Play every game's walkthrough through the rollout engine; returns how many won (all, or it fails)."""
    with EnvPool(ALFWORLD, env_kwargs, 1) as pool:
        for game in games:
            plan = list(game.walkthrough)
            won = play(pool, ALFWORLD, game.task_id, plan)
            assert won.status == "success" and won.won and won.score == 1.0, game.task_id
            assert won.num_steps == len(plan) and won.return_ == 1.0 and won.steps[-1].terminated
            assert [s.action for s in won.steps] == plan and all(s.valid for s in won.steps)
    return len(games)


def test_alfworld_walkthroughs_win_on_the_builtin_split():
    games = alfworld_games("builtin_eval")                 # one game per task type
    assert {g.task_type for g in games} == set(TASK_TYPES)
    assert check_walkthroughs(games, {"split": "builtin_eval"}) == len(TASK_TYPES)


def test_real_alfworld_walkthroughs_win(alfworld_data_dir):
    games = alfworld_games("valid_unseen", alfworld_data_dir)
    assert {g.task_type for g in games} == set(TASK_TYPES)
    assert check_walkthroughs(games, {"split": "valid_unseen", "data_dir": str(alfworld_data_dir)}) == len(games)


def test_alfworld_truncation_is_never_a_success():
    game = alfworld_games("builtin_eval")[0]
    plan = list(game.walkthrough)
    n = len(plan)
    with EnvPool(ALFWORLD, {"split": "builtin_eval", "max_steps": n - 1}, 1) as pool:
        cut = play(pool, ALFWORLD, game.task_id, plan)
        assert cut.status == "step_limit" and not cut.won and cut.score == 0.0 and cut.return_ == 0.0
        assert cut.num_steps == n - 1 and cut.steps[-1].truncated and not cut.steps[-1].terminated
        idle = play(pool, ALFWORLD, game.task_id, ["look"] * n)
        assert idle.status == "step_limit" and not idle.won
    with EnvPool(ALFWORLD, {"split": "builtin_eval", "max_steps": n}, 1) as pool:
        last = play(pool, ALFWORLD, game.task_id, plan)  # the win on the last allowed step counts
        assert last.status == "success" and last.won and last.steps[-1].terminated
    with EnvPool(ALFWORLD, {"split": "builtin_eval"}, 1) as pool:  # the harness's own step cap
        capped = play(pool, ALFWORLD, game.task_id, plan, max_steps=n - 1)
        assert capped.status == "step_limit" and not capped.won


@pytest.fixture(scope="module")
def shop_env() -> WebShopEnv:
    return WebShopEnv(split="builtin_test")


def test_webshop_oracle_purchases_win(shop_env):
    outcomes = []
    with EnvPool(WEBSHOP, {"split": "builtin_test"}, 1) as pool:
        for task_id in shop_env.task_ids[:6]:
            goal = shop_env.shop.goals[int(task_id)]
            bought = play(pool, WEBSHOP, task_id, expert_plan(shop_env.shop, goal))
            assert bought.steps[-1].terminated and bought.steps[-1].action == "click[buy now]"
            # success exactly when the purchase scores 1.0 (WebShop's own definition of a win)
            assert bought.won == (bought.score == 1.0) and bought.return_ == bought.score
            assert bought.status == ("success" if bought.score == 1.0 else "failure")
            outcomes.append(bought.status)
    assert outcomes.count("success") >= 4


def test_webshop_wrong_purchase_and_truncation_do_not_win(shop_env):
    task_id = shop_env.task_ids[0]
    goal = shop_env.shop.goals[int(task_id)]
    plan = expert_plan(shop_env.shop, goal)
    query = plan[0][len("search["):-1]
    others = [p["asin"] for p in shop_env.shop.search(query.split(" ")) if p["asin"] != goal["asin"]]
    wrong = [plan[0], f"click[{others[0].lower()}]", "click[buy now]"]
    with EnvPool(WEBSHOP, {"split": "builtin_test"}, 1) as pool:
        bad = play(pool, WEBSHOP, task_id, wrong)
        assert bad.status == "failure" and not bad.won and bad.score < 1.0 and bad.steps[-1].terminated
    with EnvPool(WEBSHOP, {"split": "builtin_test", "max_steps": len(plan) - 1}, 1) as pool:
        cut = play(pool, WEBSHOP, task_id, plan)
        assert cut.status == "step_limit" and not cut.won and cut.score == 0.0 and cut.steps[-1].truncated
