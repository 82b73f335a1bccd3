"""The explanations of a batch of scores as the JSON text that is stored, rendered column by column.

Each score's explanation is the dict scores.py returns (value, inputs, sentence); here its JSON text is filled into
a template per customer from columns prepared for all customers of a slice at once: numbers are formatted by one
`orjson.dumps` of the whole column (so they read exactly as orjson writes them inside the dict), sentences by one
f-string per customer. The text is byte for byte what `orjson.dumps(detail)` gives for the per-customer dicts
(tested), at a fraction of the cost of building those dicts.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import orjson

from crm_scoring.model import batch
from crm_scoring.model.scores import KEY_ACCOUNT_TEXTS, credit_reasons

# ---------------------------------------------------------------- JSON columns


def json_values(values: Sequence) -> list[str]:
    """JSON text of each number / None / bool, as orjson writes it."""
    if not len(values):
        return []
    return orjson.dumps(list(values)).decode()[1:-1].split(",")


def json_numbers(values: np.ndarray, known: np.ndarray | None = None, digits: int | None = None) -> list[str]:
    """JSON text of each (Python-rounded) value; null where not known."""
    values = np.asarray(values)
    if digits is not None:
        values = batch.rounded_array(values, digits)
    python = values.tolist()
    if known is not None:
        python = [v if k else None for v, k in zip(python, np.asarray(known, dtype=bool).tolist())]
    return json_values(python)


def json_strings(texts: Sequence[str]) -> list[str]:
    """JSON string literals; the sentences hold no quote, backslash or control character, so quoting is enough."""
    joined = "".join(texts)
    if '"' in joined or "\\" in joined or not joined.isprintable():
        return [orjson.dumps(t).decode() for t in texts]
    return ['"' + t + '"' for t in texts]


def fill(template: str, *columns: Sequence[str]) -> list[str]:
    return [template % row for row in zip(*columns)]


def nullable(values: np.ndarray) -> tuple[list, list[bool]]:
    """Python values (None for NaN) and whether each is known."""
    known = ~np.isnan(values)
    return [v if k else None for v, k in zip(values.tolist(), known.tolist())], known.tolist()


# ---------------------------------------------------------------- weighted scores


def components_json(w: batch.Weighted, sl: slice) -> list[str]:
    """{"name": round(component, 4) or null, ...} in the order of the components."""
    names = list(w.components)
    template = "{" + ",".join(f'"{k}":%s' for k in names) + "}"
    return fill(template, *(json_numbers(w.components[k][sl], w.known[k][sl], 4) for k in names))


def weights_json(w: batch.Weighted, sl: slice) -> list[str]:
    """{"name": round(weight, 4), ...} of the components actually used: one text per pattern of known components."""
    patterns = w.pattern[sl].tolist()
    texts = {p: orjson.dumps(w.used_weights(p)).decode() for p in set(patterns)}
    return [texts[p] for p in patterns]


# ---------------------------------------------------------------- one renderer per score


def current_value(s: batch.CurrentValue, sl: slice) -> list[str]:
    score = s.value[sl].tolist()
    revenue, margin, avg, months = (a[sl].tolist() for a in (s.revenue, s.margin, s.avg_order, s.months_active))
    texts = [f"{v:.0f}/100: revenue {r:,.0f} and margin {m:,.0f} over 12 months, average order {a:,.0f}, orders in {mo} of the last 12 months."
             for v, r, m, a, mo in zip(score, revenue, margin, avg, months)]
    return fill('{"value":%s,"inputs":{"revenue_12m":%s,"margin_12m":%s,"avg_order":%s,"months_with_orders":%s,"components":%s,"weights":%s},"explanation":%s}',
                json_values(score), json_numbers(s.revenue[sl], None, 2), json_numbers(s.margin[sl], None, 2), json_numbers(s.avg_order[sl], None, 2),
                json_values(months), components_json(s.w, sl), weights_json(s.w, sl), json_strings(texts))


def potential_value(s: batch.PotentialValue, sl: slice) -> list[str]:
    score = s.value[sl].tolist()
    growth_known = s.w.known["growth"][sl]
    growth, services, clv = s.growth_rate[sl].tolist(), s.services_used[sl].tolist(), s.clv[sl].tolist()
    wallet, _ = nullable(s.share_of_wallet[sl])
    texts = []
    for v, known, g, used, w, c in zip(score, growth_known.tolist(), growth, services, wallet, clv):
        trend = f"monthly revenue trend {g:+.0%} a year" if known else "no revenue trend yet"
        share = "share of wallet unknown" if w is None else f"share of wallet {w:.0%}"
        texts.append(f"{v:.0f}/100: {trend}, {used} of {s.service_types} service types used, {share}, expected 12-month margin {c:,.0f}.")
    return fill('{"value":%s,"inputs":{"growth_rate":%s,"services_used":%s,"share_of_wallet":%s,"clv_12m":%s,"components":%s,"weights":%s},"explanation":%s}',
                json_values(score), json_numbers(s.growth_rate[sl], growth_known, 4), json_values(services), json_values(wallet), json_numbers(s.clv[sl], None, 2),
                components_json(s.w, sl), weights_json(s.w, sl), json_strings(texts))


NO_SATISFACTION = "No deliveries, complaints or surveys yet."


def satisfaction(s: batch.Satisfaction, sl: slice) -> list[str]:
    score, known = nullable(s.w.score[sl])
    shipments, incidents, complaints = s.shipments[sl].tolist(), s.incidents[sl].tolist(), s.complaints[sl].tolist()
    rate, rate_known = s.w.components["on_time"][sl].tolist(), s.w.known["on_time"][sl].tolist()
    survey_known = s.w.known["survey"][sl]
    survey = s.survey_mean[sl].tolist()
    texts = []
    for v, k, sh, inc, co, r, rk, sv, svk in zip(score, known, shipments, incidents, complaints, rate, rate_known, survey, survey_known.tolist()):
        if not k:
            texts.append(NO_SATISFACTION)
            continue
        per100 = 100 * co / sh if sh else 0.0
        texts.append(f"{v:.0f}/100: " + (f"{r:.0%} on time" if rk else "on-time rate unknown")
                     + f", {inc} damaged or lost of {sh} shipments, {per100:.1f} complaints per 100 shipments"
                     + ("" if not svk else f", survey average {sv:.1f}/5") + ".")
    template = ('{"value":%s,"inputs":{"shipments":%s,"on_time_known":%s,"on_time":%s,"damaged_or_lost":%s,"complaints":%s,"resolved_within_sla":%s,'
                '"survey_mean":%s,"components":%s,"weights":%s},"explanation":%s}')
    return fill(template, json_values(score), json_values(shipments), json_numbers(s.on_time_known[sl]), json_numbers(s.on_time[sl]), json_values(incidents),
                json_values(complaints), json_numbers(s.resolved_within_sla[sl]), json_numbers(s.survey_mean[sl], survey_known, 3),
                components_json(s.w, sl), weights_json(s.w, sl), json_strings(texts))


NO_LOYALTY = '{"value":0.0,"inputs":{"orders":0},"explanation":"0/100: no orders yet."}'


def loyalty(s: batch.Loyalty, sl: slice) -> list[str]:
    score, orders, tenure = s.value[sl].tolist(), s.orders[sl].tolist(), s.tenure_days[sl].tolist()
    satisfaction_score, _ = nullable(s.satisfaction[sl])
    wallet, _ = nullable(s.share_of_wallet[sl])
    repeat, regularity = s.w.components["repeat_rate"][sl].tolist(), s.w.components["regularity"][sl].tolist()
    regular_known = s.w.known["regularity"][sl]
    texts = []
    for v, o, t, rep, reg, rk, st in zip(score, orders, tenure, repeat, regularity, regular_known.tolist(), satisfaction_score):
        if o <= 0:
            texts.append("")
            continue
        texts.append(f"{v:.0f}/100: {o} orders ({rep:.0%} repeat), customer for {t:.0f} days, "
                     + (f"regularity {reg:.2f}" if rk else "ordering regularity unknown")
                     + ("" if st is None else f", satisfaction {st:.0f}")
                     + ". Unknown parts are left out and their weight shared by the others.")
    rendered = fill('{"value":%s,"inputs":{"orders":%s,"tenure_days":%s,"gap_cv":%s,"share_of_wallet":%s,"satisfaction":%s,"components":%s,"weights":%s},"explanation":%s}',
                    json_values(score), json_values(orders), json_numbers(s.tenure_days[sl], None, 1), json_numbers(s.gap_cv[sl], regular_known, 4),
                    json_values(wallet), json_values(satisfaction_score), components_json(s.w, sl), weights_json(s.w, sl), json_strings(texts))
    return [text if o > 0 else NO_LOYALTY for text, o in zip(rendered, orders)]


def credit(s: batch.Credit, sl: slice) -> list[str]:
    grades, invoices, paid, overdue, defaults = (a[sl].tolist() for a in (s.grade, s.invoices, s.paid, s.max_open_days_overdue, s.defaults))
    rate, _ = nullable(s.on_time_rate[sl])
    use, _ = nullable(s.limit_use[sl])
    texts = []
    for g, inv, p, od, d, r, u in zip(grades, invoices, paid, overdue, defaults, rate, use):
        if g == "D":
            texts.append(f"D (serious default): an invoice {od:.0f} days overdue or {d} defaults (>= {s.default_days} days late).")
        elif g == "C":
            texts.append("C (low): " + credit_reasons(r, od, d, u))
        elif g == "A":
            texts.append(f"A (high): {p} invoices paid, {r:.0%} on time, nothing overdue.")
        elif inv == 0:
            texts.append("B (ordinary): no invoices yet.")
        else:
            texts.append("B (ordinary): " + credit_reasons(r, od, d, u))
    rate_known, use_known = ~np.isnan(s.on_time_rate[sl]), ~np.isnan(s.limit_use[sl])
    template = ('{"value":%s,"inputs":{"invoices":%s,"paid":%s,"paid_on_time":%s,"on_time_rate":%s,"max_open_days_overdue":%s,"defaults":%s,'
                '"outstanding":%s,"credit_limit":%s,"limit_use":%s},"explanation":%s}')
    return fill(template, json_strings(grades), json_values(invoices), json_values(paid), json_numbers(s.paid_on_time[sl]), json_numbers(s.on_time_rate[sl], rate_known, 4),
                json_values(overdue), json_values(defaults), json_numbers(s.outstanding[sl], None, 2), json_values(nullable(s.credit_limit[sl])[0]),
                json_numbers(s.limit_use[sl], use_known, 4), json_strings(texts))


def signal_codes(signals: dict[str, np.ndarray], sl: slice) -> list[int]:
    """Each customer's signals as a bit set (bit i = batch.SIGNALS[i])."""
    code = np.zeros(sl.stop - sl.start, dtype=np.int64)
    for bit, name in enumerate(batch.SIGNALS):
        code |= signals[name][sl].astype(np.int64) << bit
    return code.tolist()


