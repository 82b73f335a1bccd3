"""The scores by hand on the oracle (scoring_oracle.py, which test_score_formulas.py ties to the service's formulas),
and the settings validation."""

import pytest
from pydantic import ValidationError

import scoring_oracle as sc
from crm_scoring.settings import ScoringSettings

W = ScoringSettings().loyalty_weights
S = ScoringSettings().satisfaction_weights


def test_loyalty_hand_computed_and_unknown_parts_left_out():
    # 5 orders: repeat 4/5; tenure 365/730; gaps cv 0.2 -> regularity 0.8; wallet unknown; satisfaction 90
    result = sc.loyalty(5, 365, 0.2, None, 90.0, W, 730)
    expected = (0.25 * 0.8 + 0.2 * 0.5 + 0.25 * 0.8 + 0.15 * 0.9) / (1 - 0.15) * 100
    assert result.value == pytest.approx(expected, abs=0.01)
    assert "share_of_wallet" not in result.inputs["weights"]
    assert "repeat" in result.explanation
    assert sc.loyalty(0, 0, None, None, None, W).value == 0.0


def test_satisfaction_components():
    # 100 shipments, 80 with a promise of which 72 on time, 2 damaged, 3 complaints, 2 resolved within SLA, survey 4/5
    # and 1 of its last 4 measured months missed an agreed service-level target (ServiceLevelBreached)
    result = sc.satisfaction(100, 80, 72, 2, 3, 2, 4.0, 4, 1, S)
    c = result.inputs["components"]
    assert c == {
        "on_time": 0.9,
        "damage_loss": 0.8,
        "complaints": 0.7,
        "resolution": pytest.approx(0.6667, abs=1e-4),
        "survey": 0.75,
        "service_levels": 0.75,
    }
    expected = 100 * (0.25 * 0.9 + 0.15 * 0.8 + 0.2 * 0.7 + 0.15 * 2 / 3 + 0.15 * 0.75 + 0.1 * 0.75)
    assert result.value == pytest.approx(expected, abs=0.01)
    assert "1 of 4 measured months missed a service-level target" in result.explanation
    # without measured months the component is unknown and its weight goes to the others
    unmeasured = sc.satisfaction(100, 80, 72, 2, 3, 2, 4.0, 0, 0, S)
    assert unmeasured.inputs["components"]["service_levels"] is None
    assert unmeasured.value == pytest.approx(100 * (0.25 * 0.9 + 0.15 * 0.8 + 0.2 * 0.7 + 0.15 * 2 / 3 + 0.15 * 0.75) / 0.9, abs=0.01)
    assert sc.satisfaction(0, 0, 0, 0, 0, 0, None, 0, 0, S).value is None


@pytest.mark.parametrize(
    "args,grade",
    [
        ((10, 10, 10, 0, 0, 0.0, 100000.0), "A"),
        ((10, 9, 8, 0, 0, 0.0, None), "B"),
        ((0, 0, 0, 0, 0, 0.0, None), "B"),
        ((10, 10, 6, 0, 0, 0.0, None), "C"),  # 60% on time
        ((10, 10, 10, 45, 0, 500.0, None), "C"),  # 45 days overdue
        ((10, 10, 10, 0, 0, 1500.0, 1000.0), "C"),  # over the credit limit
        ((10, 9, 9, 120, 0, 500.0, None), "D"),  # 120 days overdue: serious default
        ((10, 10, 8, 0, 2, 0.0, None), "D"),  # two past defaults
    ],
)
def test_credit_grade_rules(args, grade):
    result = sc.credit_grade(*args)
    assert result.value == grade
    assert result.explanation.startswith(grade)


def test_churn_signals_and_risk():
    # 40 order days over 400 days of history -> 9 expected in 90 days, 2 seen: the frequency dropped
    signals = sc.churn_signals(2, 40, 400, 1, 80.0, 60.0, 1)
    assert signals == ["ordering_frequency_dropped", "open_complaint_past_sla", "satisfaction_falling", "service_level_breached"]
    assert sc.churn_signals(9, 40, 400, 0, 80.0, 79.0, 0) == []
    assert sc.churn_risk(0.2, 0.1, []).value == "high"
    assert sc.churn_risk(0.9, 3.0, signals[:1]).value == "medium"
    assert sc.churn_risk(0.9, 3.0, signals[:2]).value == "high"
    assert sc.churn_risk(0.9, 3.0, []).value == "low"
    assert sc.churn_risk(None, None, []).value == "low"


def test_matrices_and_tier():
    assert sc.value_loyalty_cell(80, 20) == "win_loyalty"
    assert sc.credit_loyalty_cell("A", 70) == "gold"
    assert sc.credit_loyalty_cell("B", 30) == "to_develop"
    assert sc.credit_loyalty_cell("C", 70) == "to_watch"
    assert sc.credit_loyalty_cell("D", 10) == "to_drop"
    assert sc.value_matrix_cell(70, 70) == "important"
    assert sc.value_matrix_cell(70, 10) == "medium"  # current high, potential low
    assert sc.value_matrix_cell(10, 70) == "big"  # current low, potential high
    assert sc.value_matrix_cell(10, 10) == "small"
    assert sc.tier("A", "high", 5).value == "key_account"
    assert sc.tier("B", "high", 5).value == "at_risk"
    assert sc.tier("D", "low", 5).value == "small"
    assert sc.tier("C", "medium", 5).value == "ordinary"
    flagged = sc.tier("D", "high", 0, flagged_key_account=True)  # flagged by hand: a key account whatever its class and risk
    assert (flagged.value, flagged.explanation) == ("key_account", "Key account: flagged by hand on the profile.")
    assert sc.tier("A", "low", 5, flagged_key_account=True).explanation.endswith("and flagged by hand on the profile.")


def test_weights_that_do_not_add_up_are_refused():
    with pytest.raises(ValidationError, match="add up"):
        ScoringSettings(
            loyalty_weights={"repeat_rate": 0.5, "tenure": 0.2, "regularity": 0.25, "share_of_wallet": 0.15, "satisfaction": 0.15}
        )
    with pytest.raises(ValidationError, match="missing"):
        ScoringSettings(satisfaction_weights={"on_time": 1.0})
    with pytest.raises(ValidationError, match="room for D"):
        ScoringSettings(abc_cutoffs={"a": 0.5, "b": 0.3, "c": 0.3})


def test_weights_from_the_environment_are_checked_at_start_up(monkeypatch):
    monkeypatch.setenv("SCORING_CURRENT_VALUE_WEIGHTS", '{"revenue": 0.5, "margin": 0.5, "order_size": 0.5, "continuity": 0.5}')
    with pytest.raises(ValidationError, match="add up to 2"):
        ScoringSettings()
    monkeypatch.setenv("SCORING_CURRENT_VALUE_WEIGHTS", '{"revenue": 0.25, "margin": 0.25, "order_size": 0.25, "continuity": 0.25}')
    assert ScoringSettings().current_value_weights["revenue"] == 0.25


def test_current_potential_matrix_uses_the_seeds_labels():
    import numpy as np

    from crm_scoring.model import scores

    current, potential = np.array([80.0, 20.0, 80.0, 20.0]), np.array([80.0, 80.0, 20.0, 20.0])
    expected = ["important", "big", "medium", "small"]  # both high; current low, potential high; current high, potential low; both low
    assert [sc.value_matrix_cell(c, p) for c, p in zip(current, potential)] == expected
    assert list(scores.value_matrix_cells(current, potential)) == expected
