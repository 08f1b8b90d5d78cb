"""Queries as attribute constraints (offline parser, editable text) and how fusion scores people against them."""

import types

import pytest

from person_finder.core.attributes.constraints import (attribute_match, constrainable_fields, constraint_scores,
                                                        contradicted, format_constraints, parse_offline,
                                                        parse_query, read_constraints)
from person_finder.core.attributes.schema import allowed_values, PersonAttributes
from person_finder.core.search.fusion import check_fusion, fuse


@pytest.mark.parametrize("query, expected", [
    ("a woman in a white t-shirt with a brown shoulder bag",
     {"gender": "female", "upper_type": "t-shirt", "upper_colors": "white", "shoulder_bag": "yes",
      "shoulder_bag_color": "brown"}),
    ("red top and blue trousers, no backpack",
     {"upper_colors": "red", "lower_type": "trousers", "lower_colors": "blue", "backpack": "no"}),
    ("no hat, red backpack", {"hat": "no", "backpack": "yes", "backpack_color": "red"}),
    ("man in dark blue jeans and a grey jacket wearing sunglasses",
     {"gender": "male", "upper_type": "jacket", "upper_colors": "gray", "lower_type": "jeans", "lower_colors": "blue",
      "glasses": "sunglasses"}),
    ("someone in a green short-sleeved shirt with gray shorts, carrying a black handbag",
     {"upper_type": "shirt", "sleeve_length": "short", "upper_colors": "green", "lower_type": "shorts",
      "lower_length": "short", "lower_colors": "gray", "handbag": "yes", "handbag_color": "black"}),
    ("a person dressed in white", {"upper_colors": "white"}),
    ("old man with white sneakers", {"gender": "male", "age_group": "senior", "shoes": "sneakers",
                                     "shoe_color": "white"}),
])
def test_offline_parser_reads_the_schema_vocabulary(query, expected):
    assert parse_offline(query) == expected


def test_every_parse_only_uses_allowed_values():
    parsed = parse_offline("a girl with long hair in a pink dress and boots, without glasses, running")
    assert read_constraints(parsed) == parsed
    assert parsed["glasses"] == "no" and parsed["lower_type"] == "dress" and parsed["hair_length"] == "long"
    assert "ethnicity" not in constrainable_fields() and "description" not in constrainable_fields()


def test_constraints_round_trip_as_editable_text_and_bad_edits_are_named():
    constraints = {"upper_colors": "red", "backpack": "no"}
    assert read_constraints(format_constraints(constraints)) == constraints
    with pytest.raises(ValueError, match="unknown attribute 'shirt_colour'.*upper_colors"):
        read_constraints("shirt_colour=red")
    with pytest.raises(ValueError, match=r"upper_colors='teal' is not allowed; use one of \['black'"):
        read_constraints({"upper_colors": "teal"})
    with pytest.raises(ValueError, match="not attribute=value"):
        read_constraints("red top")
    assert read_constraints("") == {} and read_constraints(None) == {}


def test_auto_parser_is_offline_without_a_key(monkeypatch):
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    assert parse_query("red top") == {"upper_colors": "red"}
    with pytest.raises(ValueError, match="parser='llm'; use one of"):
        parse_query("red top", parser="llm")
    with pytest.raises(ValueError, match="query is empty"):
        parse_query("  ")


def test_unknown_is_never_a_contradiction_and_confidence_weighs():
    wanted = {"upper_colors": "red", "hat": "yes", "backpack": "no"}
    unknown = {"upper_colors": [], "hat": "unknown", "backpack": None}
    assert constraint_scores(wanted, unknown) == {"upper_colors": 0.0, "hat": 0.0, "backpack": 0.0}
    assert attribute_match(wanted, None) == 0.0 and contradicted(wanted, unknown, hard=True) == []
    sure = {"upper_colors": ["red", "white"], "hat": "no", "backpack": "no",
            "confidence": {"upper_colors": 0.9, "hat": 0.8, "backpack": 1.0}}
    assert constraint_scores(wanted, sure) == {"upper_colors": 0.9, "hat": -0.8, "backpack": 1.0}
    unsure = {**sure, "confidence": {"upper_colors": 0.9, "hat": 0.1, "backpack": 1.0}}
    assert attribute_match(wanted, unsure) > attribute_match(wanted, sure)  # a weak "no hat" costs less
    assert contradicted(wanted, sure, hard=["hat"]) == ["hat"] and contradicted(wanted, sure, hard=["backpack"]) == []


def _people(scores):
    return [types.SimpleNamespace(score=s, best=i) for i, s in enumerate(scores)]


def test_fusion_reranks_by_attributes_and_flags_hard_contradictions():
    people = _people([0.30, 0.20, 0.10])
    docs = {0: {"upper_colors": ["blue"], "hat": "no"},      # most similar, wrong top
            1: {"upper_colors": ["unknown"], "hat": "unknown"},
            2: {"upper_colors": ["red"], "hat": "yes"}}      # least similar, everything right
    wanted = {"upper_colors": "red", "hat": "yes"}
    ranked = fuse(people, lambda p: p.best, docs, wanted)  # the default weight: attributes outweigh similarity
    assert [f.person.best for f in ranked] == [2, 1, 0]
    assert [f.attribute_score for f in ranked] == [1.0, 0.0, -1.0]
    assert [f.person.best for f in fuse(people, lambda p: p.best, docs, wanted, weight=0.0)] == [0, 1, 2]
    hard = fuse(people, lambda p: p.best, docs, wanted, weight=0.5, hard=["upper_colors"])
    assert {f.person.best: f.contradicted for f in hard} == {2: [], 1: [], 0: ["upper_colors"]}


def test_fusion_arguments_are_checked():
    with pytest.raises(ValueError, match="attribute_weight=1.5"):
        check_fusion({"hat": "yes"}, 1.5, False)
    with pytest.raises(ValueError, match=r"hard constraints \['backpack'\] are not among"):
        check_fusion({"hat": "yes"}, 0.5, ["backpack"])
    assert check_fusion("hat=yes", 0.5, "hat") == ({"hat": "yes"}, 0.5, ["hat"])


def test_offline_parse_covers_the_schema_values():
    """Each constrainable value, said in a plain phrase, is parsed back (bench/attribute_search.py prints the table)."""
    from person_finder.testing.attribute_queries import value_queries

    cases = value_queries()
    right = [parse_offline(query).get(field) == value for field, value, query in cases]
    assert len(cases) >= 60 and sum(right) / len(right) >= 0.9
    fields = {field for field, _, _ in cases}
    assert all(allowed_values(PersonAttributes, f) for f in fields)
