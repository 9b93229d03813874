"""The same jobs, looking their images up by name in images.lock.json (builder_images).

Useful where one lock file serves many DAGs. The summary task runs Python in the shared
etl-base image through @task.kubernetes, whose literal `builder pin` rewrites as well.
"""

from __future__ import annotations

from datetime import datetime, timezone

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.sdk import DAG, task
from builder_images import image

with DAG(
    dag_id="etl_by_name",
    schedule=None,
    start_date=datetime(2024, 1, 1, tzinfo=timezone.utc),
    tags=["etl"],
):
    orders = KubernetesPodOperator(
        task_id="orders", name="etl-orders", image=image("etl-orders"), cmds=["python3", "/app/job.py"]
    )
    report = KubernetesPodOperator(
        task_id="report",
        name="etl-report",
        image=image("etl-report"),
        cmds=["python3", "/app/report.py"],
    )
    customers = KubernetesPodOperator(
        task_id="customers",
        name="etl-customers",
        image=image("etl-customers"),
        cmds=["python3", "/app/job.py"],
    )

    @task.kubernetes(image="127.0.0.1:5000/demo/etl-base:latest", name="etl-summary")
    def summary() -> None:
        import etl_common  # in the etl-base image, not on the scheduler

        print("etl_common", etl_common.__version__)

    orders >> report >> summary()
