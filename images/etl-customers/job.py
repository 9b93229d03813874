"""The customers extract: an Airflow/Argo task runs this image with no arguments."""

import sys

from etl_common import run

ROWS = [{"id": 1, "source": "customers"}, {"id": 2, "source": "customers"}]

if __name__ == "__main__":
    sys.exit(run("customers", ROWS))
