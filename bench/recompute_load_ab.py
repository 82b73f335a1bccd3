"""The population recompute's fact loading, before and after it read in keyset pages (issue 20 point 6), on one
PostgreSQL database in one run: wall time, and peak traced memory (tracemalloc, in separate passes: tracing slows
Python's allocations). The data is bench/service_levels_bench.py's (orders with service-level facts, complaints,
profiles), written by COPY.

    .venv/bin/python bench/recompute_load_ab.py --before /path/to/old/service.py [--customers 20000 --orders 1000000]

`--before` is the `crm_scoring/scoring/service.py` of the commit to compare with (e.g. `git show REV:path > file`),
loaded as a module of its own beside the installed package. Both loads must give the same frames (checked).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import os
import sys
import time
import tracemalloc
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import perfkit  # noqa: E402
import service_levels_bench  # noqa: E402
from scoring_data import generate  # noqa: E402

FRAMES = ("orders", "complaints", "surveys", "invoices", "customers", "service_levels")


async def run(args) -> dict:
    from crm_common.db import Database
    from crm_scoring.scoring import service
    from crm_scoring.settings import ScoringSettings

    spec = importlib.util.spec_from_file_location("service_before", args.before)
    before = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(before)
    h = generate(args.customers, args.orders, seed=1)
    out: dict = {"customers": args.customers, "orders": args.orders, "load_average_start": os.getloadavg()[0]}
    async with perfkit.fresh_databases("scoring") as urls:
        url = urls["scoring"]
        await service_levels_bench.load(url, h, 1)
        del h
        db = Database(url)
        settings = ScoringSettings(database_url=url, run_scheduler=False)
        loaded = {}
        try:
            for label, load_facts in (("before", before.load_facts), ("after", service.load_facts)) * args.rounds:
                for traced in (False, True):
                    gc.collect()
                    if traced:
                        tracemalloc.start()
                    started = time.perf_counter()
                    figure = out.setdefault(label, {"seconds": [], "peak_mb": []})
                    try:
                        async with db.transaction() as session:
                            facts = await load_facts(session, settings)
                    except TimeoutError:  # a statement past the connections' command timeout (crm_common.db)
                        tracemalloc.stop()
                        figure["peak_mb" if traced else "seconds"].append("command timeout")
                        print(label, "command timeout", flush=True)
                        continue
                    seconds = time.perf_counter() - started
                    if traced:
                        figure["peak_mb"].append(round(tracemalloc.get_traced_memory()[1] / 2**20, 1))
                        tracemalloc.stop()
                    else:
                        figure["seconds"].append(round(seconds, 2))
                    loaded[label] = facts
                    del facts
                    print(label, "traced" if traced else "timed", figure, flush=True)
        finally:
            await db.dispose()
    for name in FRAMES if "before" in loaded else ():  # the same rows, in the same order, with the same values
        # missing values as None: a column of NULLs only was None objects before, NaN floats after (the same to the features)
        a, b = (getattr(loaded[side], name).astype(object) for side in ("before", "after"))
        pd.testing.assert_frame_equal(a.where(a.notna(), None), b.where(b.notna(), None), check_dtype=False, obj=name)
    out["load_average_end"] = os.getloadavg()[0]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print(asyncio.run(run(args)))


if __name__ == "__main__":
    os.environ.setdefault("CRM_CURRENCIES", '["CNY"]')
    main()
