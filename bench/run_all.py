"""Run every benchmark and write bench/results/summary.json and bench/results/summary.md (`make bench`).

    .venv/bin/python bench/run_all.py [--quick] [--only status_query,ingest_e2e] [--skip scaleout]

Each benchmark runs in its own process (python bench/<name>.py ...) and prints its figures and a last
`RESULT {json}` line; the scoring engineer's bench/scoring_bench.py and the deploy engineer's
bench/scaleout.py are called as they are and their printed figures are parsed. Baselines are measured by
each benchmark in the same run, on this machine. A failing benchmark is reported as failed; the others run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import perfkit  # noqa: E402

OWN = [
    "raw_kafka",
    "ingest_e2e",
    "ingest_sustained",
    "ingest_direct",
    "status_query",
    "lookup_db_path",
    "db_pool_ab",
    "complaint_filing",
    "complaint_storm",
    "notification_fanout",
    "service_levels_bench",
]
EXTERNAL = ["scoring", "scaleout"]


def git_revision() -> str:
    completed = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=perfkit.REPO, capture_output=True, text=True)
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=perfkit.REPO, capture_output=True, text=True
    ).stdout.strip()
    return completed.stdout.strip() + ("+changes" if dirty else "") if completed.returncode == 0 else "?"


def run_own(name: str, quick: bool, timeout_s: float) -> dict:
    command = [perfkit.PYTHON, str(perfkit.BENCH / f"{name}.py")] + (["--quick"] if quick else [])
    return _run(name, command, timeout_s, parse=_parse_result_line)


def _parse_result_line(name: str, stdout: str) -> dict:
    line = next((out for out in reversed(stdout.splitlines()) if out.startswith("RESULT ")), None)
    if line is None:
        raise ValueError("no RESULT line")
    return json.loads(line[len("RESULT ") :])


def _run(name: str, command: list[str], timeout_s: float, parse) -> dict:
    print(f"== {name}: {' '.join(command[1:])}", flush=True)
    started = time.monotonic()
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, cwd=perfkit.REPO)
        output, code = completed.stdout, completed.returncode
        stderr = completed.stderr
    except subprocess.TimeoutExpired as exc:
        output = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        stderr, code = f"timed out after {timeout_s:.0f}s", -1
    seconds = time.monotonic() - started
    for line in output.splitlines():
        if not line.startswith("RESULT "):
            print("   " + line, flush=True)
    try:
        res = parse(name, output)
        res.setdefault("name", name)
        res["status"] = "ok" if code == 0 else f"exit {code}"
    except Exception as exc:  # the benchmark failed: keep its error, do not invent figures
        res = {"name": name, "status": "failed", "error": f"{exc}; exit {code}; stderr tail: {stderr[-1500:]}", "rows": []}
        print(f"   !! {name} failed: {res['error'][-800:]}", flush=True)
    res["seconds"] = round(seconds, 1)
    res["command"] = " ".join(command[1:])
    return res


def run_scoring(quick: bool, timeout_s: float) -> dict:
    """bench/scoring_bench.py (the scoring engineer's): recompute vs pandas, BG/NBD fit, CSV import, inbox rate.
    Its broker section is skipped here: bench/ingest_direct.py measures that path (warm consumer group)."""
    script = perfkit.BENCH / "scoring_bench.py"
    if not script.exists():
        return {"name": "scoring", "status": "missing", "error": "bench/scoring_bench.py not written yet", "rows": []}
    sizes = ["--customers", "10000", "--orders", "300000", "--events", "2000", "--import-rows", "20000"] if quick else []
    command = [perfkit.PYTHON, str(script), *sizes, "--no-broker"]
    (perfkit.RESULTS / "scoring.json").unlink(missing_ok=True)  # no stale figures if the run fails
    return _run("scoring", command, timeout_s, parse=_parse_scoring)


def _parse_scoring(name: str, stdout: str) -> dict:
    """scoring_bench.py writes bench/results/scoring.json; its figures become rows."""
    data = json.loads((perfkit.RESULTS / "scoring.json").read_text())
    rows = []
    rec = data.get("recompute")
    if rec:
        label = f"full recompute {rec['customers']:,} customers / {rec['orders']:,} orders"
        rows.append(
            perfkit.row(label + " (s)", rec["recompute_s"], baseline=rec["baseline_numpy_s"], unit="s", target="baseline: plain numpy pass")
        )
        rows.append(
            perfkit.row(
                label + " vs pandas (s)",
                rec["recompute_s"],
                baseline=rec["baseline_pandas_s"],
                unit="s",
                target="second reference: pandas groupby",
            )
        )
        if rec.get("recompute_peak_mb"):
            rows.append(
                perfkit.row(
                    "recompute peak traced memory",
                    rec["recompute_peak_mb"],
                    baseline=rec.get("baseline_numpy_peak_mb"),
                    unit="MB",
                    target="baseline: plain numpy pass",
                )
            )
    fit = data.get("bgnbd_fit")
    if fit:
        rows.append(perfkit.row(f"BG/NBD fit on {fit['customers']:,} customers", fit["seconds"], unit="s"))
    imp = data.get("import")
    if imp:
        rows.append(perfkit.row("CSV import into PostgreSQL", imp["rows_per_second"], unit="rows/s"))
    inbox = data.get("inbox")
    if inbox:
        rows.append(
            perfkit.row(
                "scoring inbox (facts + rescoring)",
                inbox["scoring_events_per_s"],
                baseline=inbox["noop_inbox_events_per_s"],
                unit="events/s",
                target="baseline: same inbox, no-op handler",
            )
        )
    if not rows:
        raise ValueError("no figures in bench/results/scoring.json")
    return perfkit.result("scoring", rows, figures=data)


def run_scaleout(quick: bool, timeout_s: float) -> dict:
    events, customers = ("3000", "300") if quick else ("20000", "2000")
    command = [
        perfkit.PYTHON,
        str(perfkit.BENCH / "scaleout.py"),
        "--target",
        "scoring",
        "--events",
        events,
        "--customers",
        customers,
        "--replicas",
        "1",
        "2",
        "4",
    ]
    return _run("scaleout", command, timeout_s, parse=_parse_scaleout)


def _parse_scaleout(name: str, stdout: str) -> dict:
    """The table scaleout.py prints: columns found by the header line (target, replicas, ..., events/s, ..., dlq, state)."""
    rows = []
    header: list[str] | None = None
    base = None
    for line in stdout.splitlines():
        tokens = line.split()
        if tokens[:2] == ["target", "replicas"]:
            header = tokens
            continue
        if header is None or len(tokens) < len(header) or not tokens[1].isdigit():
            continue
        cells = dict(zip(header[:-1], tokens[: len(header) - 1]))
        state = " ".join(tokens[len(header) - 1 :])
        eps = float(cells["events/s"])
        base = base if base is not None else eps
        dlq = int(cells.get("dlq", "0"))
        rows.append(
            perfkit.row(
                f"{cells['target']} consumer, {cells['replicas']} replica(s), partitions {cells.get('partitions/replica', '?')}",
                eps,
                baseline=base,
                unit="events/s",
                target="state equal to 1 replica, no DLQ",
                met=dlq == 0 and "DIFFERS" not in state,
            )
        )
    if not rows:
        raise ValueError("no scale-out table in the output")
    return perfkit.result("scaleout", rows)


def markdown(results: list[dict], meta: dict) -> str:
    lines = [
        "# Benchmark summary",
        "",
        f"{meta['when']} on {meta['host']} ({meta['cpus']} CPUs), mode {meta['mode']}, load average {meta.get('load_average_at_start')} "
        "at the start, "
        f"{meta.get('load_average_at_end')} at the end. Baselines measured in the same run. "
        "Figures on a shared 2-core machine move with whatever else runs; compare ratios, not absolutes.",
        "",
        "| benchmark | figure | value | baseline (same run) | ratio | target | met? |",
        "|---|---|---|---|---|---|---|",
    ]
    for res in results:
        if not res.get("rows"):
            detail = res.get("error") or "; ".join(res.get("output", [])[-3:]) or "no figures"
            lines.append(f"| {res['name']} | {res.get('status')} | | | | | {detail[:200].replace('|', '/')} |")
            continue
        for r in res["rows"]:
            met = "" if r.get("met") is None else ("yes" if r["met"] else "**no**")
            ratio = "" if r.get("ratio") is None else f"{r['ratio']:.3f}"
            base = "" if r.get("baseline") is None else f"{perfkit.fmt(r['baseline'])} {r.get('unit', '')}"
            lines.append(
                f"| {res['name']} | {r['figure']} | {perfkit.fmt(r['value'])} {r.get('unit', '')} | {base} | {ratio} | "
                f"{r.get('target', '')} | {met} |"
            )
    lines += ["", "Commands:", ""] + [
        f"- `{res['name']}`: `python {res.get('command', '')}` ({res.get('seconds', '?')} s, {res.get('status')})" for res in results
    ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="", help="comma-separated names")
    parser.add_argument("--skip", default="", help="comma-separated names")
    parser.add_argument("--timeout", type=float, default=0, help="per benchmark, seconds")
    args = parser.parse_args(argv)
    names = [n for n in OWN + EXTERNAL if (not args.only or n in args.only.split(",")) and n not in args.skip.split(",")]
    timeout_s = args.timeout or (600 if args.quick else 3600)
    load_at_start = [round(x, 2) for x in os.getloadavg()]  # other work on the machine skews every figure: say how much there was
    results = []
    for name in names:
        if name == "scoring":
            results.append(run_scoring(args.quick, timeout_s))
        elif name == "scaleout":
            results.append(run_scaleout(args.quick, timeout_s))
        elif (perfkit.BENCH / f"{name}.py").exists():
            results.append(run_own(name, args.quick, timeout_s))
        else:
            results.append({"name": name, "status": "missing", "rows": [], "error": f"bench/{name}.py not written"})
    meta = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "mode": "quick" if args.quick else "full",
        "python": platform.python_version(),
        "git": git_revision(),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "load_average_at_start": load_at_start,
    }
    perfkit.RESULTS.mkdir(parents=True, exist_ok=True)
    (perfkit.RESULTS / "summary.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2, default=str))
    (perfkit.RESULTS / "summary.md").write_text(markdown(results, meta))
    print((perfkit.RESULTS / "summary.md").read_text())
    return 0 if all(r.get("status") == "ok" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
