"""Skill writers: turn a few successful episodes of one category into one compact skill.

* ``self`` (:class:`ModelWriter` on the training policy): the current policy summarises the
  episodes, prompted with :data:`WRITER_PROMPT` (versioned: :data:`WRITER_PROMPT_ID`), greedy by
  default. Its answer goes through :func:`parse_skill`.
* ``external`` (:class:`ModelWriter` on an :class:`~siri_bench.policy.openai.OpenAIPolicy`): the
  same prompt and parser, answered by any OpenAI-compatible endpoint (the "closed-model
  distillation" comparison).
* ``template`` (:class:`TemplateWriter`): no model. The action pattern the episodes share: each
  action is abstracted over object numbers (``take mug 2 from desk 1`` -> ``take mug N from desk
  N``), the actions of all episodes are aligned by their shape (longest common subsequence), and
  where the episodes disagree the step shows ``<task item r>`` (the r-th object of the episode's
  own task sentence) or ``<any>``. It cannot say *why*; it is the ablation that shows what an
  LLM-written skill adds, and the writer of tests and CPU smoke runs, where a randomly initialised
  model cannot write anything.

A skill is a title, when it applies, and numbered steps of at most ``skill_max_tokens`` tokens
(later steps are dropped to fit; a first step alone too long is cut). An answer without steps is
dropped; the caller counts drops.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from algorithms.siri.buffer import SuccessEpisode

log = logging.getLogger(__name__)

WRITER_PROMPT_ID = "siri.skill_writer/v1"
WRITER_PROMPT = (
    "You are helping an agent that acts in a text environment. Below are {k} episodes in which the agent "
    "succeeded at tasks of the same kind ({category}).\n\n{episodes}\n\n"
    "Write one short, reusable skill that would help the agent solve new tasks of this kind. Describe general "
    "steps, not the exact objects or numbers of one episode. Answer in exactly this format and nothing else:\n"
    "Title: <a short name>\n"
    "When: <when the skill applies>\n"
    "Steps:\n"
    "1. <first step>\n"
    "2. <next step>\n"
    "Keep the steps short: at most {max_words} words in all."
)
MAX_STEPS = 20

TokenCounter = Callable[[str], int]


@dataclass(frozen=True)
class SkillDraft:
    """A parsed skill before it enters the bank."""

    title: str
    when: str
    steps: tuple[str, ...]


@dataclass(frozen=True)
class WriteResult:
    """A writer's answer for one category: the draft, or None with the reason it was dropped."""

    category: str
    draft: SkillDraft | None
    raw: str
    reason: str = ""          # "" when the draft is usable


def word_count(text: str) -> int:
    return len(text.split())


def token_counter(tokenizer: Any) -> TokenCounter:
    """Tokens of a text under ``tokenizer`` (whitespace words when there is none)."""
    if tokenizer is None:
        return word_count
    return lambda text: len(tokenizer(text, add_special_tokens=False).input_ids)


def fit_steps(steps: Sequence[str], max_tokens: int, count: TokenCounter) -> list[str]:
    """The leading steps whose text ("\\n"-joined) has at most ``max_tokens`` tokens; a first step
    that alone is too long is cut word by word."""
    kept: list[str] = []
    for step in steps:
        if count("\n".join([*kept, step])) <= max_tokens:
            kept.append(step)
        else:
            break
    if not kept and steps:
        words = steps[0].split()
        while words and count(" ".join(words)) > max_tokens:
            words.pop()
        if words:
            kept = [" ".join(words)]
    return kept


# ----------------------------------------------------------------------------------------------
# The model writers' prompt and parser
# ----------------------------------------------------------------------------------------------
def writer_prompt(category: str, episodes: Sequence[SuccessEpisode], *, max_tokens: int, max_actions: int) -> str:
    """The user message asking for one skill from ``episodes`` (see :data:`WRITER_PROMPT`)."""
    blocks = []
    for i, ep in enumerate(episodes, start=1):
        actions = list(ep.actions[:max_actions])
        more = len(ep.actions) - len(actions)
        lines = [f"Episode {i}", f"Task: {ep.task.strip()}", "Actions:"]
        lines += [f"{j}. {a}" for j, a in enumerate(actions, start=1)]
        if more > 0:
            lines.append(f"... ({more} more actions)")
        blocks.append("\n".join(lines))
    return WRITER_PROMPT.format(k=len(episodes), category=category, episodes="\n\n".join(blocks),
                                max_words=max(4, int(max_tokens * 0.75)))


