"""Load consumer files with the consumers' own code and print, as JSON, what each runs.

Runs in .venv-consumers (scripts/consumers-env), never in builder's venv or under pytest:
the tests call it in a subprocess and assert on its output.

    python validate.py OUT argo FILE...   Hera's models: every container image of every template
    python validate.py OUT airflow DIR    Airflow's DagBag: import errors, every pod task's image

The JSON goes to the file OUT: Airflow logs to stdout as it imports.

Set AIRFLOW_HOME to a scratch directory for `airflow`: Airflow writes its logs there.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any


def argo(files: list[str]) -> dict[str, Any]:
    import yaml
    from hera.workflows import ClusterWorkflowTemplate, CronWorkflow, Workflow, WorkflowTemplate

    classes = {
        "Workflow": Workflow,
        "WorkflowTemplate": WorkflowTemplate,
        "ClusterWorkflowTemplate": ClusterWorkflowTemplate,
        "CronWorkflow": CronWorkflow,
    }
    images = []
    for file in files:
        with Path(file).open(encoding="utf-8") as handle:
            documents = [d for d in yaml.safe_load_all(handle) if d]
        for document in documents:
            # Hera's own model validation: a field Argo does not know fails here.
            built = classes[document["kind"]].from_dict(document).build()
            spec = built.spec
            if document["kind"] == "CronWorkflow":
                spec = spec.workflow_spec
            templates = list(spec.templates or [])
            if spec.template_defaults is not None:
                templates.append(spec.template_defaults)
            for template in templates:
                for role, image in _template_images(template):
                    images.append(
                        {
                            "file": file,
                            "kind": document["kind"],
                            "template": template.name,
                            "role": role,
                            "image": image,
                        }
                    )
    return {"images": images}


def _template_images(template: Any) -> list[tuple[str, str]]:
    found = []
    if template.container is not None:
        found.append(("container", template.container.image))
    if template.script is not None:
        found.append(("script", template.script.image))
    if template.container_set is not None:
        found.extend(("containerSet", c.image) for c in template.container_set.containers)
    found.extend(("initContainer", c.image) for c in template.init_containers or [])
    found.extend(("sidecar", c.image) for c in template.sidecars or [])
    return [(role, image) for role, image in found if image is not None]


def airflow(folder: str) -> dict[str, Any]:
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = folder
    from airflow.dag_processing.dagbag import BundleDagBag
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    # The DAG processor parses a bundle with its root on sys.path, so a DAG can import
    # builder_images from the folder; BundleDagBag is the DagBag that does the same.
    bag = BundleDagBag(dag_folder=folder, bundle_path=Path(folder))
    tasks = [
        {
            "dag": dag_id,
            "task": task.task_id,
            "operator": type(task).__name__,
            "image": task.image,
        }
        for dag_id, dag in sorted(bag.dags.items())
        for task in dag.tasks
        if isinstance(task, KubernetesPodOperator)
    ]
    return {
        "import_errors": {str(k): str(v) for k, v in bag.import_errors.items()},
        "dags": sorted(bag.dags),
        "tasks": tasks,
    }


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] not in ("argo", "airflow"):
        sys.stderr.write(__doc__ or "")
        return 2
    out, command, args = Path(argv[0]), argv[1], argv[2:]
    result = argo(args) if command == "argo" else airflow(args[0])
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
