"""Joins the orders extract into a daily report."""

import sys

from etl_common import load_rows, run
from orders_job import ROWS, transform


def report(orders: list[dict[str, object]]) -> list[dict[str, object]]:
    """One row: the day's order count."""
    return [{"report": "daily", "inputs": "orders", "orders": len(transform(orders))}]


if __name__ == "__main__":
    sys.exit(run("report", report(load_rows(ROWS))))
