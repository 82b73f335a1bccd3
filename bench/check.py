"""Compare a quick benchmark run with the committed baseline (`make bench-check`).

    .venv/bin/python bench/check.py                 # runs bench/run_all.py --quick, then compares
    .venv/bin/python bench/check.py --no-run        # compares the last bench/results/summary.json
    .venv/bin/python bench/check.py --update        # after a deliberate change: the last summary becomes the baseline

Each figure is compared by its same-run ratio when it has one (value / the baseline measured in the same run, so
a busier or quieter machine moves both), else by its value. Rates (…/s) are better higher; times, sizes and counts
are better lower. A figure more than --tolerance (15%) worse than in bench/results/baseline.json is flagged and
the exit status is 1. Figures only in one of the two are listed, not flagged.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
BASELINE = RESULTS / "baseline.json"
SUMMARY = RESULTS / "summary.json"


def higher_is_better(unit: str) -> bool:
    return unit.endswith("/s")


def comparable(row: dict) -> tuple[str, float] | None:
    """(how it is compared, the number) for one row, or None when it has no number."""
    if row.get("ratio") is not None:
        return "ratio", float(row["ratio"])
    if isinstance(row.get("value"), (int, float)):
        return "value", float(row["value"])
    return None


def figures(summary: dict) -> dict[tuple[str, str], dict]:
    return {
        (result["name"], row["figure"]): row
        for result in summary["results"]
        if result.get("status", "ok") == "ok"
        for row in result.get("rows", [])
    }


def compare(baseline: dict, current: dict, tolerance: float) -> tuple[list[str], list[str]]:
    """Lines for every figure in both runs, and the flagged ones."""
    before, after = figures(baseline), figures(current)
    lines, flagged = [], []
    for key in sorted(before.keys() & after.keys()):
        old, new = comparable(before[key]), comparable(after[key])
        if old is None or new is None or old[0] != new[0] or old[1] == 0:
            continue
        change = new[1] / old[1] - 1.0
        worse = -change if higher_is_better(after[key].get("unit", "")) else change
        line = f"{key[0]:<20} {key[1][:90]:<90} {old[0]:>5} {old[1]:>12.4g} -> {new[1]:>12.4g} ({change:+.1%})"
        if worse > tolerance:
            line += f"  WORSE by {worse:.0%}"
            flagged.append(line)
        lines.append(line)
    for key in sorted(before.keys() - after.keys()):
        lines.append(f"{key[0]:<20} {key[1][:90]:<90} only in the baseline")
    for key in sorted(after.keys() - before.keys()):
        lines.append(f"{key[0]:<20} {key[1][:90]:<90} new (not in the baseline)")
    return lines, flagged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-run", action="store_true", help="compare the last bench/results/summary.json")
    parser.add_argument("--update", action="store_true", help="make the last summary the committed baseline")
    parser.add_argument("--tolerance", type=float, default=0.15)
    parser.add_argument("--only", default="", help="passed to run_all.py")
    args = parser.parse_args(argv)
    if args.update:
        shutil.copyfile(SUMMARY, BASELINE)
        print(f"{SUMMARY} -> {BASELINE}: commit it with the change that moved the figures")
        return 0
    if not args.no_run:
        command = [sys.executable, str(BENCH / "run_all.py"), "--quick"] + (["--only", args.only] if args.only else [])
        subprocess.run(command, check=False)  # a failed benchmark is reported in the summary; compare the rest
    baseline, current = json.loads(BASELINE.read_text()), json.loads(SUMMARY.read_text())
    lines, flagged = compare(baseline, current, args.tolerance)
    print(
        f"baseline: {baseline['meta'].get('when', '?')} ({baseline['meta'].get('git', '?')}); this run: "
        f"{current['meta'].get('when', '?')} ({current['meta'].get('git', '?')})"
    )
    print("\n".join(lines))
    print(f"\n{len(flagged)} figure(s) worse by more than {args.tolerance:.0%}" + (":\n" + "\n".join(flagged) if flagged else ""))
    return 1 if flagged else 0


if __name__ == "__main__":
    sys.exit(main())
