"""Run a worker module and write down every partition assignment its Kafka consumers receive.

    python -m scaleout_probe crm_scoring.worker

aiokafka reports each assignment with the INFO record "Setting newly assigned partitions %s for
group %s" (crm_common.logging mutes aiokafka below WARNING, so a handler on that one logger is
added here). Each assignment becomes a JSON line in $CRM_SCALEOUT_ASSIGNMENTS:
{"pid": ..., "group": ..., "partitions": [[topic, partition], ...], "at": ...}. Nothing else in
the worker changes: the module then runs as `python -m <module>` would.
"""

from __future__ import annotations

import json
import logging
import os
import runpy
import sys
import time


class AssignmentRecorder(logging.Handler):
    def __init__(self, path: str):
        super().__init__(logging.INFO)
        self.path = path

    def emit(self, record: logging.LogRecord) -> None:
        if not str(record.msg).startswith("Setting newly assigned partitions"):
            return
        assigned, group = record.args
        line = {
            "pid": os.getpid(),
            "group": group,
            "partitions": sorted([tp.topic, tp.partition] for tp in assigned),
            "at": time.time(),
        }
        with open(self.path, "a") as out:
            out.write(json.dumps(line) + "\n")


def main() -> None:
    module = sys.argv[1]
    coordinator = logging.getLogger("aiokafka.consumer.group_coordinator")
    coordinator.setLevel(logging.INFO)  # explicit level: not affected by the worker muting "aiokafka"
    coordinator.addHandler(AssignmentRecorder(os.environ["CRM_SCALEOUT_ASSIGNMENTS"]))
    sys.argv = [module] + sys.argv[2:]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
