"""Per-customer features from fact tables, vectorised with pandas (one code path for one customer or 100k).

Time is counted in whole days since 1970-01-01 (`day` numbers); `as_of_day` is the scoring day.
Inputs are DataFrames with these columns (extra columns are ignored):

* orders: customer_id, order_day, amount, margin (effective), service_type, cancelled, shipped,
  on_time (1.0 / 0.0 / NaN when no promise or no delivery), damaged, lost, loss
* complaints: customer_id, filed_day, resolved_day (NaN when open), within_sla (1/0/NaN), priority, compensation
* surveys: customer_id, score, answered_day
* invoices: customer_id, amount, due_day, paid_day (NaN when unpaid), days_overdue (largest reported)
* service_levels: customer_id, end_day (the day after the measured month), breached (the month missed an agreed
  target: ServiceLevelBreached)
* customers: customer_id, credit_limit, share_of_wallet (declared), potential_volume (the customer's whole yearly
  logistics spend, declared). The feature `share_of_wallet` is the declared share, else the window's revenue over the
  potential volume (capped at 1), else NaN (unknown). size_band: `key_account_flag` is true for "key_account".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

RECENT_DAYS = 90
ALL_SERVICE_TYPES = ("warehousing", "trunk", "distribution", "express", "cold_chain")

ORDER_COLUMNS = [
    "customer_id",
    "order_day",
    "amount",
    "margin",
    "service_type",
    "cancelled",
    "shipped",
    "on_time",
    "damaged",
    "lost",
    "loss",
]
COMPLAINT_COLUMNS = ["customer_id", "filed_day", "resolved_day", "within_sla", "priority", "compensation", "sla_days"]
SURVEY_COLUMNS = ["customer_id", "score", "answered_day"]
INVOICE_COLUMNS = ["customer_id", "amount", "due_day", "paid_day", "days_overdue"]
SERVICE_LEVEL_COLUMNS = ["customer_id", "end_day", "breached"]
CUSTOMER_COLUMNS = ["customer_id", "credit_limit", "share_of_wallet", "potential_volume", "size_band"]
KEY_ACCOUNT_BAND = "key_account"  # the profile's size band that flags a key account by hand


@dataclass
class Facts:
    orders: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=ORDER_COLUMNS))
    complaints: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=COMPLAINT_COLUMNS))
    surveys: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SURVEY_COLUMNS))
    invoices: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=INVOICE_COLUMNS))
    customers: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=CUSTOMER_COLUMNS))
    service_levels: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SERVICE_LEVEL_COLUMNS))


def _frame(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The frame with every expected column (missing ones all NaN); not copied when nothing is missing (it is only read)."""
    missing = [column for column in columns if column not in df.columns]
    return df.assign(**{column: np.nan for column in missing}) if missing else df


def customer_index(facts: Facts) -> pd.Index:
    ids = pd.concat(
        [
            facts.customers["customer_id"],
            facts.orders["customer_id"],
            facts.complaints["customer_id"],
            facts.surveys["customer_id"],
            facts.invoices["customer_id"],
        ],
        ignore_index=True,
    ).astype(str)
    return pd.Index(np.sort(ids.unique().astype(object)), name="customer_id")


FRAMES = ("customers", "orders", "complaints", "surveys", "invoices", "service_levels")


def customer_codes(facts: Facts) -> tuple[pd.Index, dict[str, np.ndarray]]:
    """customer_index(facts) and each frame's integer codes into it. Each frame's ids are hashed once
    (factorize); only the distinct ids are converted to str, sorted and looked up."""
    local: dict[str, tuple[np.ndarray, pd.Index]] = {}
    for name in FRAMES:
        df = getattr(facts, name)
        if len(df):
            codes, uniques = pd.factorize(df["customer_id"].to_numpy(dtype=object), use_na_sentinel=False)
            local[name] = (codes, pd.Index(uniques).astype(str))
    if not local:
        return customer_index(facts), {name: np.zeros(0, dtype=np.int64) for name in FRAMES}
    distinct = pd.unique(np.concatenate([uniques.to_numpy(dtype=object) for _, uniques in local.values()]))
    ids = pd.Index(np.sort(distinct.astype(object)), name="customer_id")
    out = {name: np.zeros(0, dtype=np.int64) for name in FRAMES}
    for name, (codes, uniques) in local.items():
        out[name] = ids.get_indexer(uniques)[codes]
    return ids, out


