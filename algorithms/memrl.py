"""MemRL-style episodic memory with a frozen model (MemRL, arXiv 2601.03192; MemTensor/MemRL).

Non-parametric: the policy's weights never change; what improves is a bank of procedural
memories with learned values (:mod:`algorithms.memory_bank`).

1. **Build** (before the evaluation): ``build_passes`` passes over the first ``build_tasks`` tasks
   of the training split (MemRL's ALFWorld runner: 10 passes over the training set), in chunks of
   ``build_chunk`` episodes. Each episode retrieves memories for its task sentence at its first
   step (two-stage: recall above ``threshold``, then re-rank by the z-scored mix of similarity and
   Q) and carries them in its prompt; after each chunk the retrieved memories' Q-values are
   updated from the episodes' outcomes (``q <- (1 - alpha) q + alpha r``, r = +1 / -1) and every
   episode (success and failure) becomes a new procedural memory, written by the writer (the
   frozen policy itself by default) or, with ``memory_text: trajectory``, the episode's action
   sequence. Near-duplicates (key similarity >= ``merge_threshold``, same outcome) are merged.
2. **Evaluate**: the usual evaluation with the memory in the prompt; it is frozen unless
   ``update_at_eval`` (MemRL's runtime learning on the test stream, off by default so that the
   test tasks do not feed the memory they are evaluated with).

The bank is saved under ``RUN/memory/bank.json`` after every build chunk (an interrupted build
resumes after the last saved chunk). Rows carry ``memory_ids``, ``memories_retrieved`` and
``memory_scope = run``.

Differences from MemRL: the memory key is the task sentence (MemRL keys by the task query too);
retrieval happens once per episode; embeddings come from all-MiniLM-L6-v2 (MemRL:
text-embedding-3-large), so the threshold 0.62 is on another model's scale; BM25 when the
embedding model is absent; the memory prompt is this project's wording
(:data:`MEMORY_PROMPT_VERSION`).
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, model_validator

from algorithms.base import Algorithm, PromptContext
from algorithms.model_output import after_label, clean_text, clip, looks_like_language
from algorithms.retrieval import SimilarityKind
from algorithms.trajectories import action_sequence, outcome_text, render_trajectory
from algorithms.writers import Writer, WriterConfig, WriterRequest, WriterStats, build_writer
from siri_bench.config import StrictModel
from siri_bench.registry import register_algorithm

if TYPE_CHECKING:  # import-light: configs validate without numpy or pandas
    import pandas as pd

    from algorithms.memory_bank import MemoryBank, Retrieved
    from algorithms.retrieval import Similarity
    from siri_bench.rollout import EpisodeSpec

log = logging.getLogger(__name__)

MEMORY_PROMPT_VERSION = "memrl.memory/v1"
MEMORY_PROMPT = """Turn the episode below into a short procedural memory that will help an agent with similar tasks later.

Task: {task}
Outcome: {outcome}
Episode:
{trajectory}