_FIELD = r"^[ \t>#*_-]*(?:\*\*|__)?[ \t]*(?:skill[ \t]+)?{names}[ \t]*(?:\*\*|__)?[ \t]*[:：][ \t]*(?:\*\*|__)?[ \t]*(.*)$"
_TITLE = re.compile(_FIELD.format(names=r"(?:title|name)"), re.IGNORECASE | re.MULTILINE)
_WHEN = re.compile(_FIELD.format(names=r"(?:when(?:[ \t]+to[ \t]+(?:use|apply))?|applies[ \t]+when|condition)"),
                   re.IGNORECASE | re.MULTILINE)
_STEPS = re.compile(_FIELD.format(names=r"(?:steps|procedure|strategy|plan)"), re.IGNORECASE | re.MULTILINE)
_ITEM = re.compile(r"^\s*(?:\d{1,2}\s*[.):]|[-*•]|step\s*\d{1,2}\s*[.):]?)\s+(.+)$", re.IGNORECASE)
_INLINE_ITEMS = re.compile(r"(?:^|\s)\d{1,2}[.)]\s+")
#: a template placeholder, not content: "<first step>", "[insert step 1]", "[2]", "..."
_PLACEHOLDER = re.compile(r"^(<[^<>]*>|\[[^\[\]]*\]|\([^()]*\)|\.\.\.|…)$")


def _clean(text: str) -> str:
    text = re.sub(r"(\*\*|__|`)", "", text)
    return " ".join(text.split()).strip(" .;:-")


def parse_skill(text: str, *, max_tokens: int, count: TokenCounter = word_count,
                category: str = "") -> tuple[SkillDraft | None, str]:
    """A skill from a writer's answer, or (None, reason).

    Tolerant of what models do: ``<think>`` blocks, markdown (``**Title:**``, ``## Steps``,
    bullets), "Step 1:" numbering, steps on one line ("Steps: 1. a 2. b"), missing fields. Steps
    are the numbered or bulleted lines after a ``Steps:`` header (plain lines if it has no list;
    prose after the list ends it), or else every numbered line; placeholders ("<first step>",
    "[insert step 1]"), steps without a word and repeated steps are ignored. Without steps the answer is dropped (reason ``no steps``). A
    missing title becomes the category's name, a missing "when" ``tasks of type <category>``.
    """
    if not isinstance(text, str) or not text.strip():
        return None, "empty"
    body = re.sub(r"<think>.*?(</think>|$)", "", text, flags=re.DOTALL | re.IGNORECASE)
    body = body.replace("```", "\n")
    title_m, when_m, steps_m = _TITLE.search(body), _WHEN.search(body), _STEPS.search(body)
    steps: list[str] = []
    if steps_m is not None:
        inline = steps_m.group(1).strip()
        if inline:
            steps += [s for s in _INLINE_ITEMS.split(inline) if s.strip()]
        listed = bool(steps)
        for line in body[steps_m.end():].splitlines():
            if not line.strip():
                continue
            if _TITLE.match(line) or _WHEN.match(line) or _STEPS.match(line):
                break
            item = _ITEM.match(line)
            if item:
                listed = True
                steps.append(item.group(1))
            elif listed:
                break                        # prose after the list ends it
            else:
                steps.append(line)           # unnumbered steps, one per line
    else:
        steps = [m.group(1) for m in (_ITEM.match(line) for line in body.splitlines()) if m]
    cleaned: list[str] = []
    for step in steps:
        step = _clean(step)
        if step and not _PLACEHOLDER.match(step) and re.search(r"[A-Za-z]{2}", step) and step not in cleaned:
            cleaned.append(step)
    cleaned = fit_steps(cleaned[:MAX_STEPS], max_tokens, count)
    if not cleaned:
        return None, "no steps"
    title = _clean(title_m.group(1)) if title_m else ""
    when = _clean(when_m.group(1)) if when_m else ""
    title = title if title and not _PLACEHOLDER.match(title) else (category or "skill")
    when = when if when and not _PLACEHOLDER.match(when) else (f"tasks of type {category}" if category else "")
    return SkillDraft(title, when, tuple(cleaned)), ""


# ----------------------------------------------------------------------------------------------
# The template writer
# ----------------------------------------------------------------------------------------------
_BRACKET = re.compile(r"^\s*([^\s\[\]]+)\s*\[(.*)\]\s*$", re.DOTALL)


