"""The orders extract: an Airflow/Argo task runs this image with no arguments."""

import sys

from etl_common import load_rows, run

ROWS = [{"id": 1, "source": "orders"}, {"id": 2, "source": "orders"}]


def transform(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """Each order, tagged with the job that loaded it."""
    return [{**row, "loaded_by": "orders"} for row in rows]


if __name__ == "__main__":
    sys.exit(run("orders", transform(load_rows(ROWS))))
