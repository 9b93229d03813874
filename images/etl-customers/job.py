"""The customers extract: an Airflow/Argo task runs this image with no arguments."""

import sys

from etl_common import load_rows, run

ROWS = [{"id": 1, "source": "customers"}, {"id": 2, "source": "customers"}]


def transform(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """Each customer, tagged with the job that loaded it."""
    return [{**row, "loaded_by": "customers"} for row in rows]


if __name__ == "__main__":
    sys.exit(run("customers", transform(load_rows(ROWS))))