def abstract_action(action: str) -> list[str]:
    """An action's tokens with every number replaced by ``N`` (``go to desk 1`` -> go, to, desk, N);
    a bracket action ``click[buy now]`` is ``click``, ``[``, ``buy now``, ``]`` (its argument one token)."""
    text = action.lower()
    bracket = _BRACKET.match(text)
    if bracket:
        return [bracket.group(1), "[", " ".join(bracket.group(2).split()), "]"]
    return ["N" if re.fullmatch(r"\d+", t) else t for t in text.split()]


def action_shape(tokens: Sequence[str]) -> str:
    """What aligns actions across episodes: object slots (a word before ``N``) and bracket arguments
    become placeholders, so ``take mug N from desk N`` and ``take apple N from shelf N`` match."""
    if len(tokens) == 4 and tokens[1] == "[" and tokens[3] == "]":
        return f"{tokens[0]} []"
    out = []
    for i, t in enumerate(tokens):
        if t == "N":
            continue
        out.append("<x>" if i + 1 < len(tokens) and tokens[i + 1] == "N" else t)
    return " ".join(out)


def _task_items(task: str, tokens_per_action: Sequence[Sequence[str]]) -> dict[str, int]:
    """Object-slot words that occur in the task sentence, ranked 1, 2, ... by where the task names them."""
    words = re.findall(r"[a-z0-9]+", task.lower())
    slots = {toks[i] for toks in tokens_per_action for i in range(len(toks) - 1) if toks[i + 1] == "N"}
    named = sorted((words.index(w), w) for w in slots if w in words)
    return {w: r for r, (_, w) in enumerate(named, start=1)}


def _alignment(a: Sequence[str], b: Sequence[str], same: Callable[[int, int], bool]) -> list[tuple[int, int]]:
    """Index pairs of a common subsequence of ``a`` and ``b`` (equal shapes) that is longest, and among
    the longest has the most pairs with ``same(i, j)`` (identical actions); deterministic."""
    n, m = len(a), len(b)
    # scores as integers: 2 per aligned pair, +1 if the actions are identical (length always wins)
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            best = max(table[i + 1][j], table[i][j + 1])
            if a[i] == b[j]:
                best = max(best, table[i + 1][j + 1] + 2 * (n + m) + (1 if same(i, j) else 0))
            table[i][j] = best
    pairs, i, j = [], 0, 0
    while i < n and j < m:
        if a[i] == b[j] and table[i][j] == table[i + 1][j + 1] + 2 * (n + m) + (1 if same(i, j) else 0):
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return pairs


def _merge_tokens(variants: Sequence[Sequence[str]], items: Sequence[dict[str, int]],
                  tasks: Sequence[str]) -> str:
    """One step from the aligned actions of every episode."""
    if any(len(v) != len(variants[0]) for v in variants):
        return " ".join(list(variants[0][:1]) + ["<any>"])
    bracket = len(variants[0]) == 4 and variants[0][1] == "["
    out = []
    for pos in range(len(variants[0])):
        column = [v[pos] for v in variants]
        if len(set(column)) == 1:
            out.append(column[0])
        elif bracket:
            from_task = all(set(arg.split()) <= set(re.findall(r"[a-z0-9]+", task.lower()))
                            for arg, task in zip(column, tasks))
            out.append("<task words>" if from_task else "<any>")
        else:
            ranks = {it.get(tok) for tok, it in zip(column, items)}
            out.append(f"<task item {ranks.pop()}>" if len(ranks) == 1 and None not in ranks else "<any>")
    if bracket:
        return f"{out[0]}[{out[2]}]"
    return " ".join(out)


def template_steps(episodes: Sequence[SuccessEpisode]) -> list[str]:
    """The shared action pattern of ``episodes`` (see the module docstring); [] if they share none."""
    if not episodes:
        return []
    per_episode = [[abstract_action(a) for a in ep.actions] for ep in episodes]
    items = [_task_items(ep.task, toks) for ep, toks in zip(episodes, per_episode)]
    shapes = [[action_shape(t) for t in toks] for toks in per_episode]
    # aligned[p] = the tokens of pattern position p in each episode seen so far
    pattern = list(shapes[0])
    aligned: list[list[list[str]]] = [[toks] for toks in per_episode[0]]
    for shape, toks in zip(shapes[1:], per_episode[1:]):
        first = [variants[0] for variants in aligned]
        pairs = _alignment(pattern, shape, lambda i, j, first=first, toks=toks: first[i] == toks[j])
        pattern = [pattern[i] for i, _ in pairs]
        aligned = [aligned[i] + [toks[j]] for i, j in pairs]
    steps: list[str] = []
    for variants in aligned:
        step = _merge_tokens(variants, items, [e.task for e in episodes])
        if not steps or steps[-1] != step:
            steps.append(step)
    return steps


