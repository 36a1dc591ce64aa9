"""The index contract (actors/store.py, ``AbstractIndex``): named ordered sets of string members with
scores, one suite for every backend the fixtures offer (conftest.py: real Redis, mongomock, and real
MongoDB when ``ABACO_TEST_MONGO_URL`` is set)."""
from __future__ import annotations

import pytest

from actors.store import AbstractIndex

pytestmark = pytest.mark.unit

ODD_MEMBERS = ["a\nb", "a:b", "a_b", "T_abc_def", "x:y\nz_w", "ключ 🔑", "$where", "a.b", "*?[]\\"]


def fill(index: AbstractIndex, name: str, n: int) -> list[str]:
    """``n`` members m00.. added in an order unlike their scores; returns them by score."""
    members = [f"m{i:02d}" for i in range(n)]
    for i in reversed(range(n)):
        index.add(name, members[i], float(i))
    return members


# -- order ----------------------------------------------------------------------------------------
def test_members_come_by_ascending_score_whatever_the_order_added(index):
    index.add("i", "late", 30.0)
    index.add("i", "early", 10.0)
    index.add("i", "middle", 20.5)
    index.add("i", "negative", -1.0)
    assert index.members("i") == ["negative", "early", "middle", "late"]


def test_add_many_orders_like_add(index):
    index.add_many("i", {"c": 3, "a": 1, "b": 2})
    index.add("i", "z", 0)
    assert index.members("i") == ["z", "a", "b", "c"]
    index.add_many("i", {})  # nothing to add is no error and changes nothing
    assert index.size("i") == 4


def test_equal_scores_order_by_member(index):
    for member in ["delta", "alpha", "charlie", "bravo"]:
        index.add("i", member, 5.0)
    index.add("i", "first", 1.0)
    assert index.members("i") == ["first", "alpha", "bravo", "charlie", "delta"]
    # and paging through ties is stable: pages join up to the whole list, without repeats
    pages = [index.members("i", offset, 2) for offset in (0, 2, 4)]
    assert [m for p in pages for m in p] == index.members("i")


def test_adding_a_member_again_keeps_one_with_the_later_score(index):
    index.add("i", "a", 1.0)
    index.add("i", "b", 2.0)
    index.add("i", "a", 3.0)
    assert index.members("i") == ["b", "a"]
    assert index.size("i") == 2
    assert index.score("i", "a") == 3.0
    index.add_many("i", {"a": 0.5, "c": 9})
    assert index.members("i") == ["a", "b", "c"] and index.score("i", "a") == 0.5


def test_large_and_fractional_scores_keep_their_order(index):
    # epoch seconds with sub-second parts, as the models score by
    scores = {"x": 1_700_000_000.25, "y": 1_700_000_000.5, "w": 1_700_000_000.125, "v": 0.0}
    index.add_many("i", scores)
    assert index.members("i") == ["v", "w", "x", "y"]
    assert index.score("i", "x") == 1_700_000_000.25


# -- paging ---------------------------------------------------------------------------------------
def test_offset_and_limit_page_the_members(index):
    members = fill(index, "i", 10)
    assert index.members("i", 0, 3) == members[0:3]
    assert index.members("i", 3, 3) == members[3:6]
    assert index.members("i", 9, 3) == members[9:]  # a short last page
    assert index.members("i", 4) == members[4:]  # no limit: every member from the offset
    assert index.members("i", 0, None) == members
    assert index.members("i", 0, 10) == members
    assert index.members("i", 0, 100) == members


def test_an_offset_past_the_end_gives_nothing(index):
    fill(index, "i", 5)
    assert index.members("i", 5) == []
    assert index.members("i", 5, 2) == []
    assert index.members("i", 50, 10) == []
    assert index.members("i", 50) == []


def test_a_zero_limit_gives_nothing(index):
    fill(index, "i", 5)
    assert index.members("i", 0, 0) == []
    assert index.members("i", 2, 0) == []


def test_a_missing_index_is_empty(index):
    assert index.members("nothing") == []
    assert index.members("nothing", 3, 2) == []
    assert index.size("nothing") == 0
    assert index.score("nothing", "a") is None


# -- removal --------------------------------------------------------------------------------------
def test_remove_takes_out_one_member(index):
    index.add_many("i", {"a": 1, "b": 2, "c": 3})
    index.remove("i", "b")
    assert index.members("i") == ["a", "c"]
    assert index.size("i") == 2
    assert index.score("i", "b") is None
    index.remove("i", "b")  # again: no error
    index.remove("i", "never")
    index.remove("no-such-index", "a")
    assert index.members("i") == ["a", "c"]


def test_remove_if_score_removes_only_when_the_score_matches(index):
    index.add("i", "a", 1.0)
    index.add("i", "b", 2.0)
    assert index.remove_if_score("i", "a", 2.0) is False  # re-added meanwhile with another score
    assert index.members("i") == ["a", "b"]
    assert index.remove_if_score("i", "a", 1.0) is True
    assert index.members("i") == ["b"]
    assert index.remove_if_score("i", "a", 1.0) is False  # gone already
    assert index.remove_if_score("i", "never", 2.0) is False
    assert index.remove_if_score("no-such-index", "b", 2.0) is False
    assert index.members("i") == ["b"]