class _Agg:
    """Per-customer aggregations with np.bincount on integer customer codes: fast at 1 customer and at 100k."""

    def __init__(self, n: int):
        self.n = n

    def count(self, codes: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        c = codes if mask is None else codes[mask]
        return np.bincount(c, minlength=self.n)[: self.n]

    def sum(self, codes: np.ndarray, values: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        if mask is not None:
            codes, values = codes[mask], values[mask]
        return np.bincount(codes, weights=values, minlength=self.n)[: self.n]

    def max(self, codes: np.ndarray, values: np.ndarray, fill: float = np.nan) -> np.ndarray:
        out = np.full(self.n, -np.inf)
        np.maximum.at(out, codes, values)
        return np.where(np.isneginf(out), fill, out)

    def min(self, codes: np.ndarray, values: np.ndarray, fill: float = np.nan) -> np.ndarray:
        out = np.full(self.n, np.inf)
        np.minimum.at(out, codes, values)
        return np.where(np.isposinf(out), fill, out)

    def distinct_count(self, codes: np.ndarray, values: np.ndarray, kinds: int) -> np.ndarray:
        """Number of distinct values per code, for values 0..kinds-1 (a code x value table when it is small)."""
        if self.n * kinds > 50_000_000:
            return self.count(self.distinct(codes, values)[0])
        table = np.bincount(codes.astype(np.int64) * kinds + values, minlength=self.n * kinds)[: self.n * kinds]
        return (table.reshape(self.n, kinds) > 0).sum(axis=1).astype(np.int64)

    def first_last(self, codes: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The first and last value of each code in arrays sorted by code (NaN for an absent code)."""
        first, last = np.full(self.n, np.nan), np.full(self.n, np.nan)
        if codes.size:
            starts = np.flatnonzero(np.concatenate(([True], codes[1:] != codes[:-1])))
            ends = np.concatenate((starts[1:] - 1, [codes.size - 1]))
            first[codes[starts]] = values[starts]
            last[codes[ends]] = values[ends]
        return first, last

    def distinct(self, codes: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distinct (code, value) pairs of non-negative integer values, sorted by code then value."""
        if codes.size == 0:
            return codes, values
        span = int(values.max()) + 1
        keys = np.sort(codes.astype(np.int64) * span + values.astype(np.int64))  # sort-based unique: faster than np.unique's hashing here
        keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
        return keys // span, keys % span


def _num(series: pd.Series, fill: float = np.nan) -> np.ndarray:
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=fill) if len(series) else np.zeros(0)


def _flag(series: pd.Series) -> np.ndarray:
    if not len(series):
        return np.zeros(0, dtype=bool)
    if getattr(series, "dtype", None) == np.dtype(bool):
        return series.to_numpy()
    return pd.Series(series).fillna(False).astype(bool).to_numpy()


def compute_features(facts: Facts, as_of_day: int, window_days: int = 365, default_days: int = 90) -> pd.DataFrame:
    """One row per customer (index: customer_id)."""
    ids, codes = customer_codes(facts)
    agg = _Agg(len(ids))
    out: dict[str, np.ndarray] = {}
    _order_features(out, agg, _frame(facts.orders, ORDER_COLUMNS), codes["orders"], as_of_day, window_days)
    _complaint_features(
        out,
        agg,
        _frame(facts.complaints, COMPLAINT_COLUMNS),
        codes["complaints"],
        _frame(facts.surveys, SURVEY_COLUMNS),
        codes["surveys"],
        as_of_day,
    )
    _invoice_features(out, agg, _frame(facts.invoices, INVOICE_COLUMNS), codes["invoices"], as_of_day, default_days)
    _service_level_features(out, agg, _frame(facts.service_levels, SERVICE_LEVEL_COLUMNS), codes["service_levels"], as_of_day, window_days)
    customers = _frame(facts.customers, CUSTOMER_COLUMNS)
    first = ~customers["customer_id"].duplicated().to_numpy()  # the first row of each customer id, as drop_duplicates
    for column in ("credit_limit", "share_of_wallet", "potential_volume"):
        values = np.full(len(ids), np.nan)
        values[codes["customers"][first]] = _num(customers[column])[first]
        out[column] = values
    flagged = np.zeros(len(ids), dtype=bool)
    flagged[codes["customers"][first]] = (customers["size_band"].to_numpy(dtype=object) == KEY_ACCOUNT_BAND)[first]
    out["key_account_flag"] = flagged
    out["share_of_wallet"] = effective_share_of_wallet(out["share_of_wallet"], out["revenue_window"], out.pop("potential_volume"))
    return pd.DataFrame(out, index=ids)


def with_service_levels(features: pd.DataFrame, months: pd.DataFrame, as_of_day: int, window_days: int = 365) -> pd.DataFrame:
    """The features with their service-level columns computed again from `months` (the same records, judged since):
    the rest of the features is not recomputed. A record of a customer outside the features' index is ignored."""
    months = _frame(months, SERVICE_LEVEL_COLUMNS)
    code = features.index.get_indexer(months["customer_id"].astype(str)) if len(months) else np.zeros(0, dtype=np.int64)
    known = code >= 0
    out: dict[str, np.ndarray] = {}
    _service_level_features(out, _Agg(len(features)), months[known], code[known], as_of_day, window_days)
    return features.assign(**out)


def effective_share_of_wallet(declared: np.ndarray, revenue_window: np.ndarray, potential_volume: np.ndarray) -> np.ndarray:
    """The declared share where there is one; else what the window's revenue is of the declared potential volume."""
    with np.errstate(divide="ignore", invalid="ignore"):
        estimated = np.where(potential_volume > 0, np.minimum(revenue_window / potential_volume, 1.0), np.nan)
    return np.where(np.isnan(declared), estimated, declared)


def _distinct_services(agg: _Agg, code: np.ndarray, services: np.ndarray) -> np.ndarray:
    service_codes, kinds = pd.factorize(services)  # a missing service type (None / NaN) is -1
    known = service_codes >= 0
    if not known.any():
        return np.zeros(agg.n, dtype=np.int64)
    return agg.distinct_count(code[known], service_codes[known], len(kinds))


def _order_features(out: dict[str, np.ndarray], agg: _Agg, orders: pd.DataFrame, codes: np.ndarray, as_of: int, window: int) -> None:
    n = agg.n
    day_all = _num(orders["order_day"])
    keep = ~np.isnan(day_all)
    day = day_all[keep].astype(np.int64)
    live_kept = (~_flag(orders["cancelled"])[keep]) & (day <= as_of)
    # rows of `orders` that count; all of them (no copies, views) in the usual case
    live = slice(None) if live_kept.all() and keep.all() else np.flatnonzero(keep)[live_kept]
    code, day = codes[live], day[live_kept]
    services_used = _distinct_services(
        agg, code, orders["service_type"].to_numpy(dtype=object)[live] if len(orders) else np.zeros(0, dtype=object)
    )
    amount = _num(orders["amount"], 0.0)[live]
    margin = _num(orders["margin"], 0.0)[live]
    shipped = _flag(orders["shipped"])[live]
    on_time = _num(orders["on_time"])[live]
    incident = (_flag(orders["damaged"]) | _flag(orders["lost"]))[live]
    loss = _num(orders["loss"], 0.0)[live]

    orders_total = agg.count(code)
    out["orders_total"] = orders_total
    # distinct order days: the "transactions" of BG/NBD and the gaps of regularity; sorted, they also give first and last
    dc, dd = agg.distinct(code, day - (day.min() if day.size else 0))
    if day.size:
        dd = dd + day.min()
    out["first_order_day"], out["last_order_day"] = agg.first_last(dc, dd)
    out["revenue_total"] = agg.sum(code, amount)
    out["margin_total"] = agg.sum(code, margin)
    out["services_used"] = services_used

    order_days = agg.count(dc)
    out["order_days"] = order_days
    same = dc[1:] == dc[:-1]
    gap_code, gap = dc[1:][same], (dd[1:] - dd[:-1])[same].astype(float)
    gap_count = agg.count(gap_code)
    with np.errstate(divide="ignore", invalid="ignore"):
        gap_mean = agg.sum(gap_code, gap) / gap_count
        gap_var = agg.sum(gap_code, gap * gap) / gap_count - gap_mean**2
        out["gap_cv"] = np.where(gap_count >= 2, np.sqrt(np.maximum(gap_var, 0.0)) / gap_mean, np.nan)

    in_window = day > as_of - window
    orders_window = agg.count(code, in_window)
    revenue_window = agg.sum(code, amount, in_window)
    out["orders_window"] = orders_window
    out["revenue_window"] = revenue_window
    out["margin_window"] = agg.sum(code, margin, in_window)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["avg_order_window"] = np.where(orders_window > 0, revenue_window / orders_window, 0.0)

    # continuity and growth over 12 monthly buckets (30-day months ending at as_of)
    month = (as_of - day) // 30
    recent12 = month < 12
    out["months_active"] = agg.distinct_count(code[recent12], month[recent12], 12)
    monthly = np.bincount(code[recent12] * 12 + month[recent12], weights=amount[recent12], minlength=n * 12)[: n * 12].reshape(n, 12)
    t = 11 - np.arange(12, dtype=float)  # column m is m months ago
    tc = t - t.mean()
    mean = monthly.mean(axis=1)
    slope = (monthly - mean[:, None]) @ tc / (tc @ tc)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["growth_rate"] = np.where(mean > 0, slope * 12 / mean, np.nan)

    # ordering frequency against the customer's own history
    out["order_days_recent"] = agg.count(dc, dd > as_of - RECENT_DAYS)
    out["order_days_before"] = agg.count(dc, dd <= as_of - RECENT_DAYS)

    # service quality
    recent = day > as_of - RECENT_DAYS
    known = shipped & ~np.isnan(on_time)
    out["shipments"] = agg.count(code, shipped)
    out["on_time_known"] = agg.count(code, known)
    out["on_time_count"] = agg.sum(code, np.nan_to_num(on_time), known)
    out["incidents"] = agg.count(code, shipped & incident)
    out["incident_loss"] = agg.sum(code, loss, shipped)
    out["shipments_recent"] = agg.count(code, shipped & recent)
    out["on_time_known_recent"] = agg.count(code, known & recent)
    out["on_time_count_recent"] = agg.sum(code, np.nan_to_num(on_time), known & recent)
    out["incidents_recent"] = agg.count(code, shipped & incident & recent)

    # model inputs (weeks): repeat transactions, time of the last, age
    first, last = out["first_order_day"], out["last_order_day"]
    out["bg_x"] = np.maximum(order_days - 1, 0)
    out["bg_t_x"] = np.nan_to_num((last - first) / 7.0)
    out["bg_T"] = np.nan_to_num((as_of - first) / 7.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["orders_per_day"] = np.where(order_days > 0, orders_total / order_days, 1.0)
    # Gamma-Gamma as in the paper: the mean value of the repeat transactions (order days after the first)
    repeat = day > (first[code] if code.size else np.zeros(0))
    out["gg_x"] = out["bg_x"]
    with np.errstate(divide="ignore", invalid="ignore"):
        out["gg_mean"] = np.where(out["bg_x"] > 0, agg.sum(code, margin, repeat) / out["bg_x"], np.nan)


def _complaint_features(
    out: dict[str, np.ndarray],
    agg: _Agg,
    complaints: pd.DataFrame,
    codes: np.ndarray,
    surveys: pd.DataFrame,
    s_code: np.ndarray,
    as_of: int,
) -> None:
    filed = _num(complaints["filed_day"])
    keep = np.isnan(filed) | (filed <= as_of)
    complaints = complaints[keep]
    filed = filed[keep]
    code = codes[keep]
    resolved_day = _num(complaints["resolved_day"])
    is_resolved = ~np.isnan(resolved_day)
    out["complaints"] = agg.count(code)
    out["complaints_resolved"] = agg.count(code, is_resolved)
    within = np.where(is_resolved, _num(complaints["within_sla"], 0.0), 0.0)
    out["complaints_within_sla"] = agg.sum(code, within)
    sla = _num(complaints["sla_days"], 3.0)
    with np.errstate(invalid="ignore"):
        overdue_open = (~is_resolved) & ~np.isnan(filed) & ((as_of - filed) > sla)
        recent = filed > as_of - RECENT_DAYS
    out["open_past_sla"] = agg.count(code, overdue_open)
    out["complaints_recent"] = agg.count(code, recent)
    out["compensation"] = agg.sum(code, _num(complaints["compensation"], 0.0))

    score = _num(surveys["score"])
    has = ~np.isnan(score)
    answered = _num(surveys["answered_day"])
    with np.errstate(invalid="ignore"):
        recent_s = has & (answered > as_of - RECENT_DAYS)
    n_s = agg.count(s_code, has)
    n_recent = agg.count(s_code, recent_s)
    out["surveys"] = agg.count(s_code)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["survey_mean"] = np.where(n_s > 0, agg.sum(s_code, np.nan_to_num(score), has) / n_s, np.nan)
        out["survey_mean_recent"] = np.where(n_recent > 0, agg.sum(s_code, np.nan_to_num(score), recent_s) / n_recent, np.nan)


def _service_level_features(
    out: dict[str, np.ndarray], agg: _Agg, months: pd.DataFrame, code: np.ndarray, as_of: int, window_days: int
) -> None:
    """Measured months that ended by `as_of` and within the window (and within the last RECENT_DAYS), and how many of
    them missed an agreed target."""
    end = _num(months["end_day"])
    breached = months["breached"].to_numpy(dtype=bool) if len(months) else np.zeros(0, dtype=bool)
    closed = end <= as_of
    for suffix, days in (("", window_days), ("_recent", RECENT_DAYS)):
        counted = closed & (end > as_of - days)
        out["service_level_months" + suffix] = agg.count(code, counted)
        out["service_level_breaches" + suffix] = agg.count(code, counted & breached)


def _invoice_features(
    out: dict[str, np.ndarray], agg: _Agg, invoices: pd.DataFrame, code: np.ndarray, as_of: int, default_days: int
) -> None:
    amount = _num(invoices["amount"], 0.0)
    due = _num(invoices["due_day"])
    paid_day = _num(invoices["paid_day"])
    reported = _num(invoices["days_overdue"], 0.0)
    paid = ~np.isnan(paid_day)
    late_at_payment = np.where(paid, np.nan_to_num(np.clip(paid_day - due, 0, None)), 0.0)
    open_overdue = np.where(~paid, np.nan_to_num(np.clip(as_of - due, 0, None)), 0.0)
    worst = np.maximum(np.maximum(late_at_payment, open_overdue), reported)
    open_days = np.maximum(open_overdue, np.where(~paid, reported, 0.0))
    n_paid = agg.count(code, paid)
    out["invoices"] = agg.count(code)
    out["invoices_paid"] = n_paid
    out["invoices_paid_on_time"] = agg.count(code, paid & (late_at_payment <= 0))
    out["max_open_days_overdue"] = agg.max(code, open_days, fill=0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["avg_days_late"] = np.where(n_paid > 0, agg.sum(code, worst, paid) / n_paid, 0.0)
    out["outstanding"] = agg.sum(code, amount, ~paid)
    out["defaults"] = agg.count(code, worst >= default_days)
