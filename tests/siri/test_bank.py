"""The skill bank: lifecycle transitions, EMA utility, deduplication, caps and the event log,
checked against hand-computed values."""

from __future__ import annotations

import json

import pytest

from algorithms.siri.bank import BankSettings, SkillBank, normalise_text, text_similarity

STEPS_A = ["go to the countertop", "take the mug", "clean the mug with the sinkbasin"]
STEPS_B = ["open the fridge", "cool the apple with the fridge", "put the apple on the table"]
STEPS_C = ["go to the desk", "use the desklamp"]


def bank(**kw) -> SkillBank:
    return SkillBank(BankSettings(**kw))


def events(b: SkillBank, kind: str) -> list[dict]:
    return [e for e in b.pending_events if e["event"] == kind]


def test_new_skill_is_a_candidate_with_zero_utility_and_a_created_event():
    b = bank()
    s = b.add("clean", "Clean", "cleaning tasks", STEPS_A, iteration=4, source="template")
    assert (s.status, s.utility, s.n, s.skill_id, s.category) == ("candidate", 0.0, 0, "skill-0000", "clean")
    (created,) = b.take_events()
    assert created["event"] == "created" and created["iteration"] == 4 and created["category"] == "clean"
    assert created["skill_id"] == "skill-0000" and created["steps"] == STEPS_A and created["source"] == "template"
    assert "1. go to the countertop" in created["text"]
    assert b.take_events() == []


def test_ema_utility_by_hand():
    b = bank(beta=0.3, min_validations=10)
    s = b.add("clean", "t", "w", STEPS_A, 0)
    # U: 0 -> 0.3*1 = 0.3 -> 0.7*0.3 + 0 = 0.21 -> 0.7*0.21 + 0.3*0.5 = 0.297 -> 0.7*0.297 - 0.3*0.25 = 0.1329
    expected = [0.3, 0.21, 0.297, 0.1329]
    for gain, u in zip([1.0, 0.0, 0.5, -0.25], expected):
        b.validate(s.skill_id, gain, iteration=1)
        assert s.utility == pytest.approx(u, abs=1e-12)
    assert s.n == 4 and s.gains == [1.0, 0.0, 0.5, -0.25]
    validated = events(b, "validated")
    assert [e["utility"] for e in validated] == pytest.approx(expected)
    assert [e["gain"] for e in validated] == [1.0, 0.0, 0.5, -0.25]
    assert [e["n"] for e in validated] == [1, 2, 3, 4]
    assert s.status == "candidate"                       # min_validations not reached


def test_promotion_needs_min_validations_and_the_threshold():
    b = bank(beta=0.5, min_validations=3, promote_threshold=0.05, retire_threshold=0.0)
    s = b.add("clean", "t", "w", STEPS_A, 0)
    b.validate(s.skill_id, 1.0, 1)       # U = 0.5, n = 1: too few validations
    b.validate(s.skill_id, 1.0, 2)       # U = 0.75, n = 2
    assert s.status == "candidate" and not events(b, "promoted")
    b.validate(s.skill_id, -0.5, 3)      # U = 0.125, n = 3 >= 3 and 0.125 >= 0.05
    assert s.status == "active" and s.promoted_iteration == 3
    (promoted,) = events(b, "promoted")
    assert promoted["iteration"] == 3 and promoted["utility"] == pytest.approx(0.125) and promoted["n"] == 3


def test_candidate_between_thresholds_stays_a_candidate():
    b = bank(beta=0.5, min_validations=1, promote_threshold=0.05, retire_threshold=0.0)
    s = b.add("clean", "t", "w", STEPS_A, 0)
    b.validate(s.skill_id, 0.08, 1)      # U = 0.04: not >= 0.05, not < 0
    assert s.status == "candidate"
    b.validate(s.skill_id, 0.0, 2)       # U = 0.02
    assert s.status == "candidate"


def test_candidate_retired_for_negative_utility():
    b = bank(beta=0.3, min_validations=2, promote_threshold=0.05, retire_threshold=0.0)
    s = b.add("clean", "t", "w", STEPS_A, 0)
    b.validate(s.skill_id, -1.0, 1)      # U = -0.3 but n = 1
    assert s.status == "candidate"
    b.validate(s.skill_id, 0.5, 2)       # U = 0.7*-0.3 + 0.15 = -0.06 < 0, n = 2
    assert s.status == "retired" and s.retire_reason == "utility" and s.retired_iteration == 2
    (retired,) = events(b, "retired")
    assert retired["reason"] == "utility" and retired["utility"] == pytest.approx(-0.06)
    with pytest.raises(ValueError, match="retired"):
        b.validate(s.skill_id, 1.0, 3)


def test_active_skill_retired_when_utility_falls():
    b = bank(beta=0.5, min_validations=1, promote_threshold=0.05, retire_threshold=0.0)
    s = b.add("clean", "t", "w", STEPS_A, 0)
    b.validate(s.skill_id, 0.2, 1)       # U = 0.1 -> active
    assert s.status == "active"
    b.validate(s.skill_id, 0.0, 2)       # U = 0.05: still active (>= retire_threshold)
    assert s.status == "active"
    b.validate(s.skill_id, -0.2, 3)      # U = 0.025 - 0.1 = -0.075 -> retired
    assert s.status == "retired"
    assert [e["event"] for e in b.take_events()] == ["created", "validated", "promoted", "validated", "validated",
                                                     "retired"]


