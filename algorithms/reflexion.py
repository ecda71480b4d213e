"""Reflexion (Shinn et al. 2023): verbal self-reflection between repeated trials of one task.

Evaluation only (no weight update). Each evaluated task is played in up to ``max_trials``
sequential trials. After a failed trial the model (the writer, by default the run's own policy)
reads the failed trajectory and writes a short reflection: what went wrong and what to do
instead. The reflections of the earlier trials of *that* task (the last ``max_reflections``)
go into the prompt of its next trial, in the prompt-additions slot; other tasks never see them.
A task that succeeds is not tried again. Trial 0 is exactly the ReAct episode (same prompt, same
seeds), so ``reflexion`` at trial 0 and ``react`` are paired.

Rows: ``trial`` (0-based), ``repeat`` (the independent repetition, ``eval.episodes_per_task``),
``final_trial`` (the last trial of its task: a success or trial ``max_trials - 1``; reports count
a task's outcome once, on this row), ``reflection`` (written after this trial, '' if none),
``reflection_status`` (ok / unparseable / writer_error / none) and the writer's token counts.
Reports show success per trial (solved within k trials).

Differences from the paper: the reflection prompt is this project's wording
(:data:`REFLECTION_PROMPT`, versioned); the trajectory shown to the writer is the last
``trajectory_steps`` steps with shortened observations; the trials of all tasks run in rounds
(all first trials, then all second trials of failed tasks, ...), which changes nothing for any
one task. ``memory_scope`` is ``task``: state never crosses tasks.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from algorithms.base import Algorithm, PromptContext
from algorithms.model_output import after_label, clean_text, clip, looks_like_language
from algorithms.trajectories import render_trajectory
from algorithms.writers import Writer, WriterConfig, WriterOutput, WriterRequest, WriterStats, build_writer
from siri_bench.config import StrictModel
from siri_bench.registry import register_algorithm

if TYPE_CHECKING:  # import-light: configs validate without numpy or pandas
    import pandas as pd

    from siri_bench.rollout import EpisodeSpec

log = logging.getLogger(__name__)

#: id of the reflection prompt below; change it whenever the wording changes
REFLECTION_PROMPT_VERSION = "reflexion.reflect/v1"
REFLECTION_PROMPT = """You are looking back at an earlier attempt at a task in a text-based environment. The attempt failed.

Task: {task}
{previous}
The failed attempt:
{trajectory}

Do not describe the environment. Find the point where your plan went wrong and say what you will do differently next time, naming the concrete actions to take. Write at most three sentences, after "Reflection:".
Reflection:"""

#: the template writer's text (tests): names the task, so a test can see where it ends up
TEMPLATE_REFLECTION = "Reflection: In the task '{task}' I failed at trial {trial_number}; next time I will act differently."

ADDITION_HEADER = "Your reflections on earlier failed attempts at this task (use them to succeed this time):"


class ReflexionConfig(StrictModel):
    """Reflexion's parameters."""

    max_trials: int = Field(3, ge=1, description="trials per task (a success ends its task early)")
    max_reflections: int = Field(3, ge=1, description="most recent reflections put into the prompt")
    reflection_max_chars: int = Field(600, ge=40, description="a longer reflection is cut at a word boundary")
    trajectory_steps: int = Field(30, ge=1, description="last steps of the failed trial shown to the writer")
    observation_chars: int = Field(300, ge=20, description="observations shown to the writer are cut to this")
    writer: WriterConfig = Field(default_factory=WriterConfig, description="who writes the reflections")


def parse_reflection(text: str, max_chars: int = 600) -> str | None:
    """The reflection in a writer's output, or None when there is none that reads as language.

    Takes the text after the first ``Reflection:`` (or ``Plan:``) label when there is one, else
    the whole output; drops ``<think>`` blocks and tags; requires at least three words and mostly
    letters; cuts to ``max_chars``."""
    body = after_label(text or "", ("Reflection", "Plan"), stop_labels=("Task", "Trial", "Observation"))
    body = clean_text(body if body is not None else (text or ""))
    if not looks_like_language(body):
        return None
    return clip(body, max_chars)