If the episode succeeded, write the procedure that worked as a few numbered steps that carry over to similar tasks. If it failed, write what went wrong and what to do instead. At most five short lines, after "Memory:".
Memory:"""

TEMPLATE_MEMORY = "Memory: For '{task}' ({outcome}): {actions}"


class MemRLConfig(StrictModel):
    """MemRL's parameters (defaults: MemRL's config)."""

    similarity: SimilarityKind = Field("auto", description="auto (MiniLM when installed, else BM25), minilm, bm25")
    threshold: float = Field(0.62, description="stage 1: recall memories with similarity >= threshold (tau)")
    recall_k: int = Field(5, ge=1, description="stage 1: at most this many candidates (k1)")
    top_k: int = Field(3, ge=1, description="stage 2: memories put into the prompt (k2)")
    sim_weight: float = Field(0.5, ge=0.0, le=1.0, description="stage 2: score = w z(sim) + (1 - w) z(Q)")
    alpha: float = Field(0.3, gt=0.0, le=1.0, description="Q step size: Q <- (1 - alpha) Q + alpha r")
    success_reward: float = Field(1.0, description="r of a successful episode")
    failure_reward: float = Field(-1.0, description="r of a failed episode")
    q_init: float = Field(0.0, description="Q of a new memory")
    merge_threshold: float = Field(0.9, description="a new memory this similar to one with the same outcome is merged")
    store: Literal["success_and_failure", "success"] = Field(
        "success_and_failure", description="which episodes become memories")
    memory_text: Literal["writer", "trajectory"] = Field(
        "writer", description="writer: the writer proceduralizes the episode; trajectory: its action sequence")
    content_max_chars: int = Field(600, ge=40, description="memory texts are cut to this")
    build_split: str | None = Field(None, description="split the memory is built on (None: env.train_split)")
    build_tasks: int | None = Field(32, ge=1, description="first N tasks of the build split (None: all)")
    build_passes: int = Field(1, ge=0, description="passes over the build tasks (MemRL ALFWorld: 10)")
    build_chunk: int = Field(16, ge=1, description="episodes between memory updates while building")
    update_at_eval: bool = Field(False, description="keep learning (Q updates, new memories) on evaluation episodes")
    trajectory_steps: int = Field(30, ge=1, description="last steps of an episode shown to the writer")
    observation_chars: int = Field(200, ge=20, description="observations shown to the writer are cut to this")
    writer: WriterConfig = Field(default_factory=WriterConfig, description="who writes the memories")

    @model_validator(mode="after")
    def _rerank_within_recall(self) -> MemRLConfig:
        if self.top_k > self.recall_k:
            raise ValueError(f"top_k ({self.top_k}) > recall_k ({self.recall_k}): stage 2 keeps top_k of the "
                             "recall_k recalled memories; raise recall_k or lower top_k")
        return self


def parse_memory(text: str, max_chars: int = 600) -> str | None:
    """The memory in a writer's output (after ``Memory:`` when present), or None if it does not read
    as language."""
    body = after_label(text or "", ("Memory", "Procedure"), stop_labels=("Task", "Outcome", "Episode"))
    body = clean_text(body if body is not None else (text or ""))
    if not looks_like_language(body):
        return None
    return clip(body, max_chars)


@register_algorithm("memrl")
class MemRL(Algorithm):
    """Frozen policy + episodic procedural memory with Q-value re-ranking."""

    Config: ClassVar[type[MemRLConfig]] = MemRLConfig
    trains: ClassVar[bool] = False
    memory_scope: ClassVar[str] = "run"  # type: ignore[assignment]

    def __init__(self, params: MemRLConfig | None = None, *, similarity: Similarity | None = None, **context: Any):
        super().__init__(params, **context)
        self.params: MemRLConfig
        self.run: Any = None
        self.writer: Writer | None = None
        self.stats = WriterStats()
        self._similarity = similarity
        self._bank: MemoryBank | None = None
        self.build_done = 0                           # build episodes absorbed
        self.build_log: list[dict[str, Any]] = []     # one row per build chunk
        self.absorbed: set[str] = set()               # evaluation episodes absorbed (update_at_eval)
        self.retrieved: dict[str, list[Retrieved]] = {}

    @property
    def bank(self) -> MemoryBank:
        if self._bank is None:
            from algorithms.memory_bank import MemoryBank
            from algorithms.retrieval import build_similarity

            sim = self._similarity or build_similarity(self.params.similarity)
            self._bank = MemoryBank(sim, merge_threshold=self.params.merge_threshold, q_init=self.params.q_init)
        return self._bank

    def setup(self, run: Any) -> None:
        self.run = run

    def _writer(self) -> Writer:
        if self.writer is None:
            self.writer = build_writer(self.params.writer, self.run, {"memory": TEMPLATE_MEMORY})
        return self.writer

    # -- prompts ----------------------------------------------------------------------------
    def retrieve_for(self, episode_id: str, task: str) -> list[Retrieved]:
        if episode_id not in self.retrieved:
            p = self.params
            self.retrieved[episode_id] = self.bank.retrieve(task, threshold=p.threshold, recall_k=p.recall_k,
                                                            top_k=p.top_k, sim_weight=p.sim_weight)
        return self.retrieved[episode_id]

    def prompt_additions(self, ctx: PromptContext) -> list[str]:
        from algorithms.memory_bank import memories_text

        found = self.retrieve_for(ctx.episode_id, ctx.task)
        return [memories_text(found)] if found else []

    def on_episode_end(self, episode: Any, phase: str) -> None:
        found = self.retrieved.get(episode.episode_id, [])
        episode.extra["memory_ids"] = [r.memory.id for r in found]
        episode.extra["memories_retrieved"] = len(found)
        episode.extra["memory_similarity"] = self.bank.similarity.name

    # -- learning ---------------------------------------------------------------------------
    def absorb(self, episodes: list[Any]) -> None:
        """Q updates for the memories the episodes used, then the episodes become memories."""
        p = self.params
        for ep in episodes:
            found = self.retrieved.pop(ep.episode_id, [])
            reward = p.success_reward if ep.won else p.failure_reward
            self.bank.update([r.memory.id for r in found], reward, p.alpha)
        keep = [ep for ep in episodes if ep.won or p.store == "success_and_failure"]
        for ep, text in zip(keep, self.memory_texts(keep)):
            if text is None:
                continue
            self.bank.add(ep.task, text, task_type=ep.task_type, outcome="success" if ep.won else "failure",
                          created=int(ep.extra.get("position", 0)), source=ep.episode_id)

    def memory_texts(self, episodes: list[Any]) -> list[str | None]:
        """The memory text of each episode (None: the writer's output did not parse)."""
        from siri_bench.seeding import derive_seed

        p = self.params
        if p.memory_text == "trajectory":
            return [clip(f"Actions that {'worked' if ep.won else 'failed'}: " + " -> ".join(action_sequence(ep)),
                         p.content_max_chars) for ep in episodes]
        requests = []
        for ep in episodes:
            trajectory = render_trajectory(ep, max_steps=p.trajectory_steps, observation_chars=p.observation_chars)
            requests.append(WriterRequest(
                "memory", MEMORY_PROMPT.format(task=ep.task, outcome=outcome_text(ep), trajectory=trajectory),
                {"task": ep.task, "outcome": outcome_text(ep), "actions": " -> ".join(action_sequence(ep))},
                seed=derive_seed(ep.policy_seed, "train", "step", 1_000_001)))
        texts: list[str | None] = []
        for ep, out in zip(episodes, self._writer().write(requests) if requests else []):
            self.stats.add_output(out)
            ep.extra["writer_prompt_tokens"] = ep.extra.get("writer_prompt_tokens", 0) + out.prompt_tokens
            ep.extra["writer_completion_tokens"] = ep.extra.get("writer_completion_tokens", 0) + out.completion_tokens
            text = parse_memory(out.text, p.content_max_chars) if out.error is None else None
            if out.error is None and text is None:
                self.stats.unparseable += 1
            elif text is not None:
                self.stats.parsed += 1
            texts.append(text)
        return texts

    # -- build + evaluate -------------------------------------------------------------------
    def build_specs(self, task_ids: list[str], run_seed: int) -> list[EpisodeSpec]:
        """The build episodes, in order: pass p plays the build tasks in canonical order."""
        from siri_bench.rollout import EpisodeSpec
        from siri_bench.seeding import train_episode_seeds

        specs = []
        for p in range(self.params.build_passes):
            for j, task_id in enumerate(task_ids):
                specs.append(EpisodeSpec(f"build-p{p:02d}-t{j:04d}", f"build-p{p:02d}-t{j:04d}", task_id,
                                         train_episode_seeds(run_seed, p, j, 0), "train", p))
        return specs

    def build(self, run: Any) -> None:
        """Build the memory on the training split (resuming after the last saved chunk)."""
        from siri_bench.logs import progress
        from siri_bench.rollout import RolloutEngine, RolloutSettings

        cfg = run.config
        split = self.params.build_split or cfg.env.train_split
        if self.params.build_passes == 0 or split is None:
            return
        ids = list(run.env_pool(split, 1).call("task_ids", [0])[0])
        ids = ids[: self.params.build_tasks] if self.params.build_tasks else ids
        specs = self.build_specs(ids, run.seed)
        if self.build_done >= len(specs):
            return
        chunk = self.params.build_chunk
        pool = run.env_pool(split, min(cfg.eval.concurrency, chunk))
        engine = RolloutEngine(pool, run.policy, RolloutSettings.from_config(cfg, "train"), self)
        with progress(len(specs) - self.build_done, f"memrl build {split}") as bar:
            while self.build_done < len(specs):
                part = specs[self.build_done:self.build_done + chunk]
                episodes = engine.run(part).episodes
                self.absorb(episodes)
                self.build_done += len(part)
                self.build_log.append({"episodes": self.build_done, "success": sum(e.won for e in episodes) / len(part),
                                       **self.bank.summary()})
                self.save(run)
                bar.advance(len(part), note=f"memories {len(self.bank)}")

    def _absorb_eval(self, episodes: list[Any]) -> None:
        fresh = [e for e in episodes if e.episode_id not in self.absorbed]
        self.absorb(fresh)
        self.absorbed.update(e.episode_id for e in fresh)
        self.save(self.run)

    def evaluate(self, run: Any, iteration: int, split: str | None = None) -> pd.DataFrame:
        from siri_bench.evaluate import eval_specs, eval_task_ids, play_and_write, round_episodes

        self.run = run
        self.restore(run)
        self.build(run)
        cfg = run.config
        split = split or cfg.eval_split
        specs = eval_specs(eval_task_ids(run, split), run_seed=run.seed, iteration=iteration,
                           episodes_per_task=cfg.eval.episodes_per_task)
        play_and_write(run, specs, iteration, split,
                       before_write=self._absorb_eval if self.params.update_at_eval else None, label="memrl eval")
        return round_episodes(run.run_dir, iteration)

    # -- state ------------------------------------------------------------------------------
    def state_path(self, run: Any):
        return run.run_dir.path / "memory" / "bank.json"

    def save(self, run: Any) -> None:
        from siri_bench.store import atomic_write_json

        if run is not None:
            atomic_write_json(self.state_path(run), self.state_dict())

    def restore(self, run: Any) -> None:
        path = self.state_path(run)
        if path.exists():
            self.load_state_dict(json.loads(path.read_text(encoding="utf-8")))
            log.info("memrl: resumed a memory of %d entries after %d build episodes", len(self.bank), self.build_done)

    def load_evaluation_state(self, source: Any, checkpoint: Any = None) -> None:
        """A separate evaluation starts from the source run's memory (no new build)."""
        path = source.path / "memory" / "bank.json"
        if path.exists():
            self.load_state_dict(json.loads(path.read_text(encoding="utf-8")))

    def state_dict(self) -> dict[str, Any]:
        return {**self.counter_state(), **self.stats.as_dict(), "bank": self.bank.state_dict(),
                "build_done": self.build_done, "build_log": list(self.build_log), "absorbed": sorted(self.absorbed),
                "memory_prompt": MEMORY_PROMPT_VERSION}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.episodes_seen = int(state.get("episodes_seen", 0))
        self.stats.load(state)
        self.bank.load_state_dict(state.get("bank") or {})
        self.build_done = int(state.get("build_done", 0))
        self.build_log = list(state.get("build_log") or [])
        self.absorbed = set(state.get("absorbed") or [])
