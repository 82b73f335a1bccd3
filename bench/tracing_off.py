"""What the trace plumbing costs while tracing is off (issue 23), per item, in the paths that pay it.

    .venv/bin/python bench/tracing_off.py [--repeat 7] [--number 200000]

Tracing off (no OTEL_* variable), each figure is the best of `--repeat` timeit runs of `--number` calls, in ns per call:

* relay, per outbox row: the header decision (`_trace_headers(None, row)`: a substring test of the body, the envelope
  parsed only when it holds a traceparent); before issue 23's replay change an untraced relay sent `None`, so the
  figure is all added cost. Same-run yardstick: `encode_envelope` of the same event, which every event pays once.
* dispatcher, per batch: `tracing.enabled(service)` (the environment read deciding whether to read traces at all);
  per send: entering and leaving `tracing.span_in(...)` (a nullcontext when off).
* notifications pipeline, per message queued: `current_traceparent()` (one context-variable read when off).
* scoring, per rescoring pass: `tracing.enabled(service)`; marks and consumers pay nothing (a falsy `traces`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "libs" / "common" / "tests"))

from common_support import order_event  # noqa: E402

from crm_common import tracing  # noqa: E402
from crm_common.events.envelope import encode_envelope  # noqa: E402
from crm_common.outbox import _trace_headers  # noqa: E402


class Row:
    def __init__(self, body: str):
        self.id, self.topic, self.key, self.body = 1, "logistics.orders", "c1", body


def best_ns(fn, number: int, repeat: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e9


def run(number: int, repeat: int) -> dict:
    if tracing.tracing_requested():
        raise SystemExit("an OTEL_* variable turns tracing on: this measures the cost while it is off")
    envelope = order_event("O-bench-1")
    row = Row(encode_envelope(envelope).decode())
    assert _trace_headers(None, row) is None

    def span_in():
        with tracing.span_in("notifications", "email send", None, attributes={"crm.channel": "email"}):
            pass

    figures = {
        "relay_row_header_ns": best_ns(lambda: _trace_headers(None, row), number, repeat),
        "relay_row_before_ns": best_ns(lambda: None, number, repeat),
        "encode_envelope_ns": best_ns(lambda: encode_envelope(envelope), number, repeat),
        "enabled_check_ns": best_ns(lambda: tracing.enabled("scoring"), number, repeat),
        "send_span_off_ns": best_ns(span_in, number, repeat),
        "current_traceparent_ns": best_ns(tracing.current_traceparent, number, repeat),
    }
    figures["relay_row_added_ns"] = figures["relay_row_header_ns"] - figures["relay_row_before_ns"]
    return {"name": "tracing_off", "figures": figures, "baseline": {"encode_envelope_ns": figures["encode_envelope_ns"]}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--number", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    result = run(args.number, args.repeat)
    for name, value in result["figures"].items():
        print(f"{name:28} {value:8.1f} ns")
    print(f"load average {os.getloadavg()[0]:.1f}")
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
