"""The ETL jobs as an Airflow DAG of Kubernetes pods: orders, then report; customers alongside.

Each image is a string literal that `builder pin` rewrites to the digest the last build
pushed (builder.yaml lists this folder under `consumers:`); only the literal changes.
"""

from __future__ import annotations

from datetime import datetime, timezone

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.sdk import DAG

with DAG(
    dag_id="etl",
    schedule="@daily",
    start_date=datetime(2024, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["etl"],
):
    orders = KubernetesPodOperator(
        task_id="orders",
        name="etl-orders",
        image="127.0.0.1:5000/demo/etl-orders:latest",
        cmds=["python3", "/app/job.py"],
    )
    report = KubernetesPodOperator(
        task_id="report",
        name="etl-report",
        image="127.0.0.1:5000/demo/etl-report:latest",
        cmds=["python3", "/app/report.py"],
    )
    customers = KubernetesPodOperator(
        task_id="customers",
        name="etl-customers",
        image='127.0.0.1:5000/demo/etl-customers:latest',  # single quotes stay single
        cmds=["python3", "/app/job.py"],
    )
    orders >> report
