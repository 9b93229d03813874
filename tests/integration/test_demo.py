"""The repository's own images (README command one) build and push on the real engine."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from tests.consumers.loading import consumers_python, load
from tests.integration.conftest import GIT_ENV, ROOT, Engine, Repo

pytestmark = pytest.mark.engine

DEMO_IMAGES = {
    "python-runtime",
    "etl-base",
    "etl-orders",
    "etl-customers",
    "etl-report",
    "healthcheck",
}


def test_the_demo_repo_builds_and_pushes_every_image(engine: Engine, tmp_path: Path):
    if not engine.api.tags("upstream/python"):
        pytest.fail("upstream/python is not seeded: run scripts/engine seed", pytrace=False)
    clone = tmp_path / "demo"
    subprocess.run(
        ["git", "clone", "-q", "--no-local", str(ROOT), str(clone)],
        check=True,
        env={**GIT_ENV, "PATH": "/usr/bin:/bin"},
    )
    # `latest` moves on the default branch only: the clone is on it whatever ROOT has out.
    subprocess.run(["git", "-C", str(clone), "checkout", "-q", "-B", "main"], check=True)
    repo = Repo(path=clone, namespace=f"demo{uuid.uuid4().hex[:8]}", engine=engine)
    meta = tmp_path / "meta.json"
    repo.builder(
        "build",
        "--all",
        "--namespace",
        repo.namespace,
        "--metadata-file",
        str(meta),
        check_exit=0,
    )
    images = repo.metadata(meta)
    assert {n for n, d in images.items() if d["status"] == "built"} == DEMO_IMAGES
    # The ETL jobs' tests (image.yaml) ran on both platforms, arm64 under QEMU, and passed
    # before their tags moved; the other images have none.
    for name in DEMO_IMAGES:
        tests = {t["platform"]: t["result"] for t in images[name]["tests"]}  # type: ignore[attr-defined]
        expected = {"linux/amd64": "passed", "linux/arm64": "passed"}
        assert tests == (expected if name.startswith("etl-") and name != "etl-base" else {}), name
    for name in DEMO_IMAGES:
        assert set(engine.api.platforms(repo.repository(name), "latest")) == {
            "linux/amd64",
            "linux/arm64",
        }
    # The shared package reached the jobs through etl-base, on both platforms.
    for platform in ("linux/amd64", "linux/arm64"):
        version = engine.api.read_file(
            repo.repository("etl-report"), "latest", platform, "/etc/etl-common-version"
        )
        assert version == b"1.0.0\n"

    # The hand-off: pin the clone's Argo and Airflow consumers to what was just pushed,
    # then load them with the consumers' own code (Hera, Airflow's DagBag). The files name
    # builder.yaml's `demo` namespace; the push went to another: pin maps both to the image.
    python = consumers_python()
    pinned = {name: str(entry["pinned"]) for name, entry in images.items()}
    repo.builder("pin", "--metadata-file", str(meta), check_exit=0)
    manifests = sorted((clone / "deploy/argo").glob("*.yaml"))
    argo = load(python, "argo", *manifests, home=tmp_path / "argo")
    assert {i["image"] for i in argo["images"]} == {
        pinned[n] for n in ("etl-orders", "etl-report", "etl-customers", "healthcheck")
    }
    bag = load(python, "airflow", clone / "deploy/airflow/dags", home=tmp_path / "airflow")
    assert bag["import_errors"] == {}
    assert {t["image"] for t in bag["tasks"]} == {
        pinned[n] for n in ("etl-orders", "etl-report", "etl-customers", "etl-base")
    }
