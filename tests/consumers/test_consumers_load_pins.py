"""The demo's consumers, pinned by `builder pin`, loaded by the consumers' own code.

Not our regexes: Hera's models read the Argo manifests and Airflow's DagBag parses the
DAG folder, in .venv-consumers (scripts/consumers-env; Airflow pins too much to share
builder's venv), through tests/consumers/validate.py in a subprocess. Every image they
report for an in-repo image must be exactly the metadata file's `pinned` value.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import commit, git, invoke
from tests.consumers.loading import ROOT, consumers_python, load, name_of

REGISTRY = "127.0.0.1:5000/demo"  # builder.yaml's registry and namespace
DEMO_IMAGES = ("python-runtime", "etl-base", "etl-orders", "etl-customers", "etl-report")


@pytest.fixture
def python() -> Path:
    return consumers_python()


def fake_digest(name: str) -> str:
    return "sha256:" + hashlib.sha256(f"demo {name}".encode()).hexdigest()


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """A copy of this repository's demo: builder.yaml, the images and deploy/, committed."""
    repo = tmp_path / "demo"
    repo.mkdir()
    git(repo, "init", "--quiet")
    shutil.copy(ROOT / "builder.yaml", repo / "builder.yaml")
    for tree in ("images", "base-images", "deploy"):
        shutil.copytree(ROOT / tree, repo / tree, ignore=shutil.ignore_patterns("__pycache__"))
    commit(repo, message="demo")
    return repo


def metadata(where: Path) -> tuple[Path, dict[str, str]]:
    """A push of every demo image (healthcheck included), as `builder build` writes it."""
    images, pinned = {}, {}
    for name in (*DEMO_IMAGES, "healthcheck"):
        repository, digest = f"{REGISTRY}/{name}", fake_digest(name)
        pinned[name] = f"{repository}@{digest}"
        images[name] = {
            "status": "built",
            "reason": "",
            "repository": repository,
            "tags": [f"{repository}:latest"],
            "digest": digest,
            "pinned": pinned[name],
            "platforms": ["linux/amd64", "linux/arm64"],
        }
    path = where / "metadata.json"
    path.write_text(
        json.dumps({"revision": "f" * 40, "push": True, "images": images}), encoding="utf-8"
    )
    return path, pinned


def test_hera_loads_the_pinned_argo_manifests(python: Path, demo: Path, tmp_path: Path) -> None:
    manifests = sorted((demo / "deploy/argo").glob("*.yaml"))
    before = load(python, "argo", *manifests, home=tmp_path)
    assert {i["image"] for i in before["images"]} == {
        f"{REGISTRY}/{n}:latest"
        for n in ("etl-orders", "etl-report", "etl-customers", "healthcheck")
    }  # the control: the loader sees the tags the files start with
    meta, pinned = metadata(tmp_path)
    result = invoke("pin", "--metadata-file", meta, "-C", demo)
    assert result.exit_code == 0, result.output

    after = load(python, "argo", *manifests, home=tmp_path)
    seen = {(i["kind"], i["template"], i["role"]): i["image"] for i in after["images"]}
    assert seen == {
        ("WorkflowTemplate", "orders", "container"): pinned["etl-orders"],
        ("WorkflowTemplate", "report", "initContainer"): pinned["healthcheck"],
        ("WorkflowTemplate", "report", "container"): pinned["etl-report"],
        ("WorkflowTemplate", "customers", "container"): pinned["etl-customers"],
        ("CronWorkflow", "check", "container"): pinned["healthcheck"],
    }


def test_airflow_dagbag_loads_the_pinned_dags(python: Path, demo: Path, tmp_path: Path) -> None:
    meta, pinned = metadata(tmp_path)
    result = invoke("pin", "--metadata-file", meta, "-C", demo)
    assert result.exit_code == 0, result.output

    bag = load(python, "airflow", demo / "deploy/airflow/dags", home=tmp_path / "af")
    assert bag["import_errors"] == {}
    assert bag["dags"] == ["etl", "etl_by_name"]
    tasks = {(t["dag"], t["task"]): t["image"] for t in bag["tasks"]}
    assert set(tasks) == {
        ("etl", "orders"),
        ("etl", "report"),
        ("etl", "customers"),
        ("etl_by_name", "orders"),  # these three look their image up in images.lock.json
        ("etl_by_name", "report"),
        ("etl_by_name", "customers"),
        ("etl_by_name", "summary"),  # @task.kubernetes
    }
    for (dag, task), image in tasks.items():
        assert image == pinned[name_of(image)], (dag, task)
