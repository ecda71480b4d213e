"""Canonical task panels: shipped lists, the CLI, and ids that do not depend on where the data lies."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from envs.alfworld.data import DATA_SUBDIR, GAME_FILE, load_split
from envs.panels import available_panels, format_panel, get_panel, ids_sha256, parse_panel
from siri_bench.cli import main
from siri_bench.config import build_config
from siri_bench.errors import ConfigError, DataError


def test_shipped_panels_and_their_sizes():
    sizes = {p.name: len(p.task_uids) for p in available_panels()}
    assert sizes == {"alfworld/valid_seen": 140, "alfworld/valid_unseen": 134, "alfworld/builtin_eval": 24,
                     "webshop/test": 500, "webshop/builtin_test": 100}
    assert get_panel("alfworld/valid_unseen") == get_panel("alfworld/valid_unseen@v1")
    assert all(u.startswith("alfworld-") for u in get_panel("alfworld/valid_seen").task_uids)
    assert all(u.startswith("webshop-") for u in get_panel("webshop/test").task_uids)


def test_cli_lists_and_shows_panels(capsys):
    assert main(["panels"]) == 0
    listing = capsys.readouterr().out
    assert "alfworld/valid_unseen@v1\t134 tasks" in listing and "webshop/test@v1\t500 tasks" in listing
    assert main(["panels", "show", "alfworld/valid_unseen"]) == 0
    ids = capsys.readouterr().out.split()
    assert len(ids) == 134 and ids == list(get_panel("alfworld/valid_unseen").task_uids)
    assert main(["panels", "show", "alfworld/nope"]) == 2
    assert "unknown task panel 'alfworld/nope'; known panels: alfworld/builtin_eval" in capsys.readouterr().err


def test_builtin_panels_match_the_builtin_data():
    """The built-in panels need no download: the env's split gives exactly the shipped ids, in order."""
    import gymnasium

    import envs  # noqa: F401

    for name, env_id in (("alfworld/builtin_eval", "siri_bench/ALFWorld-v0"),
                         ("webshop/builtin_test", "siri_bench/WebShop-v0")):
        panel = get_panel(name)
        env = gymnasium.make(env_id, split=panel.split).unwrapped
        assert panel.select(env.task_ids, env.task_uids, env_id) == list(env.task_ids)
        assert list(env.task_uids) == list(panel.task_uids)
        env.close()


def test_a_panel_names_its_data_and_refuses_other_data():
    panel = get_panel("alfworld/builtin_eval")
    ids = [f"eval/t{k}" for k in range(len(panel.task_uids))]
    uids = list(panel.task_uids)
    assert panel.select(ids[::-1], uids[::-1], "siri_bench/ALFWorld-v0") == ids   # panel order, not the env's
    changed = uids[:-1] + ["alfworld-0000000000000000"]
    with pytest.raises(DataError) as err:
        panel.select(ids, changed, "siri_bench/ALFWorld-v0")
    message = str(err.value)
    assert "panel alfworld/builtin_eval@v1 does not match split 'builtin_eval'" in message
    assert f"1 of its {len(uids)} tasks are not in the data" in message and "eval/t23" in message
    with pytest.raises(ConfigError, match="holds tasks of siri_bench/ALFWorld-v0, not of siri_bench/WebShop-v0"):
        panel.check_env("siri_bench/WebShop-v0")


def test_an_edited_panel_file_is_refused(tmp_path):
    text = format_panel("x/y", 1, ["e"], "s", "src", ["a-1", "a-2"])
    path = tmp_path / "y.v1.txt"
    path.write_text(text)
    assert parse_panel(path).task_uids == ("a-1", "a-2")
    path.write_text(text.replace("a-2", "a-3"))
    with pytest.raises(DataError, match="was edited"):
        parse_panel(path)
    assert ids_sha256(["a"]) != ids_sha256(["b"])


def test_configs_naming_an_unknown_or_foreign_panel_fail_at_load():
    base = {"policy": {"model": "tiny-random"}, "algorithm": "react"}
    assert build_config({**base, "eval": {"split": "alfworld/valid_unseen"}}).eval_split == "alfworld/valid_unseen"
    with pytest.raises(ConfigError, match="unknown task panel 'alfworld/valid_unsen'"):
        build_config({**base, "eval": {"split": "alfworld/valid_unsen"}})
    with pytest.raises(ConfigError, match="not of siri_bench/WebShop-v0"):
        build_config({**base, "env": {"id": "siri_bench/WebShop-v0"}, "eval": {"split": "alfworld/valid_unseen"}})


def _copy_split(src_root: Path, dst_root: Path, split: str) -> None:
    """Copy a split's game files into ``dst_root/json_2.1.1`` in reverse order (another listing order)."""
    games = sorted((src_root / DATA_SUBDIR / split).rglob(GAME_FILE), reverse=True)
    for game in games:
        target = dst_root / DATA_SUBDIR / game.relative_to(src_root / DATA_SUBDIR)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(game, target)


def test_real_alfworld_panels_from_a_copy_of_the_data_elsewhere(alfworld_data_dir, tmp_path):
    """The shipped ids come back from the real data in any folder, whatever the listing order."""
    copy = tmp_path / "somewhere" / "else"
    _copy_split(alfworld_data_dir, copy, "valid_unseen")
    for name in ("alfworld/valid_seen", "alfworld/valid_unseen"):
        panel = get_panel(name)
        here = load_split(panel.split, alfworld_data_dir)
        assert [g.task_uid for g in here.games] == list(panel.task_uids)
        assert here.fingerprint()["games"] == len(panel.task_uids)
    elsewhere = load_split("valid_unseen", copy)
    here = load_split("valid_unseen", alfworld_data_dir)
    assert elsewhere.root != here.root
    assert [g.task_uid for g in elsewhere.games] == list(get_panel("alfworld/valid_unseen").task_uids)
    assert elsewhere.task_ids == here.task_ids and elsewhere.fingerprint() == here.fingerprint()


def test_real_webshop_panel_matches_the_real_catalog(webshop_data):
    from envs.webshop.env import WebShopEnv

    panel = get_panel("webshop/test")
    env = WebShopEnv(split="test", catalog="real", data_dir=str(webshop_data))
    assert env.task_uids == list(panel.task_uids) and env.task_ids == [str(i) for i in range(500)]
    with pytest.raises(DataError, match="another catalog, goal set or price seed"):
        panel.select(env.task_ids, WebShopEnv(split="test", catalog="real", data_dir=str(webshop_data),
                                              price_seed=7).task_uids, "siri_bench/WebShop-v0")
