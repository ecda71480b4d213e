"""``siri_bench/ALFWorld-v0``: ALFWorld's text games as a Gymnasium environment."""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
from gymnasium import spaces
from pydantic import Field, ValidationError, field_validator

from envs.alfworld import data
from envs.alfworld.engine import make_engine
from siri_bench.config import StrictModel, format_validation_error
from siri_bench.errors import ConfigError

#: Characters of observations and actions: the engine writes printable ASCII only.
TEXT_CHARSET = string.printable
MAX_OBSERVATION_CHARS = 32_768
MAX_ACTION_CHARS = 512
DEFAULT_SPLIT = "valid_unseen"
DEFAULT_MAX_STEPS = 50


class ALFWorldConfig(StrictModel):
    """Keyword arguments of ``siri_bench/ALFWorld-v0`` (validated ``env.kwargs`` of experiment files)."""

    split: str = Field(DEFAULT_SPLIT, description=f"task split: one of {', '.join(data.SPLITS)}")
    task_types: list[Literal[data.TASK_TYPES]] | None = Field(  # type: ignore[valid-type]
        None, description="keep only these task types (None: all six)")
    max_steps: int = Field(DEFAULT_MAX_STEPS, ge=1, description="steps before the episode is truncated")
    engine: Literal["fast", "stock"] = Field(
        "fast", description="fast: validated accelerated engine (falls back to stock); stock: unmodified TextWorld")
    cache_size: int = Field(64, ge=1, description="loaded games kept per worker process by the fast engine")
    data_dir: str | None = Field(
        None, description="folder holding json_2.1.1/ (default: $ALFWORLD_DATA, then ~/.cache/siri-bench/alfworld)")

    @field_validator("split")
    @classmethod
    def _known_split(cls, value: str) -> str:
        if value not in data.SPLITS:
            raise ValueError(f"unknown split; must be one of {', '.join(data.SPLITS)}")
        return value


