"""Shared fixtures. Tests never download anything: models are built from configs, data comes
from the repository or from ../shared/data (tests needing the latter skip with a reason when
it is absent; CI points SIRI_BENCH_SHARED_DATA at it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SIRI_BENCH_SHARED_DATA", REPO.parent / "shared" / "data"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The ../shared/data folder (ALFWorld archive, WebShop files); skip when absent."""
    if not SHARED_DATA.exists():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set SIRI_BENCH_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def alfworld_data_dir(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding ``json_2.1.1/``: the shared ALFWorld archive, extracted once per session.

    Extracted with the project's own ``siri-bench data alfworld --archive`` code (about a second).
    """
    archive = shared_data / "alfworld" / "json_2.1.1.tar.xz"
    if not archive.is_file():
        pytest.skip(f"ALFWorld archive not found at {archive} (see ../shared/data/alfworld/SOURCES.md)")
    from envs.alfworld.data_cli import extract_archive

    target = tmp_path_factory.mktemp("alfworld-data")
    extract_archive(archive, target)
    return target


@pytest.fixture(scope="session")
def webshop_data(shared_data: Path) -> Path:
    """Folder with the real 1000-product WebShop catalog and the Lucene oracles (skip when absent)."""
    folder = shared_data / "webshop"
    if not (folder / "items_ins_v2_1000.json").is_file():
        pytest.skip(f"WebShop data not found in {folder}")
    return folder
