"""``siri_bench/WebShop-v0``: WebShop's text environment as a Gymnasium env."""

from __future__ import annotations

import logging
import random
import re
from typing import Any

import gymnasium as gym

from envs.webshop.config import DEFAULT_MAX_STEPS, DEFAULT_PRICE_SEED, SPLITS
from envs.webshop.data import CatalogFiles, resolve_catalog
from envs.webshop.pages import text_observation
from envs.webshop.reward import FUZZY_THRESHOLD, fuzzy_score
from envs.webshop.session import PRODUCT_WINDOW, ShopSession
from envs.webshop.shop import Shop, get_shop
from siri_bench.errors import ConfigError, DataError

log = logging.getLogger(__name__)


class AnyText(gym.spaces.Text):
    """A text space holding any Unicode string up to ``max_length`` (samples use printable ASCII)."""

    def __init__(self, max_length: int, *, min_length: int = 0, seed: int | None = None):
        super().__init__(max_length, min_length=min_length,
                         charset="".join(chr(c) for c in range(32, 127)), seed=seed)

    def contains(self, x: Any) -> bool:
        return isinstance(x, str) and self.min_length <= len(x) <= self.max_length


class WebShopEnv(gym.Env):
    """WebShop (Yao et al., 2022) in the original's ``text`` observation mode.

    **Catalog.** With real data (``$WEBSHOP_DATA``, ``data_dir`` or a folder registered with
    ``siri-bench data webshop``) the 1000-product catalog with its 6,910 synthetic goals is used
    (human goals with ``goals='human'``). **When no real data is found, the built-in synthetic
    catalog shipped in the package is the default** (a warning says so); ``catalog='real'`` makes
    missing data an error instead. Goals are in the original's fixed order (``random.seed(233)``).

    **Splits.** ``test``: goals 0-499 (0-99 on the built-in catalog); ``train``: the rest; ``all``;
    ``builtin_test`` / ``builtin_train`` / ``builtin_all`` always use the built-in catalog.
    ``task_types`` filters by product category (beauty, electronics, fashion, garden, grocery).

    **Observation.** The visible texts of the page joined with ``" [SEP] "``, instruction included,
    exactly as the original's ``observation_mode='text'``.

    **Actions.** ``search[query]`` (allowed on every page, as upstream) and ``click[label]`` for a
    label of ``info['available_actions']['clickables']`` other than ``search``. Anything else
    (``click[nonexistent]``, ``search[]``, free text) leaves the state unchanged and sets
    ``info['valid'] = False``; it still counts as a step.

    **Reward, episode end.** The purchase score in [0, 1] at ``click[buy now]`` (which terminates),
    else 0. ``truncated`` when ``max_steps`` (default 15) steps pass without a purchase.

    **Tasks and data.** ``task_uids`` are the content ids of ``task_ids`` (what task panels list,
    :mod:`envs.panels`); ``data_fingerprint()`` hashes the catalog files, the goal list and the
    split's tasks for the run's ``fingerprint.json``.

    **Info keys.** ``admissible_actions`` (concrete valid actions; ``search[<query>]`` stands for any
    search), ``available_actions`` (the original's ``{'has_search_bar', 'clickables'}``), ``task_id``
    (the goal index, as str), ``task_uid`` (content hash), ``task_type`` (product category), ``task``
    (the instruction), ``won`` (score == 1.0), ``score``, ``step``, ``valid``, ``anchor_state`` (the
    page state: page, query, results page, product, chosen options), ``page``; at the purchase also
    ``reward_info`` (the reward's parts) and ``purchased`` (ASIN and options); ``truncated_by`` when
    truncated.
    """

    metadata = {"render_modes": ["ansi", "human"], "render_fps": 4}

    def __init__(self, split: str = "test", task_types: list[str] | None = None, max_steps: int | None = None,
                 catalog: str = "auto", data_dir: str | None = None, goals: str = "synthetic",
                 price_seed: int = DEFAULT_PRICE_SEED, show_attrs: bool = False, render_mode: str | None = None):
        if split not in SPLITS:
            raise ConfigError(f"unknown WebShop split {split!r}; known: {', '.join(SPLITS)}")
        if catalog not in ("auto", "real", "builtin"):
            raise ConfigError(f"unknown WebShop catalog {catalog!r}; use 'auto', 'real' or 'builtin'")
        if goals not in ("synthetic", "human"):
            raise ConfigError(f"unknown WebShop goal kind {goals!r}; use 'synthetic' or 'human'")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ConfigError(f"render_mode {render_mode!r} is not one of {self.metadata['render_modes']}")
        files = resolve_catalog("builtin" if split.startswith("builtin_") else catalog, data_dir)
        if files.name == "builtin" and not split.startswith("builtin_") and catalog == "auto":
            log.warning("no WebShop data folder found (set WEBSHOP_DATA or run `siri-bench data webshop`): "
                        "using the built-in synthetic catalog")
        self.files: CatalogFiles = files
        self.shop: Shop = get_shop(files, goals, price_seed)  # type: ignore[arg-type]
        self.split = split
        self.max_steps = DEFAULT_MAX_STEPS if max_steps is None else int(max_steps)
        if self.max_steps < 1:
            raise ConfigError(f"max_steps must be >= 1, got {max_steps}")
        self.show_attrs = show_attrs
        self.render_mode = render_mode
        self.task_ids: list[str] = self._split_task_ids(split.removeprefix("builtin_"), task_types)
        self.observation_space = AnyText(max_length=1_000_000)
        self.action_space = AnyText(max_length=10_000)
        self.session: ShopSession | None = None
        self.goal_index: int | None = None
        self._steps = 0
        self._last_obs = ""
        self._last_info: dict[str, Any] = {}

    # -- tasks ---------------------------------------------------------------------------------
    def _split_task_ids(self, split: str, task_types: list[str] | None) -> list[str]:
        n_test = self.shop.test_size
        indices = {"test": range(0, n_test), "train": range(n_test, len(self.shop.goals)),
                   "all": range(len(self.shop.goals))}[split]
        if task_types:
            known = sorted({g["category"] for g in self.shop.goals})
            unknown = sorted(set(task_types) - set(known))
            if unknown:
                raise ConfigError(f"unknown WebShop task types {unknown}; known: {', '.join(known)}")
            indices = [i for i in indices if self.shop.goals[i]["category"] in task_types]
        ids = [str(i) for i in indices]
        if not ids:
            raise DataError(f"WebShop split {self.split!r} has no goals on the {self.shop.catalog} catalog "
                            f"({len(self.shop.goals)} {self.shop.goal_kind} goals in all)")
        return ids

    @property
    def task_uids(self) -> list[str]:
        """Content ids of :attr:`task_ids`, same order (what task panels list)."""
        return [self.shop.goal_uids[int(i)] for i in self.task_ids]

    def data_fingerprint(self) -> dict[str, Any]:
        """Hashes of the catalog and goals this env uses (see :meth:`envs.webshop.shop.Shop.fingerprint`)
        and of its split's task list, recorded in each run's fingerprint."""
        from envs.webshop.shop import ids_sha256

        return {"webshop": {**self.shop.fingerprint(), "split": self.split, "tasks": len(self.task_ids),
                            "tasks_sha256": ids_sha256(self.task_uids)}}

    def task_info(self, task_id: str) -> dict[str, Any]:
        """What a task is: type, instruction, target product, attributes, options, price cap, uid."""
        index = self._parse_task_id(task_id)
        goal = self.shop.goals[index]
        return {"task_id": str(index), "task_uid": self.shop.goal_uids[index], "task_type": goal["category"],
                "task": goal["instruction_text"], "asin": goal["asin"], "attributes": list(goal["attributes"]),
                "goal_options": goal["goal_options"], "price_upper": goal["price_upper"], "query": goal["query"],
                "product_category": goal["product_category"], "catalog": self.shop.catalog}

    def _parse_task_id(self, task_id: Any) -> int:
        try:
            index = int(str(task_id))
        except ValueError:
            raise ConfigError(f"WebShop task_id must be a goal index, got {task_id!r}") from None
        if not 0 <= index < len(self.shop.goals):
            raise ConfigError(f"WebShop task_id {task_id!r} is out of range (0..{len(self.shop.goals) - 1})")
        return index

    # -- gymnasium API -------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[str, dict]:
        index = self._choose_goal(seed, options)
        search_seed = int(self.np_random.integers(2**31))
        self.session = ShopSession(self.shop, index, show_attrs=self.show_attrs, rng=random.Random(search_seed))
        self._steps = 0
        obs = self._observe()
        info = self._info(valid=True, score=0.0)
        self._last_obs, self._last_info = obs, info
        return obs, info

    def _choose_goal(self, seed: int | None, options: dict | None) -> int:
        """Seed gymnasium's RNG and pick the goal: ``options['task_id']``, else drawn from the split by seed."""
        gym.Env.reset(self, seed=seed)
        if options and options.get("task_id") is not None:
            index = self._parse_task_id(options["task_id"])
        else:
            index = int(self.task_ids[int(self.np_random.integers(len(self.task_ids)))])
        self.goal_index = index
        return index

    def step(self, action: str) -> tuple[str, float, bool, bool, dict]:
        if self.session is None:
            raise RuntimeError("call reset() before step()")
        if not isinstance(action, str):
            action = "" if action is None else str(action)
        result = self.session.step(action)
        self._steps += 1
        obs = self._observe()
        score = float(result.reward) if result.done else 0.0
        info = self._info(valid=result.valid, score=score)
        truncated = not result.done and self._steps >= self.max_steps
        if truncated:
            info["truncated_by"] = "max_steps"
        if result.done:
            info["reward_info"] = dict(self.session.reward_info or {})
            info["purchased"] = {"asin": self.session.state.asin, "options": dict(self.session.state.options)}
        self._last_obs, self._last_info = obs, info
        if self.render_mode == "human":
            print(obs)
        return obs, score, result.done, truncated, info

    def render(self) -> str | None:
        if self.render_mode == "ansi":
            return self._last_obs
        if self.render_mode == "human":
            print(self._last_obs)
        return None

    # -- helpers -------------------------------------------------------------------------------
    def _observe(self) -> str:
        return text_observation(self.session)

    def _info(self, *, valid: bool, score: float) -> dict[str, Any]:
        session = self.session
        return self._make_info(valid=valid, score=score, admissible=session.admissible_actions(),
                               available=session.available_actions(), anchor_state=session.state.key(),
                               page=session.state.page)

    def _make_info(self, *, valid: bool, score: float, admissible: list[str], available: dict,
                   anchor_state: str, page: str) -> dict[str, Any]:
        goal = self.shop.goals[self.goal_index]
        return {
            "admissible_actions": admissible,
            "available_actions": available,
            "task_id": str(self.goal_index),
            "task_uid": self.shop.goal_uids[self.goal_index],
            "task_type": goal["category"],
            "task": goal["instruction_text"],
            "won": score == 1.0,
            "score": score,
            "step": self._steps,
            "valid": valid,
            "anchor_state": anchor_state,
            "page": page,
        }

    def expert_plan(self) -> list[str]:
        """An oracle action sequence for the current goal, from the search page.

        Search with the goal's product query (falling back to the product title when the target is
        not in those results), go to the target's results page, click it, click the goal's option
        values, Buy Now. It buys the right product with the right options; its score is 1.0 except
        where the original's reward quirks say otherwise (see :mod:`envs.webshop.reward`).
        """
        if self.goal_index is None:
            raise RuntimeError("call reset() before expert_plan()")
        return expert_plan(self.shop, self.shop.goals[self.goal_index])


