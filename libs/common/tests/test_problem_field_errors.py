"""A field error's location is a list of strings however the service built it: the documented ValidationProblem says
so, and schemathesis holds every 422 to it (a list index raised as an int answered a body the schema refused)."""

from __future__ import annotations

from crm_common.problems import Problem


def test_a_field_error_built_with_a_list_index_is_answered_with_text_locations():
    problem = Problem(422, "Validation failed", errors=[{"loc": ["body", "agents", 2], "msg": "listed twice", "type": "value_error"}])
    assert problem.body()["errors"] == [{"loc": ["body", "agents", "2"], "msg": "listed twice", "type": "value_error"}]


def test_errors_without_a_location_are_left_as_they_are():
    problem = Problem(422, "Validation failed", errors=[{"msg": "a segment needs a criterion"}], other=[1, 2])
    assert problem.body()["errors"] == [{"msg": "a segment needs a criterion"}]
    assert problem.body()["other"] == [1, 2]
