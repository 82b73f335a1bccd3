"""A generated customer base for the management-report tests (scoring's and the gateway dashboard's): profile, stored
scores, orders and announced states as pandas frames, stored straight into scoring's tables, and the figures the
reports must give computed from those frames with pandas (ranks, cut-offs and groupings done in Python, not in SQL)."""

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import insert

from crm_scoring.model.abc import class_counts
from crm_scoring.scoring.models import customer_scores, customers, orders, score_history
from scoring_support import AS_OF

UTC = dt.UTC
REGIONS, INDUSTRIES, MANAGERS = ["east", "north", "south"], ["retail", "auto", "pharma"], ["am-1", "am-2", "am-3", "am-4"]
TIERS = ["key_account", "ordinary", "small", "at_risk"]
SERVICES = ["warehousing", "trunk", "express"]
GRADES, RISKS = ["A", "B", "C", "D"], ["low", "medium", "high"]
CELLS = {
    "current_potential": ["important", "medium", "big", "small"],
    "value_loyalty": ["keep_close", "win_loyalty", "grow_value", "low_priority"],
    "loyalty_credit": ["gold", "to_develop", "to_watch", "to_drop"],
}
SEGMENTS = ["champions", "loyal", "potential_loyalist", "at_risk", "hibernating", "lost"]
MATRIX_COLUMN = {"current_potential": "value_matrix", "value_loyalty": "value_loyalty", "loyalty_credit": "credit_loyalty"}


def generated_base(n: int, seed: int = 7) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ids = [f"c{i:05d}" for i in range(n)]
    contribution = np.round(10 ** rng.uniform(1, 5, n), 2)
    contribution[rng.random(n) < 0.1] = 0.0  # customers that contribute nothing
    contribution[:40] = 5000.0  # ties: the customer id breaks them
    profile = pd.DataFrame(
        {
            "customer_id": ids,
            "region": rng.choice(REGIONS + [None], n),
            "industry": rng.choice(INDUSTRIES, n),
            "account_manager": rng.choice(MANAGERS, n),
        }
    )
    scores = pd.DataFrame(
        {
            "customer_id": ids,
            "tier": rng.choice(TIERS, n),
            "contribution": contribution,
            "revenue_12m": np.round(contribution * 1.3, 2),
            "credit_grade": rng.choice(GRADES + [None], n),
            "churn_risk": rng.choice(RISKS, n),
            "rfm_r": rng.integers(1, 6, n),
            "rfm_f": rng.integers(0, 6, n),
            **{MATRIX_COLUMN[m]: rng.choice(cells, n) for m, cells in CELLS.items()},
        }
    )
    scores["rfm_segment"] = rng.choice(SEGMENTS + [None], n)
    scores["abc_class"] = rng.choice(["A", "B", "C", "D", None], n)  # the class stored at the last population fit (Pareto report)
    per_customer = rng.integers(0, 4, n)
    owner = np.repeat(np.arange(n), per_customer)
    days = (dt.date(2026, 1, 1) - dt.date(1970, 1, 1)).days + rng.integers(0, 180, owner.size)
    order_rows = pd.DataFrame(
        {
            "order_id": [f"o{i}" for i in range(owner.size)],
            "customer_id": np.array(ids)[owner],
            "order_day": days,
            "amount": np.round(rng.uniform(10, 1000, owner.size), 2),
            "service_type": rng.choice(SERVICES, owner.size),
            "cancelled": rng.random(owner.size) < 0.05,
        }
    )
    # two announced states per customer: one before the period (some customers have none) and one inside it
    before = scores.sample(frac=0.8, random_state=seed).assign(
        scored_at=dt.datetime(2026, 2, 1, tzinfo=UTC),
        credit_grade=lambda d: rng.choice(GRADES, len(d)),
        churn_risk=lambda d: rng.choice(RISKS, len(d)),
    )
    inside = scores.assign(scored_at=dt.datetime(2026, 4, 1, tzinfo=UTC))
    return {"profile": profile, "scores": scores, "orders": order_rows, "history": pd.concat([before, inside])}


def _none(value):
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


async def store(db, base: dict[str, pd.DataFrame]) -> None:
    now = AS_OF
    async with db.transaction() as session:
        await session.execute(
            insert(customers),
            [
                {**{k: _none(v) for k, v in r.items()}, "name": r["customer_id"], "is_stub": 0, "first_seen_at": now}
                for r in base["profile"].to_dict("records")
            ],
        )
        await session.execute(
            insert(customer_scores),
            [
                {**{k: _none(v.item() if hasattr(v, "item") else v) for k, v in r.items()}, "computed_at": now, "as_of_day": 20634}
                for r in base["scores"].to_dict("records")
            ],
        )
        await session.execute(
            insert(orders),
            [
                {
                    "order_id": r["order_id"],
                    "customer_id": r["customer_id"],
                    "order_day": int(r["order_day"]),
                    "amount": float(r["amount"]),
                    "service_type": r["service_type"],
                    "cancelled_at": now if r["cancelled"] else None,
                }
                for r in base["orders"].to_dict("records")
            ],
        )
        await session.execute(
            insert(score_history),
            [
                {
                    "customer_id": r["customer_id"],
                    "scored_at": r["scored_at"],
                    "scores": {"credit_grade": _none(r["credit_grade"]), "churn_risk": r["churn_risk"]},
                    "credit_grade": _none(r["credit_grade"]),
                    "churn_risk": r["churn_risk"],
                }
                for r in base["history"].sort_values("scored_at").to_dict("records")
            ],
        )


def filtered(base, **f) -> pd.DataFrame:
    frame = base["scores"].merge(base["profile"], on="customer_id")
    for name in ("region", "industry", "account_manager", "tier"):
        if name in f:
            frame = frame[frame[name] == f[name]]
    return frame


def expected_classes(frame: pd.DataFrame, value: pd.Series, cumulative: list[tuple[str, float]], rest: str) -> pd.Series:
    """The model's rule (model.abc.class_counts): the first ceil(share * contributors) contributors, best first."""
    ranked = frame.assign(value=value.to_numpy()).sort_values(["value", "customer_id"], ascending=[False, True])
    contributors = int((ranked["value"] > 0).sum())
    labels = np.full(len(ranked), rest, dtype=object)
    counts = class_counts(
        contributors,
        cumulative[0][1],
        cumulative[1][1] - cumulative[0][1],
        (cumulative[2][1] - cumulative[1][1]) if len(cumulative) > 2 else 0.0,
    )
    for (label, _), upto in reversed(list(zip(cumulative, counts))):
        labels[:upto] = label
    labels[(ranked["value"] <= 0).to_numpy()] = rest
    return pd.Series(labels, index=ranked.index).reindex(frame.index)


def split_counts(report_split: dict) -> dict:
    return {row["class"]: (row["customers"], row["revenue"]) for row in report_split["classes"] if row["customers"]}


def grouped(frame: pd.DataFrame, labels: pd.Series, value: pd.Series) -> dict:
    out = (
        frame.assign(label=labels.to_numpy(), value=value.clip(lower=0).to_numpy())
        .groupby("label")
        .agg(n=("customer_id", "size"), revenue=("value", "sum"))
    )
    return {label: (int(row.n), pytest.approx(round(row.revenue, 2), abs=0.05)) for label, row in out.iterrows()}