# ----------------------------------------------------------------------------------------------
# Writers
# ----------------------------------------------------------------------------------------------
class SkillWriter:
    """Writes one skill per (category, episodes) job."""

    name = "base"

    def __init__(self, *, max_tokens: int = 128, count: TokenCounter = word_count):
        self.max_tokens = max_tokens
        self.count = count

    def write(self, jobs: Sequence[tuple[str, Sequence[SuccessEpisode], int]]) -> list[WriteResult]:
        """One result per ``(category, episodes, seed)`` job, in order."""
        raise NotImplementedError


class TemplateWriter(SkillWriter):
    """No model: the shared action pattern (see the module docstring)."""

    name = "template"

    def write(self, jobs: Sequence[tuple[str, Sequence[SuccessEpisode], int]]) -> list[WriteResult]:
        out = []
        for category, episodes, _seed in jobs:
            steps = fit_steps(template_steps(episodes), self.max_tokens, self.count)
            raw = "\n".join(steps)
            if not steps:
                out.append(WriteResult(category, None, raw, "no shared pattern"))
                continue
            example = episodes[0].task.strip().rstrip(".")
            draft = SkillDraft(f"{category}: the plan {len(episodes)} successes share",
                               f"tasks of type {category}, e.g. '{example}'", tuple(steps))
            out.append(WriteResult(category, draft, raw))
        return out


class ModelWriter(SkillWriter):
    """A language model writes the skill: the training policy (``self``) or an endpoint (``external``).

    ``policy`` is any :class:`~siri_bench.policy.base.Policy`; its ``tokenizer`` (if any) encodes the
    chat for local back ends. All jobs go to the model in one batched call.
    """

    def __init__(self, policy: Any, *, name: str, temperature: float = 0.0, max_new_tokens: int = 320,
                 max_actions: int = 30, max_tokens: int = 128, count: TokenCounter | None = None):
        super().__init__(max_tokens=max_tokens, count=count or token_counter(getattr(policy, "tokenizer", None)))
        self.policy = policy
        self.name = name
        self.temperature = temperature
        self.max_new_tokens = max_new_tokens
        self.max_actions = max_actions

    def prompt(self, category: str, episodes: Sequence[SuccessEpisode]) -> str:
        return writer_prompt(category, episodes, max_tokens=self.max_tokens, max_actions=self.max_actions)

    def write(self, jobs: Sequence[tuple[str, Sequence[SuccessEpisode], int]]) -> list[WriteResult]:
        from siri_bench.policy.base import GenerationRequest, SamplingParams

        if not jobs:
            return []
        tok = getattr(self.policy, "tokenizer", None)
        requests = []
        for category, episodes, seed in jobs:
            messages = [{"role": "user", "content": self.prompt(category, episodes)}]
            ids: list[int] = []
            if tok is not None:
                text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
                ids = list(tok(text, add_special_tokens=False).input_ids)
            requests.append(GenerationRequest(ids, int(seed), messages))
        params = SamplingParams(temperature=self.temperature, max_new_tokens=self.max_new_tokens)
        self.policy.before_rollout()
        try:
            completions = self.policy.generate(requests, params)
        finally:
            self.policy.after_rollout()
        out = []
        for (category, _episodes, _seed), comp in zip(jobs, completions):
            if comp.error is not None:
                out.append(WriteResult(category, None, comp.text or "", f"writer error: {comp.error}"))
                continue
            draft, reason = parse_skill(comp.text, max_tokens=self.max_tokens, count=self.count, category=category)
            out.append(WriteResult(category, draft, comp.text, reason))
        return out


def build_writer(params: Any, policy: Any) -> SkillWriter:
    """The writer ``params.skill_writer`` names (``params``: a SIRIConfig; ``policy``: the training policy)."""
    count = token_counter(getattr(policy, "tokenizer", None))
    if params.skill_writer == "template":
        return TemplateWriter(max_tokens=params.skill_max_tokens, count=count)
    if params.skill_writer == "self":
        writer_policy = policy
    else:
        from siri_bench.policy.openai import OpenAIPolicy

        writer_policy = OpenAIPolicy(params.external, tokenizer=getattr(policy, "tokenizer", None),
                                     model_name=params.external.model)
    return ModelWriter(writer_policy, name=params.skill_writer, temperature=params.writer_temperature,
                       max_new_tokens=params.writer_max_new_tokens, max_actions=params.writer_max_actions,
                       max_tokens=params.skill_max_tokens, count=count)
