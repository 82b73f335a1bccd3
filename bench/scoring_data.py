"""Realistic order histories for the scoring benchmark: heavy-tailed (lognormal) customer sizes and frequencies.

A few shippers order every day and spend a lot, most order now and then; some stop ordering (churn).
Everything is generated with numpy in one pass, deterministic for a seed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

SERVICE_TYPES = np.array(["warehousing", "trunk", "distribution", "express", "cold_chain"], dtype=object)
EPOCH_DAY_START = (dt.date(2024, 1, 1) - dt.date(1970, 1, 1)).days


@dataclass
class OrderHistory:
    customer: np.ndarray  # int index 0..n-1
    order_day: np.ndarray  # days since 1970
    amount: np.ndarray
    margin: np.ndarray
    service: np.ndarray  # index into SERVICE_TYPES
    n_customers: int
    first_day: int
    last_day: int

    def customer_ids(self) -> np.ndarray:
        return np.char.add("cust-", np.char.zfill(self.customer.astype(str), 7))


def generate(n_customers: int = 100_000, n_orders: int = 5_000_000, *, days: int = 730, seed: int = 1) -> OrderHistory:
    rng = np.random.default_rng(seed)
    n_orders = max(n_orders, n_customers)
    # order counts: lognormal (heavy-tailed) weights; everyone has at least one order
    weights = rng.lognormal(0.0, 1.4, n_customers)
    counts = 1 + rng.multinomial(n_orders - n_customers, weights / weights.sum())
    customer = np.repeat(np.arange(n_customers), counts)
    # lifetimes: start somewhere in the first 80% of the period; a third of the customers stop early
    start = rng.uniform(0, days * 0.8, n_customers)
    end = np.where(rng.random(n_customers) < 0.33, start + rng.uniform(30, days, n_customers), days)
    end = np.minimum(end, days)
    span = np.maximum(end - start, 1.0)
    offsets = rng.random(customer.size) * span[customer]
    order_day = EPOCH_DAY_START + np.floor(start[customer] + offsets).astype(np.int64)
    # sizes: lognormal customer mean order value, lognormal noise per order. With the counts this gives
    # the shape the domain describes: top 20% of customers ~80% of revenue, top 1% over 10% (~25%)
    size = 200 * rng.lognormal(0.0, 0.9, n_customers)
    amount = np.round(size[customer] * rng.lognormal(0, 0.5, customer.size), 2)
    margin_rate = np.clip(rng.normal(0.18, 0.08, n_customers), -0.05, 0.6)
    margin = np.round(amount * margin_rate[customer], 2)
    favourite = rng.integers(0, 5, n_customers)
    service = np.where(rng.random(customer.size) < 0.8, favourite[customer], rng.integers(0, 5, customer.size))
    return OrderHistory(customer, order_day, amount, margin, service, n_customers, EPOCH_DAY_START, EPOCH_DAY_START + days)


def write_csv(history: OrderHistory, path, limit: int | None = None) -> int:
    """The import-orders CSV format: customer_id, order_date, amount, margin, service_type."""
    import pandas as pd

    n = history.customer.size if limit is None else min(limit, history.customer.size)
    dates = pd.to_datetime(history.order_day[:n], unit="D").strftime("%Y-%m-%d")
    frame = pd.DataFrame(
        {
            "customer_id": history.customer_ids()[:n],
            "order_date": dates,
            "amount": history.amount[:n],
            "margin": history.margin[:n],
            "service_type": SERVICE_TYPES[history.service[:n]],
        }
    )
    frame.to_csv(path, index=False)
    return n
