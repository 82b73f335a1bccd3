"""The oracle of the scoring of feature rows: a per-customer loop over scoring_oracle.py (the population model, CLV and
RFM/ABC classes from the service). A test checks that crm_scoring.model.engine gives identical records."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

import scoring_oracle as sc
from crm_scoring.model import rfm
from crm_scoring.model.engine import DEFAULT_NORMS, PopulationModel, _clv, contribution
from crm_scoring.model.features import RECENT_DAYS


def _none(value):
    if value is None:
        return None
    try:
        if isinstance(value, float) and math.isnan(value):
            return None
    except TypeError:
        pass
    return value


def score_features_one_by_one(features: pd.DataFrame, model: PopulationModel | None, settings, as_of_day: int) -> list[dict[str, Any]]:
    """One record per customer: every score, the matrices, the tier and a `detail` of explanations."""
    if features.empty:
        return []
    norms = model.norms if model is not None else DEFAULT_NORMS
    clv, expected90, alive, margin_per_order_day = _clv(features, model, settings)
    contrib = contribution(features, model.abc_basis if model is not None else settings.abc_basis).to_numpy(dtype=float)
    clv, expected90, alive, margin_per_order_day = (s.to_numpy(dtype=float) for s in (clv, expected90, alive, margin_per_order_day))
    records = []
    for i, (cid, row) in enumerate(zip(features.index, features.itertuples(index=False))):
        has_orders = row.orders_total > 0
        sow = _none(row.share_of_wallet)
        cv = sc.current_value(
            row.revenue_window, row.margin_window, row.avg_order_window, row.months_active, norms, settings.current_value_weights
        )
        pv = sc.potential_value(_none(row.growth_rate), row.services_used, sow, float(clv[i]), norms, settings.potential_value_weights)
        sat = sc.satisfaction(
            row.shipments,
            row.on_time_known,
            row.on_time_count,
            row.incidents,
            row.complaints,
            row.complaints_within_sla,
            _none(row.survey_mean),
            int(row.service_level_months),
            int(row.service_level_breaches),
            settings.satisfaction_weights,
        )
        sat_recent = (
            sc.satisfaction(
                row.shipments_recent,
                row.on_time_known_recent,
                row.on_time_count_recent,
                row.incidents_recent,
                row.complaints_recent,
                0.0 if row.complaints_recent else 0.0,
                _none(row.survey_mean_recent),
                int(row.service_level_months_recent),
                int(row.service_level_breaches_recent),
                {**settings.satisfaction_weights, "resolution": 0.0},
            )
            if (row.shipments_recent or row.complaints_recent)
            else sc.Explained(None)
        )
        tenure = (as_of_day - row.first_order_day) if has_orders else 0.0
        loy = sc.loyalty(row.orders_total, tenure, _none(row.gap_cv), sow, sat.value, settings.loyalty_weights, settings.tenure_full_days)
        credit = sc.credit_grade(
            row.invoices,
            row.invoices_paid,
            row.invoices_paid_on_time,
            float(row.max_open_days_overdue),
            int(row.defaults),
            float(row.outstanding),
            _none(row.credit_limit),
            settings.default_days,
        )
        history_days = max(0.0, (as_of_day - RECENT_DAYS) - row.first_order_day) if has_orders else 0.0
        signals = sc.churn_signals(
            int(row.order_days_recent),
            int(row.order_days_before),
            history_days,
            int(row.open_past_sla),
            sat.value,
            sat_recent.value,
            int(row.service_level_breaches_recent),
            drop_ratio=settings.frequency_drop_ratio,
            satisfaction_drop=settings.satisfaction_drop_points,
        )
        p_alive = _none(float(alive[i])) if has_orders else None
        exp90 = _none(float(expected90[i])) if has_orders else None
        risk = (
            sc.churn_risk(p_alive, exp90, signals, high=settings.p_alive_high_risk, medium=settings.p_alive_medium_risk)
            if has_orders
            else sc.Explained("low", {"signals": signals}, "low: no orders yet.")
        )
        if not has_orders and signals:
            risk = sc.churn_risk(None, None, signals, high=settings.p_alive_high_risk, medium=settings.p_alive_medium_risk)
        record: dict[str, Any] = {"customer_id": cid}
        if model is not None:
            abc_class = sc.abc_class(float(contrib[i]), model.abc)
            if has_orders:
                r = sc.rfm_score(float(as_of_day - row.last_order_day), model.rfm["r"])
                active = row.orders_window > 0
                f = sc.rfm_score(float(rfm.frequency_key(row.orders_window, row.revenue_window)), model.rfm["f"]) if active else 0
                m = sc.rfm_score(float(row.revenue_window), model.rfm["m"]) if active else 0
                segment = rfm.segment(r, f, m)
            else:
                r = f = m = None
                segment = None
        else:
            abc_class, r, f, m, segment = None, None, None, None, None
        tier = sc.tier(abc_class, risk.value, row.orders_window, bool(row.key_account_flag))
        loyalty_score = loy.value
        record.update(
            tier=tier.value,
            abc_class=abc_class,
            rfm_r=r,
            rfm_f=f,
            rfm_m=m,
            rfm_segment=segment,
            credit_grade=credit.value,
            churn_risk=risk.value,
            current_value=cv.value,
            potential_value=pv.value,
            loyalty=loyalty_score,
            satisfaction=sat.value,
            p_alive=None if p_alive is None else round(p_alive, 6),
            expected_orders_90d=None if exp90 is None else round(exp90, 4),
            clv_12m=round(float(clv[i]), 2),
            revenue_12m=round(float(row.revenue_window), 2),
            margin_12m=round(float(row.margin_window), 2),
            orders_12m=int(row.orders_window),
            contribution=round(float(contrib[i]), 2),
            value_loyalty=sc.value_loyalty_cell(cv.value, loyalty_score, settings.matrix_threshold),
            credit_loyalty=sc.credit_loyalty_cell(credit.value, loyalty_score, settings.matrix_threshold),
            value_matrix=sc.value_matrix_cell(cv.value, pv.value, settings.matrix_threshold),
        )
        abc_text = None
        if model is not None:
            abc_text = sc.Explained(
                abc_class,
                {"basis": model.abc_basis, "contribution_12m": record["contribution"], "thresholds": model.abc.as_dict()},
                f"Class {abc_class}: {model.abc_basis} over 12 months {record['contribution']:,.0f} against the thresholds "
                f"A>={model.abc.a}, B>={model.abc.b}, C>={model.abc.c}.",
            ).as_dict()
        record["detail"] = {
            "current_value": cv.as_dict(),
            "potential_value": pv.as_dict(),
            "abc_class": abc_text,
            "rfm": None
            if r is None
            else {
                "value": {"r": r, "f": f, "m": m, "segment": segment},
                "inputs": {
                    "recency_days": int(as_of_day - row.last_order_day),
                    "orders_12m": int(row.orders_window),
                    "revenue_12m": record["revenue_12m"],
                },
                "explanation": sc.rfm_describe(r, f, m, segment),
            },
            "loyalty": loy.as_dict(),
            "satisfaction": sat.as_dict(),
            "credit_grade": credit.as_dict(),
            "churn_risk": risk.as_dict(),
            "lifetime_value": {
                "value": record["clv_12m"],
                "inputs": {
                    "expected_margin_per_order_day": round(float(margin_per_order_day[i]), 2),
                    "model": "bgnbd+gamma_gamma" if model is not None and model.bgnbd is not None else "run_rate",
                },
                "explanation": "Expected order days in 12 months x expected margin per order day (Gamma-Gamma), less the historical cost "
                "to serve (damage, loss, compensation) per order day.",
            },
            "tier": tier.as_dict(),
            "matrices": {
                "value_loyalty": record["value_loyalty"],
                "credit_loyalty": record["credit_loyalty"],
                "current_potential": record["value_matrix"],
            },
        }
        records.append(record)
    return records
