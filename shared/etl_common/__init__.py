"""Helpers every ETL job shares: structured logs and a tiny extract/load contract."""

import json
import os
import sys
import time

__version__ = "1.0.0"


def log(event: str, **fields: object) -> None:
    print(json.dumps({"ts": round(time.time(), 3), "event": event, **fields}), file=sys.stderr)


def load_rows(default: list[dict[str, object]]) -> list[dict[str, object]]:
    """The rows to process: ETL_ROWS (a JSON list, e.g. a test's tiny fixture), else the
    job's own extract."""
    text = os.environ.get("ETL_ROWS")
    if not text:
        return default
    rows = json.loads(text)
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ValueError("ETL_ROWS must be a JSON list of objects")
    return rows


def run(job: str, rows: list[dict[str, object]]) -> int:
    log("start", job=job)
    for row in rows:
        log("row", job=job, **row)
    log("done", job=job, rows=len(rows))
    return 0