def test_remove_if_score_sees_a_re_added_member(index):
    index.add("i", "a", 1.0)
    seen = index.score("i", "a")
    index.add("i", "a", 5.0)  # someone re-added it after it was read
    assert index.remove_if_score("i", "a", seen) is False
    assert index.score("i", "a") == 5.0
    assert index.remove_if_score("i", "a", 5) is True  # an int score equal to the float one
    assert index.size("i") == 0


def test_remove_if_score_leaves_the_same_member_of_other_indexes(index):
    index.add("i", "a", 1.0)
    index.add("j", "a", 1.0)
    assert index.remove_if_score("i", "a", 1.0) is True
    assert index.members("i") == [] and index.members("j") == ["a"]


# -- size and score -------------------------------------------------------------------------------
def test_size_counts_members(index):
    assert index.size("i") == 0
    fill(index, "i", 7)
    assert index.size("i") == 7
    index.add("i", "m00", 100.0)  # again: still one
    assert index.size("i") == 7
    index.remove("i", "m01")
    assert index.size("i") == 6


def test_score_of_present_and_missing_members(index):
    index.add("i", "a", 2)
    assert index.score("i", "a") == 2.0
    assert isinstance(index.score("i", "a"), float)
    assert index.score("i", "missing") is None
    assert index.score("other", "a") is None


def test_scores_give_every_member_of_one_index_with_its_score(index):
    assert index.scores("i") == {}
    index.add_many("i", {"a": 1, "b": 2.5, "a\nb": 3})
    index.add("j", "c", 4)
    index.add("i", "a", 7)  # again: the later score
    assert index.scores("i") == {"a": 7.0, "b": 2.5, "a\nb": 3.0}
    assert all(isinstance(v, float) for v in index.scores("i").values())


# -- separation -----------------------------------------------------------------------------------
def test_drop_removes_one_index_and_leaves_the_others(index):
    index.add_many("i", {"a": 1, "b": 2})
    index.add_many("j", {"a": 1, "c": 3})
    index.add_many("i:sub", {"d": 4})  # a name that starts with the dropped one
    index.add_many("i\nx", {"e": 5})
    index.drop("i")
    assert index.members("i") == [] and index.size("i") == 0 and index.score("i", "a") is None
    assert index.members("j") == ["a", "c"]
    assert index.members("i:sub") == ["d"]
    assert index.members("i\nx") == ["e"]
    index.drop("i")  # again, and a missing one: no error
    index.drop("never")
    assert index.members("j") == ["a", "c"]


def test_flush_removes_every_index(index):
    index.add_many("i", {"a": 1})
    index.add_many("j", {"b": 1})
    index.flush()
    assert index.members("i") == [] and index.members("j") == []


def test_odd_members_are_kept_whole_and_apart(index):
    scores = {member: float(n) for n, member in enumerate(ODD_MEMBERS)}
    index.add_many("actors-readable:T:jane", scores)
    index.add("actors-readable:T", "jane:x", 0.5)
    index.add("executions:T_abc", "def", 0.5)
    index.add("executions:T", "abc_def", 0.5)
    assert index.members("actors-readable:T:jane") == ODD_MEMBERS
    for member, score in scores.items():
        assert index.score("actors-readable:T:jane", member) == score
    # names that join to the same text with ":" or "_" are separate indexes
    assert index.members("actors-readable:T") == ["jane:x"]
    assert index.members("executions:T_abc") == ["def"]
    assert index.members("executions:T") == ["abc_def"]
    assert index.score("executions:T", "def") is None
    index.remove("actors-readable:T:jane", "a\nb")
    assert index.score("actors-readable:T:jane", "a\nb") is None
    assert index.size("actors-readable:T:jane") == len(ODD_MEMBERS) - 1
    assert index.members("executions:T_abc") == ["def"] and index.members("executions:T") == ["abc_def"]


@pytest.mark.parametrize("first, second", [
    (("x", "a\nb"), ("x\na", "b")),
    (("x\ny", "a"), ("x", "y\na")),
], ids=["member-with-newline", "index-with-newline"])
def test_a_newline_in_a_name_and_a_member_does_not_merge_two_entries(index, first, second):
    (index_a, member_a), (index_b, member_b) = first, second
    index.add(index_a, member_a, 1.0)
    index.add(index_b, member_b, 2.0)
    assert index.members(index_a) == [member_a]
    assert index.members(index_b) == [member_b]
    assert index.size(index_a) == 1 and index.size(index_b) == 1
    index.remove(index_b, member_b)
    assert index.members(index_a) == [member_a]


def test_two_index_stores_are_separate(backend, make_index):
    if backend == "redis":
        pytest.skip("on Redis every index store of a test shares DB 15")
    one, two = make_index(), make_index()
    one.add("i", "a", 1)
    two.add("i", "b", 1)
    assert one.members("i") == ["a"] and two.members("i") == ["b"]
    one.flush()
    assert one.members("i") == [] and two.members("i") == ["b"]


def test_add_to_each_adds_to_several_indexes(index):
    index.add("b", "old", 1.0)
    index.add_to_each({"a": {"x": 2.0, "y": 1.0}, "b": {"new": 0.5}, "c": {}})
    assert index.members("a") == ["y", "x"]
    assert index.members("b") == ["new", "old"]
    assert index.members("c") == []