def expert_plan(shop: Shop, goal: dict) -> list[str]:
    """The oracle path for ``goal`` in ``shop`` (see :meth:`WebShopEnv.expert_plan`)."""
    asin = goal["asin"]
    product = shop.product_by_asin[asin]
    plan: list[str] = []
    for query in (goal["query"], product["Title"].lower()):
        query = " ".join(re.sub(r"[\[\]]", " ", query).split())  # brackets would break the action syntax
        if not query:
            continue
        found = [p["asin"] for p in shop.search(query.split(" "))]
        if asin in found:
            page = found.index(asin) // PRODUCT_WINDOW + 1
            plan = [f"search[{query}]"] + ["click[next >]"] * (page - 1)
            break
    if not plan:
        raise DataError(f"expert plan: product {asin} is not found by searching its query or its title")
    plan.append(f"click[{asin.lower()}]")
    for value in _option_values_to_click(product, goal["goal_options"]):
        plan.append(f"click[{value}]")
    plan.append("click[buy now]")
    return plan


def _option_values_to_click(product: dict, goal_options: dict | list) -> list[str]:
    values = [v for group in product["options"].values() for v in group]
    if isinstance(goal_options, dict):  # synthetic goal: exact values of the product's options
        return [v for v in goal_options.values() if v in values]
    chosen = []
    for wanted in goal_options:  # human goal: free text; click the closest option value, if close enough
        scored = [(fuzzy_score(v, wanted), -i, v) for i, v in enumerate(values)]
        if scored:
            best = max(scored)
            if best[0] > FUZZY_THRESHOLD and best[2] not in chosen:
                chosen.append(best[2])
    return chosen
