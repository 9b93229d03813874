"""Joins the orders extract into a daily report."""

import sys

from etl_common import run

if __name__ == "__main__":
    sys.exit(run("report", [{"report": "daily", "inputs": "orders"}]))