def test_max_active_evicts_the_lowest_utility_of_the_category_only():
    b = bank(beta=1.0, min_validations=1, promote_threshold=0.0, retire_threshold=-1.0, max_active=2,
             max_candidates=10, dedup_threshold=0.99)
    s0 = b.add("clean", "t", "w", ["a a a"], 0)
    s1 = b.add("clean", "t", "w", ["b b b"], 0)
    s2 = b.add("clean", "t", "w", ["c c c"], 0)
    other = b.add("heat", "t", "w", ["d d d"], 0)
    b.validate(other.skill_id, 0.0, 1)   # an active skill of another category never counts
    b.validate(s0.skill_id, 0.4, 1)      # U = 0.4 (beta 1: U = d)
    b.validate(s1.skill_id, 0.2, 1)
    assert [s.status for s in (s0, s1)] == ["active", "active"]
    b.validate(s2.skill_id, 0.3, 2)      # third active: the lowest (s1, U 0.2) goes
    assert (s0.status, s1.status, s2.status, other.status) == ("active", "retired", "active", "active")
    assert s1.retire_reason == "max_active" and s1.retired_iteration == 2
    assert [s.skill_id for s in b.active("clean")] == [s0.skill_id, s2.skill_id]   # highest U first


def test_max_active_ties_retire_the_oldest():
    b = bank(validation=False, max_active=2, dedup_threshold=0.99)
    s0 = b.add("clean", "t", "w", ["a a a"], 0)
    s1 = b.add("clean", "t", "w", ["b b b"], 1)
    s2 = b.add("clean", "t", "w", ["c c c"], 2)
    assert (s0.status, s1.status, s2.status) == ("retired", "active", "active")


def test_dedup_uses_normalised_steps_text_within_the_category():
    assert normalise_text("Go to Desk 12,  then LOOK!") == "go to desk # then look"
    # Indel similarity of "abcd" and "abce": 1 - 2 / 8
    assert text_similarity("abcd", "abce") == pytest.approx(0.75)
    b = bank(dedup_threshold=0.9, max_candidates=10)
    first = b.add("clean", "Clean a mug", "w", ["go to desk 1", "take mug 2"], 0)
    assert first is not None
    # same steps up to numbers, case and punctuation: similarity 1 > 0.9, whatever the title
    assert b.add("clean", "Another title", "w", ["Go to desk 3.", "take MUG 7"], 1) is None
    assert b.dropped_duplicates == 1
    # the same steps in another category are not duplicates
    assert b.add("heat", "t", "w", ["go to desk 1", "take mug 2"], 1) is not None
    # a different procedure passes
    assert b.add("clean", "t", "w", STEPS_B, 1) is not None
    assert [e["event"] for e in b.take_events()] == ["created", "created", "created"]


def test_dedup_threshold_is_strict_greater_than():
    b = bank(dedup_threshold=0.75, max_candidates=10)
    b.add("c", "t", "w", ["abcd"], 0)
    assert b.add("c", "t", "w", ["abce"], 0) is not None      # similarity 0.75 is not above 0.75
    b2 = bank(dedup_threshold=0.7, max_candidates=10)
    b2.add("c", "t", "w", ["abcd"], 0)
    assert b2.add("c", "t", "w", ["abce"], 0) is None


def test_retired_skills_still_block_their_duplicates():
    b = bank(min_validations=1, beta=1.0)
    s = b.add("clean", "t", "w", STEPS_A, 0)
    b.validate(s.skill_id, -1.0, 1)
    assert s.status == "retired"
    assert b.add("clean", "t", "w", STEPS_A, 2) is None


def test_candidate_cap_per_category():
    b = bank(max_candidates=2)
    b.add("clean", "t", "w", STEPS_A, 0)
    assert b.can_add("clean")
    b.add("clean", "t", "w", STEPS_B, 0)
    assert not b.can_add("clean") and b.can_add("heat")


def test_to_validate_prefers_candidates_then_fewest_validations():
    b = bank(beta=1.0, min_validations=1, promote_threshold=0.0, max_candidates=10)
    a = b.add("c", "t", "w", STEPS_A, 0)
    bb = b.add("c", "t", "w", STEPS_B, 0)
    c = b.add("c", "t", "w", STEPS_C, 0)
    b.validate(a.skill_id, 0.5, 1)                     # a is active now
    assert [s.skill_id for s in b.to_validate(2)] == [bb.skill_id, c.skill_id]
    assert [s.skill_id for s in b.to_validate(5)] == [bb.skill_id, c.skill_id, a.skill_id]


def test_without_validation_skills_are_active_at_once_with_utility_one():
    b = bank(validation=False)
    s = b.add("clean", "t", "w", STEPS_A, 3)
    assert (s.status, s.utility, s.promoted_iteration) == ("active", 1.0, 3)
    assert [e["event"] for e in b.take_events()] == ["created", "promoted"]
    assert b.to_validate(5) == [] and b.can_add("clean")


def test_state_dict_round_trip_is_json_safe():
    b = bank(beta=0.5, min_validations=1)
    s = b.add("clean", "t", "w", STEPS_A, 0)
    b.validate(s.skill_id, 0.4, 1)
    b.add("clean", "t", "w", STEPS_A, 1)               # a duplicate, counted
    state = json.loads(json.dumps(b.state_dict()))
    b2 = bank(beta=0.5, min_validations=1)
    b2.load_state_dict(state)
    assert b2.skills[s.skill_id] == s and b2.next_id == 1 and b2.dropped_duplicates == 1
    assert b2.add("clean", "t", "w", STEPS_B, 2).skill_id == "skill-0001"