class ALFWorldEnv(gym.Env[str, str]):
    """ALFWorld household tasks played as text on the real TextWorld PDDL engine.

    Each task is one ALFWorld game (``game.tw-pddl``): find, clean, heat, cool, examine or place
    objects in a household scene. The engine is ``textworld[pddl]`` with the ``alfworld`` package's
    ``AlfredDemangler(shuffle=False)`` and ``AlfredInfos`` wrappers (``engine="stock"``), or the
    validated fast path of the same engine (``engine="fast"``, the default; see
    :mod:`envs.alfworld.engine`).

    ## Observation
    The text the engine returns (``str``, printable ASCII). The first observation describes the room
    and ends with the task: ``Your task is to: put a clean mug in coffeemachine.``

    ## Action
    A text command (``str``), e.g. ``go to countertop 1``. Any string is accepted: a command that is
    not admissible is passed to the engine, which answers ``Nothing happens.``, and the step has
    ``info["valid"] = False``.

    ## Reward
    The engine's native reward: 1.0 on the step that wins the game, else 0.0.

    ## Episode end
    ``terminated`` when the game is won. ``truncated`` when ``max_steps`` steps were taken without a
    win (``info["truncated_by"] = "max_steps"``); truncation is never a win. Stepping after the end
    raises ``gymnasium.error.ResetNeeded``.

    ## Starting state
    ``reset(seed=s)`` picks a task from the split (after the ``task_types`` filter) with the env's
    seeded generator, so one seed always gives the same task; ``reset(options={"task_id": ...})``
    plays that task. The engine is deterministic: the same task and actions give the same text.

    ## Info (at reset and after every step)
    - ``admissible_actions`` (list[str]): sorted admissible commands in the current state.
    - ``task_id`` (str): the game folder relative to ``json_2.1.1`` (e.g. ``valid_unseen/<task>/<trial>``).
    - ``task_uid`` (str): content hash id of the game, the same on every machine.
    - ``task_type`` (str): one of :data:`envs.alfworld.data.TASK_TYPES`.
    - ``task`` (str): the task sentence (``put a clean mug in coffeemachine.``).
    - ``won`` (bool): the engine says the goal is reached. ``score`` (float): 1.0 if won else 0.0.
    - ``step`` (int): steps taken in this episode. ``valid`` (bool): the action was admissible
      (True at reset).
    - ``anchor_state`` (str): observation + ``"\\n"`` + the sorted admissible actions joined by
      ``"\\n"``: equal strings mean equal environment states, for GiGPO's step groups.

    ## Tasks and data
    ``task_ids`` (canonical order) and ``task_uids`` (their content ids, what task panels list,
    :mod:`envs.panels`); ``data_fingerprint()`` hashes the games played (relative paths and file
    contents) for the run's ``fingerprint.json``; ``prepare_engine()`` says which engine runs.

    ## Arguments
    See :class:`ALFWorldConfig`: ``split``, ``task_types``, ``max_steps`` (default 50), ``engine``,
    ``cache_size``, ``data_dir``; plus ``render_mode`` (``"ansi"`` or ``"human"``).

    ## Spaces and ``check_env``
    Both spaces are ``gymnasium.spaces.Text`` over ``string.printable`` (observations up to
    32,768 characters, actions up to 512). ``check_env`` passes unchanged: its sampled actions are
    random strings, which are simply inadmissible commands.
    """

    metadata = {"render_modes": ["ansi", "human"]}

    def __init__(self, split: str = DEFAULT_SPLIT, task_types: list[str] | None = None,
                 max_steps: int = DEFAULT_MAX_STEPS, engine: str = "fast", cache_size: int = 64,
                 data_dir: str | Path | None = None, render_mode: str | None = None) -> None:
        try:
            config = ALFWorldConfig(split=split, task_types=task_types, max_steps=max_steps, engine=engine,
                                    cache_size=cache_size, data_dir=None if data_dir is None else str(data_dir))
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc, ALFWorldConfig, prefix="ALFWorld-v0")) from None
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ConfigError(f"render_mode={render_mode!r}; must be one of {self.metadata['render_modes']} or None")
        self.config = config
        self.render_mode = render_mode
        self.split = config.split
        self.max_steps = config.max_steps
        self.engine_mode = config.engine
        full = data.load_split(config.split, config.data_dir)
        self._index = full.filter(config.task_types)
        if not self._index.games:
            raise ConfigError(f"ALFWorld split {config.split!r} has no games of task types {config.task_types}")
        #: Task ids of games excluded because their file says ``solvable: false``.
        self.excluded_task_ids: tuple[str, ...] = full.excluded_unsolvable
        self.observation_space = spaces.Text(MAX_OBSERVATION_CHARS, min_length=0, charset=TEXT_CHARSET)
        self.action_space = spaces.Text(MAX_ACTION_CHARS, min_length=1, charset=TEXT_CHARSET)

        self._engine: Any = None
        self._loaded_game: Path | None = None
        self._game: data.GameRecord | None = None
        self._observation = ""
        self._admissible: list[str] = []
        self._won = False
        self._steps = 0
        self._done = True

    # -- the split ------------------------------------------------------------------------
    @property
    def task_ids(self) -> list[str]:
        """Task ids of the split after the task type filter, in canonical (sorted) order."""
        return self._index.task_ids

    @property
    def task_uids(self) -> list[str]:
        """Content ids of :attr:`task_ids`, same order (what task panels list)."""
        return [g.task_uid for g in self._index.games]

    def data_fingerprint(self) -> dict[str, Any]:
        """Hash of the games this env plays (relative paths + file contents; see
        :meth:`envs.alfworld.data.SplitIndex.fingerprint`), recorded in each run's fingerprint."""
        return {"alfworld": self._index.fingerprint()}

    @property
    def excluded_count(self) -> int:
        """How many games of the split were excluded as unsolvable."""
        return len(self.excluded_task_ids)

    def task_info(self, task_id: str) -> dict[str, Any]:
        """task_id, task_uid, task_type, task, game_file and walkthrough of a task of this split."""
        return self._index.get(task_id).info()

    def expert_plan(self) -> list[str]:
        """The game file's walkthrough for the current task, from the start of the episode."""
        if self._game is None:
            raise gym.error.ResetNeeded("call reset() before expert_plan()")
        return list(self._game.walkthrough)

    def prepare_engine(self) -> str:
        """Build the engine now (the fast engine's start-up self-check included), so the first
        episode is not charged for it. Returns the engine actually running: "fast" or "stock"
        (``engine="fast"`` falls back to stock when the fast path is unavailable)."""
        engine = self._ensure_engine()
        return str(getattr(getattr(engine, "unwrapped", engine), "engine_mode", "stock"))

    @property
    def current_task_id(self) -> str | None:
        return None if self._game is None else self._game.task_id

    # -- gymnasium API --------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        options = dict(options or {})
        task_id = options.pop("task_id", None)
        if options:
            raise ConfigError(f"unknown ALFWorld reset option(s) {sorted(options)}; known: task_id")
        if task_id is None:
            game = self._index.games[int(self.np_random.integers(len(self._index.games)))]
        else:
            game = self._index.get(str(task_id))
        engine = self._ensure_engine()
        if self._loaded_game != game.game_file:
            self._loaded_game = None  # a failed load must not leave a stale game marked as loaded
            engine.load(str(game.game_file))
            self._loaded_game = game.game_file
        state = engine.reset()
        self._game = game
        self._steps = 0
        self._done = False
        self._won = False
        self._read_state(state)
        return self._observation, self._info(valid=True)

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if self._done or self._game is None:
            raise gym.error.ResetNeeded("the episode has ended (or never started): call reset()")
        if not isinstance(action, str):
            raise TypeError(f"ALFWorld actions are text commands (str), got {type(action).__name__}")
        valid = action.strip() in self._admissible
        state, _, _ = self._engine.step(action)
        was_won = self._won
        self._read_state(state)
        self._steps += 1
        reward = 1.0 if self._won and not was_won else 0.0
        terminated = self._won
        truncated = not terminated and self._steps >= self.max_steps
        self._done = terminated or truncated
        info = self._info(valid=valid)
        if truncated:
            info["truncated_by"] = "max_steps"
        return self._observation, reward, terminated, truncated, info

    def render(self) -> str | None:
        if self.render_mode is None:
            return None
        text = self._observation + "\n\nAdmissible actions:\n" + "\n".join(self._admissible)
        if self.render_mode == "human":
            print(text)
            return None
        return text

    def close(self) -> None:
        if self._engine is not None:
            engine, self._engine = self._engine, None
            self._loaded_game = None
            engine.close()

    # -- internals ------------------------------------------------------------------------
    def _ensure_engine(self) -> Any:
        if self._engine is None:
            self._engine = make_engine(self.engine_mode, cache_size=self.config.cache_size)
        return self._engine

    def _read_state(self, state: Any) -> None:
        self._observation = str(state["feedback"])
        self._admissible = sorted(str(c) for c in state["admissible_commands"])
        self._won = bool(state["won"])

    def _info(self, valid: bool) -> dict[str, Any]:
        game = self._game
        assert game is not None
        return {
            "admissible_actions": list(self._admissible),
            "task_id": game.task_id,
            "task_uid": game.task_uid,
            "task_type": game.task_type,
            "task": game.task,
            "won": self._won,
            "score": 1.0 if self._won else 0.0,
            "step": self._steps,
            "valid": valid,
            "anchor_state": self._observation + "\n" + "\n".join(self._admissible),
        }
