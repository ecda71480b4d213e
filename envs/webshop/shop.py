"""The shop: catalog, hidden prices, goals and search index, built once per process and shared.

Every env copy in a process that asks for the same catalog, goal kind and price seed gets the
same read-only :class:`Shop` (and all share one search index per catalog), so N env copies cost
one catalog in memory, not N (a known WebShop pitfall: gem PR #111, ROLL PR #122).

Randomness follows the original's call order through one ``random.Random(price_seed)``: first a
``uniform`` per ranged product (hidden prices), then one price cap per product (synthetic) or per
record (human). The goal order is then fixed by ``random.seed(233); shuffle``, as upstream.
"""

from __future__ import annotations

import gzip
import hashlib
import random
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from envs.webshop.catalog import generate_product_prices, load_products
from envs.webshop.config import DEFAULT_PRICE_SEED
from envs.webshop.data import CatalogFiles
from envs.webshop.goals import goal_uid, human_goals, shuffle_goals, synthetic_goals
from envs.webshop.search import SEARCH_RETURN_N, BM25Index, build_product_index

GoalKind = Literal["synthetic", "human"]
TEST_GOALS = {"real": 500, "builtin": 100}  # goals 0..n-1 are the test split of each catalog


@dataclass
class Shop:
    """Read-only catalog state shared by sessions (never mutate its products or goals)."""

    files: CatalogFiles
    goal_kind: GoalKind
    price_seed: int
    products: list[dict]
    product_by_asin: dict[str, dict]
    prices: dict[str, float]
    goals: list[dict]
    goal_uids: list[str]
    index: BM25Index = field(repr=False)
    _fingerprint: dict[str, object] | None = field(default=None, repr=False, compare=False)

    @property
    def catalog(self) -> str:
        return self.files.name

    @property
    def test_size(self) -> int:
        return min(TEST_GOALS[self.files.name], len(self.goals))

    def fingerprint(self) -> dict[str, object]:
        """Content hashes of the catalog files (decompressed bytes) and of the goal list (the goal
        uids in order: instructions, attributes, options, price caps), computed once per shop."""
        if self._fingerprint is None:
            files = {"products": self.files.products, "attributes": self.files.attributes, "human": self.files.human}
            self._fingerprint = {
                "catalog": self.catalog, "goal_kind": self.goal_kind, "price_seed": self.price_seed,
                **{f"{k}_sha256": content_sha256(p) if p is not None else None for k, p in files.items()},
                "goals": len(self.goals), "goals_sha256": ids_sha256(self.goal_uids),
            }
        return dict(self._fingerprint)

    def search(self, keywords: list[str], rng: random.Random | None = None) -> list[dict]:
        """Products for a search box entry, as ``get_top_n_product_from_keywords``.

        Debug prefixes of the original are kept: ``<r>`` (50 random products), ``<a> attr``
        (products with that attribute), ``<c> category`` and ``<q> query`` (exact matches).
        Otherwise the keywords are joined with spaces and the BM25 top 50 is returned.
        """
        first = keywords[0] if keywords else ""
        if first == "<r>":
            return (rng or random.Random()).sample(self.products, k=min(SEARCH_RETURN_N, len(self.products)))
        if first == "<a>":
            attribute = " ".join(keywords[1:]).strip()
            return [p for p in self.products if attribute in p["Attributes"]]
        if first == "<c>":
            category = keywords[1].strip() if len(keywords) > 1 else ""
            return [p for p in self.products if p["category"] == category]
        if first == "<q>":
            query = " ".join(keywords[1:]).strip()
            return [p for p in self.products if p["query"] == query]
        hits = self.index.search(" ".join(keywords), k=SEARCH_RETURN_N)
        return [self.product_by_asin[asin] for asin, _ in hits if asin in self.product_by_asin]


def content_sha256(path: Path) -> str:
    """sha256 (16 hex digits) of a file's content, of the decompressed bytes for ``.gz`` files, so
    that the same catalog stored plain or compressed, anywhere, has one hash."""
    digest = hashlib.sha256()
    with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def ids_sha256(ids: list[str]) -> str:
    """sha256 (16 hex digits) of a list of ids, one per line, in order."""
    return hashlib.sha256("".join(f"{i}\n" for i in ids).encode()).hexdigest()[:16]


_lock = threading.Lock()
_shops: dict[tuple, Shop] = {}
_indexes: dict[tuple, BM25Index] = {}


def get_shop(files: CatalogFiles, goal_kind: GoalKind = "synthetic", price_seed: int = DEFAULT_PRICE_SEED) -> Shop:
    """The process-wide shop for these files, goal kind and price seed (built on first use)."""
    key = (files.key(), goal_kind, price_seed)
    with _lock:
        shop = _shops.get(key)
        if shop is None:
            shop = _build_shop(files, goal_kind, price_seed)
            _shops[key] = shop
        return shop


def _build_shop(files: CatalogFiles, goal_kind: GoalKind, price_seed: int) -> Shop:
    products = load_products(files.products, files.attributes, files.human, human_goals=goal_kind == "human")
    rng = random.Random(price_seed)
    prices = generate_product_prices(products, rng)
    make_goals = human_goals if goal_kind == "human" else synthetic_goals
    goals = shuffle_goals(make_goals(products, prices, rng))
    index_key = (str(files.products),)
    index = _indexes.get(index_key)
    if index is None:
        index = _indexes[index_key] = build_product_index(products)
    return Shop(files=files, goal_kind=goal_kind, price_seed=price_seed, products=products,
                product_by_asin={p["asin"]: p for p in products}, prices=prices, goals=goals,
                goal_uids=[goal_uid(i, g) for i, g in enumerate(goals)], index=index)