SIGNAL_SETS = [[name for bit, name in enumerate(batch.SIGNALS) if code >> bit & 1] for code in range(2 ** len(batch.SIGNALS))]
SIGNAL_JSON = [orjson.dumps(names).decode() for names in SIGNAL_SETS]


def signal_lists(codes: list[int]) -> list[list[str]]:
    return [list(SIGNAL_SETS[c]) for c in codes]


NO_ORDERS_RISK = '{"value":"low","inputs":{"signals":[]},"explanation":"low: no orders yet."}'


def churn_risk(levels: np.ndarray, p_alive: np.ndarray, expected: np.ndarray, signal_code: list[int], with_model: np.ndarray, sl: slice) -> list[str]:
    """scores.churn_risk's explanation; without a risk model (a customer with neither orders nor signals) the short form."""
    level = levels[sl].tolist()
    p, _ = nullable(p_alive[sl])
    e, _ = nullable(expected[sl])
    texts = []
    for lv, pa, ex, code in zip(level, p, e, signal_code):
        sig = SIGNAL_SETS[code]
        model = "no population model yet" if pa is None else f"P(alive) {pa:.2f}" + (f", {ex:.1f} orders expected in 90 days" if ex is not None else "")
        texts.append(f"{lv}: {model}" + (f"; signals: {', '.join(x.replace('_', ' ') for x in sig)}" if sig else "; no rule signals") + ".")
    rendered = fill('{"value":%s,"inputs":{"p_alive":%s,"expected_orders_90d":%s,"signals":%s},"explanation":%s}',
                    json_strings(level), json_numbers(p_alive[sl], ~np.isnan(p_alive[sl]), 4), json_numbers(expected[sl], ~np.isnan(expected[sl]), 3),
                    [SIGNAL_JSON[code] for code in signal_code], json_strings(texts))
    return [text if full else NO_ORDERS_RISK for text, full in zip(rendered, with_model[sl].tolist())]


