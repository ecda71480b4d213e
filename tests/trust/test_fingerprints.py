"""Fingerprints of real tiny runs: every field the issue names, data hashes that follow the data's
content (not its location), and reports that refuse to compare runs made on different data."""

from __future__ import annotations

import json
import shutil

import torch

from envs.alfworld.data import DATA_SUBDIR, GAME_FILE, load_split
from siri_bench.cli import main
from siri_bench.config import build_config, expand_runs
from siri_bench.fingerprint import build_fingerprint
from siri_bench.runner import execute_run

torch.set_num_threads(1)


def copy_game(src_root, dst_root, task_id, edit=None):
    target = dst_root / DATA_SUBDIR / task_id / GAME_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src_root / DATA_SUBDIR / task_id / GAME_FILE, target)
    if edit is not None:
        game = json.loads(target.read_text())
        edit(game)
        target.write_text(json.dumps(game))
    return dst_root


def tiny_run(tmp_path, data_dir, seed):
    cfg = build_config({
        "name": "fp", "output_dir": str(tmp_path / "runs"), "algorithm": "react", "seeds": [seed],
        "env": {"id": "siri_bench/ALFWorld-v0", "eval_split": "valid_unseen", "max_steps": 2,
                "kwargs": {"data_dir": str(data_dir)}},
        "policy": {"model": "tiny-random", "device": "cpu", "max_new_tokens": 6},
        "eval": {"concurrency": 1}, "report": {"plots": False}})
    run = execute_run(expand_runs(cfg)[0])
    assert run.is_done()
    return json.loads(run.fingerprint_path.read_text())


def test_fingerprints_and_report_refusal_on_different_data(alfworld_data_dir, tmp_path, capsys):
    task_id = load_split("valid_unseen", alfworld_data_dir).task_ids[0]
    same_a = copy_game(alfworld_data_dir, tmp_path / "a", task_id)
    same_b = copy_game(alfworld_data_dir, tmp_path / "elsewhere" / "b", task_id)
    # Same PDDL problem and path (so the same task uid), but another game file: only the data
    # fingerprint can tell these runs apart.
    other = copy_game(alfworld_data_dir, tmp_path / "c", task_id,
                      edit=lambda g: g.update(walkthrough=list(g["walkthrough"])[:1]))
    assert load_split("valid_unseen", other).games[0].task_uid == load_split("valid_unseen", same_a).games[0].task_uid

    fp = tiny_run(tmp_path, same_a, 0)
    assert {"python", "siri-bench", "alfworld", "textworld", "gymnasium", "torch", "transformers"} <= set(fp["packages"])
    assert fp["env"]["id"] == "siri_bench/ALFWorld-v0" and fp["env"]["engine"] == "fast"
    games = fp["data"]["valid_unseen"]["alfworld"]
    assert games["games"] == 1 and games["source"] == "real" and len(games["games_sha256"]) == 16
    assert list(fp["templates"]) == ["alfworld.generate/v1"] and fp["model"]["name"] == "tiny-random"
    assert fp["model"]["hash"] and len(fp["config"]) == 16

    # the same games in another folder: the same data fingerprint and env fingerprint
    import gymnasium

    here = gymnasium.make("siri_bench/ALFWorld-v0", split="valid_unseen", data_dir=str(same_b)).unwrapped
    assert here.data_fingerprint() == fp["data"]["valid_unseen"]
    moved = build_fingerprint(config={"env": {"kwargs": {"data_dir": str(same_b)}}}, config_hash="x", env_id="e")
    assert moved["env"] == build_fingerprint(config={"env": {"kwargs": {"data_dir": "/x"}}}, config_hash="y",
                                             env_id="e")["env"]

    changed = tiny_run(tmp_path, other, 1)
    assert changed["data"] != fp["data"] and changed["env"] == fp["env"]
    runs = str(tmp_path / "runs" / "fp")
    assert main(["report", runs, "--set", "plots=false"]) == 2
    err = capsys.readouterr().err
    assert "refusing to compare runs with different fingerprints" in err
    assert "fingerprint field data.valid_unseen.alfworld.games_sha256 differs" in err and "--allow-mismatch" in err
    assert main(["report", runs, "--set", "plots=false", "--allow-mismatch"]) == 0
    report = (tmp_path / "runs" / "fp" / "report" / "report.md").read_text()
    assert "Compared despite a fingerprint mismatch (--allow-mismatch)" in report
    assert "data.valid_unseen.alfworld.games_sha256" in report
