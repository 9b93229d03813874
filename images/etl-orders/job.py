"""The orders extract: an Airflow/Argo task runs this image with no arguments."""

import sys

from etl_common import run

ROWS = [{"id": 1, "source": "orders"}, {"id": 2, "source": "orders"}]

if __name__ == "__main__":
    sys.exit(run("orders", ROWS))
