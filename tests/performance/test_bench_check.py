"""bench/check.py (`make bench-check`) flags a figure that got worse by more than the tolerance, in the right direction."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH_CHECK = Path(__file__).resolve().parents[2] / "bench" / "check.py"


def load_check():
    spec = importlib.util.spec_from_file_location("bench_check", BENCH_CHECK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def summary(**rows: tuple[float, float | None, str]) -> dict:
    return {
        "meta": {},
        "results": [
            {
                "name": "b",
                "status": "ok",
                "rows": [{"figure": figure, "value": value, "ratio": ratio, "unit": unit} for figure, (value, ratio, unit) in rows.items()],
            }
        ],
    }


def test_a_rate_that_dropped_and_a_latency_that_grew_are_flagged_and_improvements_are_not():
    check = load_check()
    before = summary(rate=(1000.0, 0.50, "req/s"), p99=(10.0, 2.0, "ms"), faster=(1000.0, None, "events/s"), quicker=(5.0, None, "s"))
    after = summary(rate=(900.0, 0.40, "req/s"), p99=(10.0, 2.4, "ms"), faster=(2000.0, None, "events/s"), quicker=(4.0, None, "s"))
    _, flagged = check.compare(before, after, 0.15)
    assert [line.split()[1] for line in flagged] == ["p99", "rate"]


def test_a_change_within_the_tolerance_and_figures_in_one_run_only_are_not_flagged():
    check = load_check()
    before = summary(rate=(1000.0, 0.50, "req/s"), gone=(1.0, None, "ms"))
    after = summary(rate=(1000.0, 0.44, "req/s"), new=(1.0, None, "ms"))
    lines, flagged = check.compare(before, after, 0.15)
    assert flagged == []
    assert any("only in the baseline" in line for line in lines) and any("new (not in the baseline)" in line for line in lines)


def test_the_ratio_is_compared_when_both_runs_have_one_so_a_slower_machine_alone_is_not_a_drop():
    check = load_check()
    before = summary(rate=(1000.0, 0.50, "req/s"))
    after = summary(rate=(500.0, 0.50, "req/s"))
    assert check.compare(before, after, 0.15)[1] == []