TIER_TEXTS = {"at_risk": "At risk: high churn risk.", "small": "Small: class D or no orders in the last 12 months."}


def _tier_reason(tier: str, abc_class: str | None, flagged: bool) -> str:
    if tier == "key_account":
        return KEY_ACCOUNT_TEXTS[(abc_class == "A", flagged)]
    return TIER_TEXTS.get(tier) or f"Ordinary: class {abc_class}."


def tier(tiers: list, abc_class: list, flagged: list, risk: list, orders_window: list) -> tuple[list[str], list[str]]:
    """(JSON of scores.tier's explanation, its sentence) per customer."""
    reasons = [_tier_reason(t, c, f) for t, c, f in zip(tiers, abc_class, flagged)]
    rendered = fill('{"value":%s,"inputs":{"abc_class":%s,"key_account_flag":%s,"churn_risk":%s,"orders_12m":%s},"explanation":%s}',
                    json_strings(tiers), json_values(abc_class), json_values(flagged), json_strings(risk), json_values(orders_window), json_strings(reasons))
    return rendered, reasons


def abc_class(classes: list, contribution: list, contribution_json: list[str], model) -> list[str]:
    if model is None:
        return ["null"] * len(classes)
    t = model.abc
    head = '{"value":%s,"inputs":{"basis":' + orjson.dumps(model.abc_basis).decode() + ',"contribution_12m":%s,"thresholds":' + orjson.dumps(t.as_dict()).decode() + '},"explanation":%s}'
    tail = f" against the thresholds A>={t.a}, B>={t.b}, C>={t.c}."
    texts = [f"Class {c}: {model.abc_basis} over 12 months {v:,.0f}{tail}" for c, v in zip(classes, contribution)]
    return fill(head, json_strings(classes), contribution_json, json_strings(texts))


