"""Parsing text that a model wrote (reflections, procedural memories, skill lists).

Writers can be anything from a 7B instruct model to a tiny random test model, so every parser
here is total: it returns a cleaned value or ``None`` (the caller drops it and counts it as
unparseable), never raises on bad text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

_TAG = re.compile(r"</?\s*(think|action|answer|reflection|plan)\s*>", re.IGNORECASE)
_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.IGNORECASE | re.DOTALL)
_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]+")


def clean_text(text: str) -> str:
    """Drop ``<think>`` blocks and stray tags, markdown emphasis and code fences; collapse whitespace."""
    text = _THINK_BLOCK.sub(" ", text or "")
    text = _TAG.sub(" ", text)
    text = text.replace("```json", " ").replace("```", " ").replace("**", "")
    return re.sub(r"\s+", " ", text).strip()


def clip(text: str, max_chars: int) -> str:
    """``text`` cut to at most ``max_chars`` characters at a word boundary (with an ellipsis)."""
    if len(text) <= max_chars:
        return text
    cut = text[: max(0, max_chars - 1)]
    space = cut.rfind(" ")
    if space > max_chars // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:") + "…"


def looks_like_language(text: str, min_words: int = 3, min_alpha: float = 0.6) -> bool:
    """Whether ``text`` reads as words: at least ``min_words`` alphabetic words and at least
    ``min_alpha`` of its non-space characters letters (random-token output fails this)."""
    if not text:
        return False
    words = _WORD.findall(text)
    if len(words) < min_words:
        return False
    visible = [c for c in text if not c.isspace()]
    letters = sum(c.isalpha() and c.isascii() for c in visible)
    return letters / max(1, len(visible)) >= min_alpha


def after_label(text: str, labels: Sequence[str], stop_labels: Sequence[str] = ()) -> str | None:
    """The text after the first ``Label:`` of ``labels`` (case-insensitive), up to the next of
    ``stop_labels`` or the end; None when no label occurs."""
    best = None
    for label in labels:
        m = re.search(rf"(?im)(^|[\s*#>]){re.escape(label)}\s*:", text)
        if m and (best is None or m.end() < best):
            best = m.end()
    if best is None:
        return None
    rest = text[best:]
    cut = len(rest)
    for stop in stop_labels:
        m = re.search(rf"(?im)(^|[\s*#>]){re.escape(stop)}\s*:", rest)
        if m:
            cut = min(cut, m.start())
    return rest[:cut]


def json_values(text: str) -> list[Any]:
    """Every JSON object or array found in ``text`` (outermost, balanced, parseable), in order."""
    out: list[Any] = []
    i, n = 0, len(text or "")
    while i < n:
        if text[i] in "{[":
            end = _balanced_end(text, i)
            if end is not None:
                try:
                    out.append(json.loads(text[i:end]))
                    i = end
                    continue
                except json.JSONDecodeError:
                    pass
        i += 1
    return out


def _balanced_end(text: str, start: int) -> int | None:
    """Index after the bracket that closes ``text[start]`` (strings respected), or None."""
    stack = []
    in_string = escape = False
    for j in range(start, len(text)):
        c = text[j]
        if in_string:
            if escape:
                escape = False
            elif c == "\\":
                escape = True
            elif c == '"':
                in_string = False
            continue
        if c == '"':
            in_string = True
        elif c in "{[":
            stack.append("}" if c == "{" else "]")
        elif c in "}]":
            if not stack or stack.pop() != c:
                return None
            if not stack:
                return j + 1
    return None


def json_objects(text: str) -> list[dict[str, Any]]:
    """Every JSON object in ``text``, including the objects inside JSON arrays and one level of
    wrapping objects (``{"skills": [...]}``)."""
    out: list[dict[str, Any]] = []
    for value in json_values(text):
        if isinstance(value, dict):
            nested = [v for v in value.values() if isinstance(v, list) and v and all(isinstance(x, dict) for x in v)]
            if nested and not _has_text_fields(value):
                for items in nested:
                    out.extend(items)
            else:
                out.append(value)
        elif isinstance(value, list):
            out.extend(v for v in value if isinstance(v, dict))
    return out


def _has_text_fields(obj: dict[str, Any]) -> bool:
    return any(isinstance(obj.get(k), str) for k in ("title", "principle", "description", "content"))


def text_field(obj: dict[str, Any], *names: str, max_chars: int = 400) -> str:
    """The first non-empty string field of ``names`` in ``obj``, cleaned and clipped ('' if none)."""
    for name in names:
        value = obj.get(name)
        if isinstance(value, str):
            value = clean_text(value)
            if value:
                return clip(value, max_chars)
    return ""