def _writer_seed(policy_seed: int) -> int:
    from siri_bench.seeding import derive_seed

    return derive_seed(policy_seed, "eval", "step", 1_000_000)


def chain_key(iteration: int, task_index: int, repeat: int) -> str:
    """The group id shared by the trials of one (task, repeat): the unit a reflection belongs to."""
    return f"reflexion-i{iteration:06d}-t{task_index:04d}-r{repeat}"


@register_algorithm("reflexion")
class Reflexion(Algorithm):
    """Prompting with verbal self-reflection between up to max_trials trials of each task."""

    Config: ClassVar[type[ReflexionConfig]] = ReflexionConfig
    trains: ClassVar[bool] = False
    memory_scope: ClassVar[str] = "task"  # type: ignore[assignment]

    def __init__(self, params: ReflexionConfig | None = None, **context: Any):
        super().__init__(params, **context)
        self.params: ReflexionConfig
        self.run: Any = None
        self.writer: Writer | None = None
        self.stats = WriterStats()
        #: chain key -> [(trial, reflection)] in trial order
        self.reflections: dict[str, list[tuple[int, str]]] = {}
        #: episode id -> (chain key, repeat, trial)
        self._chains: dict[str, tuple[str, int, int]] = {}

    def setup(self, run: Any) -> None:
        self.run = run

    def _writer(self) -> Writer:
        if self.writer is None:
            self.writer = build_writer(self.params.writer, self.run, {"reflection": TEMPLATE_REFLECTION})
        return self.writer

    # -- prompts ----------------------------------------------------------------------------
    def prompt_additions(self, ctx: PromptContext) -> list[str]:
        notes = self.reflections.get(ctx.group_id, [])
        notes = [(t, text) for t, text in notes if t < ctx.trial][-self.params.max_reflections:]
        if not notes:
            return []
        lines = [ADDITION_HEADER] + [f"Trial {t + 1}: {text}" for t, text in notes]
        return ["\n".join(lines)]

    # -- episodes ---------------------------------------------------------------------------
    def on_episode_end(self, episode: Any, phase: str) -> None:
        chain = self._chains.get(episode.episode_id)
        if chain is None:
            return
        _, repeat, trial = chain
        episode.extra["repeat"] = repeat
        episode.extra["final_trial"] = bool(episode.won or trial >= self.params.max_trials - 1)

    def reflection_requests(self, episodes: list[Any]) -> list[WriterRequest]:
        """One writer request per failed, non-final trial in ``episodes``."""
        requests = []
        for ep in episodes:
            key = self._chains[ep.episode_id][0]
            earlier = [text for t, text in self.reflections.get(key, []) if t < ep.trial]
            previous = ("Your reflections on earlier attempts:\n" + "\n".join(f"- {r}" for r in earlier) + "\n"
                        if earlier else "")
            trajectory = render_trajectory(ep, max_steps=self.params.trajectory_steps,
                                           observation_chars=self.params.observation_chars)
            prompt = REFLECTION_PROMPT.format(task=ep.task, previous=previous, trajectory=trajectory)
            fields = {"task": ep.task, "task_id": ep.task_id, "episode_id": ep.episode_id,
                      "trial_number": str(ep.trial + 1), "trajectory": trajectory}
            requests.append(WriterRequest("reflection", prompt, fields,
                                          seed=_writer_seed(ep.policy_seed)))
        return requests

    def write_reflections(self, episodes: list[Any]) -> None:
        """Write the reflections of the failed, non-final trials among ``episodes`` (one batched
        writer call) into their rows and into the memory of their task."""
        failed = []
        for ep in episodes:
            if ep.episode_id not in self._chains:
                continue
            ep.extra.update({"reflection": "", "reflection_status": "none", "writer_prompt_tokens": 0,
                             "writer_completion_tokens": 0, "reflection_prompt": REFLECTION_PROMPT_VERSION})
            if not ep.extra.get("final_trial", True):
                failed.append(ep)
        if not failed:
            return
        outputs: list[WriterOutput] = self._writer().write(self.reflection_requests(failed))
        for ep, out in zip(failed, outputs):
            self.stats.add_output(out)
            ep.extra["writer_prompt_tokens"] = out.prompt_tokens
            ep.extra["writer_completion_tokens"] = out.completion_tokens
            if out.error is not None:
                ep.extra["reflection_status"] = "writer_error"
                continue
            text = parse_reflection(out.text, self.params.reflection_max_chars)
            if text is None:
                self.stats.unparseable += 1
                ep.extra["reflection_status"] = "unparseable"
                continue
            self.stats.parsed += 1
            ep.extra["reflection"] = text
            ep.extra["reflection_status"] = "ok"
            self.reflections.setdefault(self._chains[ep.episode_id][0], []).append((ep.trial, text))

    # -- evaluation -------------------------------------------------------------------------
    def trial_spec(self, run_seed: int, iteration: int, task_index: int, task_id: str, repeat: int,
                   trial: int) -> EpisodeSpec:
        """Trial ``trial`` of (task, repeat): the task's env seed for every trial (the same start);
        trial 0 has ReAct's policy seed, later trials their own."""
        from siri_bench.rollout import EpisodeSpec
        from siri_bench.seeding import EpisodeSeeds, derive_seed, eval_episode_seeds

        base = eval_episode_seeds(run_seed, iteration, task_index, repeat)
        policy_seed = base.policy_seed if trial == 0 else derive_seed(
            run_seed, "eval", "policy", iteration, task_index, repeat, trial)
        key = chain_key(iteration, task_index, repeat)
        episode_id = f"eval-i{iteration:06d}-t{task_index:04d}-r{repeat}-k{trial}"
        self._chains[episode_id] = (key, repeat, trial)
        return EpisodeSpec(episode_id=episode_id, group_id=key, task_id=task_id,
                           seeds=EpisodeSeeds(base.task_seed, base.env_seed, policy_seed), phase="eval",
                           iteration=iteration, trial=trial)

    def _restore(self, rows: pd.DataFrame) -> dict[str, dict[int, bool]]:
        """Reflections and outcomes of the trials already written (a resumed round)."""
        outcomes: dict[str, dict[int, bool]] = {}
        self.reflections = {}
        if rows.empty:
            return outcomes
        for _, row in rows.sort_values("trial").iterrows():
            chain = self._chains.get(str(row["episode_id"]))
            if chain is None:
                continue
            outcomes.setdefault(chain[0], {})[int(row["trial"])] = bool(row["won"])
            text = row.get("reflection") if "reflection" in rows.columns else None
            if isinstance(text, str) and text:
                self.reflections.setdefault(chain[0], []).append((int(row["trial"]), text))
        return outcomes

    def evaluate(self, run: Any, iteration: int, split: str | None = None) -> pd.DataFrame:
        from siri_bench.evaluate import eval_task_ids, play_and_write, round_episodes

        self.run = run
        cfg = run.config
        split = split or cfg.eval_split
        task_ids = eval_task_ids(run, split)
        repeats = cfg.eval.episodes_per_task
        specs = {(t, r, k): self.trial_spec(run.seed, iteration, t, task_id, r, k)
                 for t, task_id in enumerate(task_ids) for r in range(repeats) for k in range(self.params.max_trials)}
        for k in range(self.params.max_trials):
            outcomes = self._restore(round_episodes(run.run_dir, iteration))
            todo = []
            for t in range(len(task_ids)):
                for r in range(repeats):
                    tried = outcomes.get(chain_key(iteration, t, r), {})
                    if k == 0 or (tried.get(k - 1) is False):
                        todo.append(specs[(t, r, k)])
            if not todo:
                break
            play_and_write(run, todo, iteration, split, before_write=self.write_reflections,
                           label=f"reflexion trial {k + 1}")
        log.info("reflexion: %d reflections written, %d unparseable, %d writer errors", self.stats.parsed,
                 self.stats.unparseable, self.stats.errors)
        return round_episodes(run.run_dir, iteration)

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {**self.counter_state(), **self.stats.as_dict(),
                "reflections": {k: [list(x) for x in v] for k, v in self.reflections.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        state = dict(state)
        self.episodes_seen = int(state.pop("episodes_seen", 0))
        self.stats.load(state)
        self.reflections = {k: [(int(t), str(x)) for t, x in v] for k, v in (state.get("reflections") or {}).items()}