def rfm(r: list, f: list, m: list, segment: list, recency_days: list, orders_json: list[str], revenue_json: list[str]) -> list[str]:
    texts = [f"R{a} F{b} M{c} ({s.replace('_', ' ')})" if a is not None else "" for a, b, c, s in zip(r, f, m, segment)]
    rendered = fill('{"value":{"r":%s,"f":%s,"m":%s,"segment":%s},"inputs":{"recency_days":%s,"orders_12m":%s,"revenue_12m":%s},"explanation":%s}',
                    json_values(r), json_values(f), json_values(m), json_values(segment), json_values(recency_days), orders_json, revenue_json, json_strings(texts))
    return [text if a is not None else "null" for text, a in zip(rendered, r)]


CLV_EXPLANATION = "Expected order days in 12 months x expected margin per order day (Gamma-Gamma), less the historical cost to serve (damage, loss, compensation) per order day."


def lifetime_value(clv_json: list[str], margin_per_order_day: np.ndarray, model_name: str) -> list[str]:
    template = '{"value":%s,"inputs":{"expected_margin_per_order_day":%s,"model":' + orjson.dumps(model_name).decode() + '},"explanation":' + orjson.dumps(CLV_EXPLANATION).decode() + "}"
    return fill(template, clv_json, json_numbers(margin_per_order_day, None, 2))


def matrices(value_loyalty: list, credit_loyalty: list, value_matrix: list) -> list[str]:
    return fill('{"value_loyalty":%s,"credit_loyalty":%s,"current_potential":%s}', json_strings(value_loyalty), json_strings(credit_loyalty), json_strings(value_matrix))


DETAIL = ('{"current_value":%s,"potential_value":%s,"abc_class":%s,"rfm":%s,"loyalty":%s,"satisfaction":%s,"credit_grade":%s,"churn_risk":%s,'
          '"lifetime_value":%s,"tier":%s,"matrices":%s}')
