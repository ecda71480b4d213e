"""Fixtures of the WebShop tests: shared envs over the real small catalog (``webshop_data``, tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def real_env(webshop_data: Path):
    """A text env over the real catalog's test split (the shop inside is shared by every env)."""
    from envs.webshop.env import WebShopEnv

    env = WebShopEnv(split="test", catalog="real", data_dir=str(webshop_data))
    yield env
    env.close()


@pytest.fixture(scope="session")
def real_shop(real_env):
    return real_env.shop


@pytest.fixture
def no_registered_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No $WEBSHOP_DATA and an empty siri-bench cache: the envs must fall back to the built-in catalog."""
    monkeypatch.delenv("WEBSHOP_DATA", raising=False)
    monkeypatch.setenv("SIRI_BENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path
