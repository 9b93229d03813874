"""`builder build` against a real dockerd, buildx, QEMU and the loopback registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import MakeRepo, Repo

pytestmark = pytest.mark.engine

PLATFORMS = {"linux/amd64", "linux/arm64"}
PREFIX = "ARG BUILDER_PREFIX=docker.io/acme\n"

FIXTURE = {
    "base-images/base/Dockerfile": (
        "ARG BUSYBOX_IMAGE=busybox\nFROM ${BUSYBOX_IMAGE}\n"
        "COPY base.txt /base.txt\nRUN uname -m > /base-arch.txt\n"
    ),
    "base-images/base/base.txt": "base v1\n",
    "images/child/Dockerfile": (
        PREFIX + "FROM ${BUILDER_PREFIX}/base\nCOPY child.txt /child.txt\n"
        "RUN cat /base.txt > /child-saw-base.txt\n"
    ),
    "images/child/child.txt": "child v1\n",
    "images/grandchild/Dockerfile": (PREFIX + "FROM ${BUILDER_PREFIX}/child\nCOPY g.txt /g.txt\n"),
    "images/grandchild/g.txt": "grandchild\n",
    # Two in-repo parents: a stage from base and the final stage on child.
    "images/pair/Dockerfile": (
        PREFIX + "FROM ${BUILDER_PREFIX}/base AS base\n"
        "FROM ${BUILDER_PREFIX}/child\nCOPY --from=base /base.txt /pair-base.txt\n"
    ),
    "images/solo/Dockerfile": (
        "ARG BUSYBOX_IMAGE=busybox\nFROM ${BUSYBOX_IMAGE}\nCOPY solo.txt /solo.txt\n"
    ),
    "images/solo/solo.txt": "solo\n",
}
ALL = {"base", "child", "grandchild", "pair", "solo"}


def statuses(repo: Repo, metadata: Path) -> dict[str, object]:
    return {name: data["status"] for name, data in repo.metadata(metadata).items()}


def test_build_all_pushes_a_manifest_list_per_image(make_build_repo: MakeRepo, tmp_path: Path):
    repo = make_build_repo(FIXTURE)
    sha = repo.git("rev-parse", "HEAD")
    meta = tmp_path / "meta.json"
    done = repo.builder("build", "--all", "--metadata-file", str(meta), check_exit=0)
    assert "5 built" in done.stdout
    images = repo.metadata(meta)
    assert {n for n, d in images.items() if d["status"] == "built"} == ALL
    api = repo.engine.api
    for name in ALL:
        repository = repo.repository(name)
        assert api.release_tags(repository) == {f"git-{sha[:7]}", "main", "latest"}
        # The content key is recorded as a label and as a tag on the same index.
        key_tags = [t for t in api.tags(repository) if t.startswith("key-")]
        assert len(key_tags) == 1
        assert api.manifest(repository, key_tags[0]).digest == images[name]["digest"]
        index = api.manifest(repository, f"git-{sha[:7]}")
        assert images[name]["digest"] == index.digest
        assert images[name]["pinned"] == f"{repo.engine.registry}/{repository}@{index.digest}"
        assert set(api.platforms(repository, "latest")) == PLATFORMS
    # Labels: provenance for Airflow/Argo, and the child's base pinned to the parent digest.
    child = repo.repository("child")
    amd64 = api.platforms(child, "latest")["linux/amd64"]
    labels = api.config(child, amd64)["config"]["Labels"]
    assert labels["org.opencontainers.image.revision"] == sha
    assert labels["org.opencontainers.image.title"] == "child"
    assert labels["org.opencontainers.image.base.name"].endswith(f"{repo.namespace}/base")
    assert labels["org.opencontainers.image.base.digest"] == images["base"]["digest"]
    key_tag = next(t for t in api.tags(child) if t.startswith("key-"))
    assert labels["dev.builder.content-key"].startswith(key_tag.removeprefix("key-"))


def test_base_change_rebuilds_dependants_on_the_fresh_parent(
    make_build_repo: MakeRepo, tmp_path: Path
):
    repo = make_build_repo(FIXTURE)
    repo.builder("build", "--all", check_exit=0)
    old = repo.git("rev-parse", "HEAD")
    new = repo.commit({"base-images/base/base.txt": "base v2, gained in this commit\n"})
    meta = tmp_path / "meta.json"
    repo.builder("build", "--metadata-file", str(meta), check_exit=0)

    assert statuses(repo, meta) == {
        "base": "built",
        "child": "built",
        "grandchild": "built",
        "pair": "built",
        "solo": "unchanged",
    }
    api = repo.engine.api
    assert f"git-{new[:7]}" not in api.tags(repo.repository("solo"))
    assert f"git-{old[:7]}" in api.tags(repo.repository("solo"))
    for platform in sorted(PLATFORMS):
        seen = api.read_file(
            repo.repository("child"), f"git-{new[:7]}", platform, "/child-saw-base.txt"
        )
        assert seen == b"base v2, gained in this commit\n", platform
        pair = api.read_file(repo.repository("pair"), f"git-{new[:7]}", platform, "/pair-base.txt")
        assert pair == b"base v2, gained in this commit\n", platform
    # The arm64 RUN step really ran as arm64 (under QEMU here).
    arch = api.read_file(repo.repository("base"), "latest", "linux/arm64", "/base-arch.txt")
    assert arch == b"aarch64\n"


def test_a_failed_image_skips_its_dependants_and_the_rest_are_pushed(
    make_build_repo: MakeRepo, tmp_path: Path
):
    broken = dict(FIXTURE)
    broken["images/child/Dockerfile"] = (
        PREFIX + "FROM ${BUILDER_PREFIX}/base\nRUN echo the tests broke this on purpose && exit 3\n"
    )
    repo = make_build_repo(broken)
    meta = tmp_path / "meta.json"
    done = repo.builder("build", "--all", "--metadata-file", str(meta), check_exit=1)

    assert statuses(repo, meta) == {
        "base": "built",
        "child": "failed",
        "grandchild": "skipped",
        "pair": "skipped",
        "solo": "built",
    }
    images = repo.metadata(meta)
    assert images["grandchild"]["reason"] == "parent child failed"
    assert "exit code: 3" in str(images["child"]["reason"]) or "exit 3" in done.stderr
    assert "error: 1 image(s) failed: child" in done.stderr
    api = repo.engine.api
    assert api.tags(repo.repository("child")) == []  # not even a build cache
    assert api.tags(repo.repository("grandchild")) == []
    assert set(api.platforms(repo.repository("solo"), "latest")) == PLATFORMS


def test_dry_run_prints_the_plan_and_pushes_nothing(make_build_repo: MakeRepo):
    repo = make_build_repo(FIXTURE)
    done = repo.builder("build", "--all", "--dry-run", check_exit=0)
    assert "wave 1: base, solo" in done.stdout
    assert "wave 2: child" in done.stdout
    assert '"contexts"' in done.stdout
    # Pushing, the child is baked on the digest this run pushes for base, as a run does.
    assert "@<digest of base this run pushes>" in done.stdout
    for name in ALL:
        assert repo.engine.api.tags(repo.repository(name)) == []


def test_rerunning_a_commit_is_safe(make_build_repo: MakeRepo, tmp_path: Path):
    repo = make_build_repo(FIXTURE)
    first = repo.builder("build", "--all", "--only", "base", "--verbose", check_exit=0)
    assert "base | #" in first.stderr  # BuildKit's plain progress, streamed per image
    meta = tmp_path / "meta.json"
    repo.builder("build", "--all", "--only", "base", "--metadata-file", str(meta), check_exit=0)
    digest = repo.metadata(meta)["base"]["digest"]
    index = repo.engine.api.manifest(repo.repository("base"), "latest")
    assert index.digest == digest
    assert set(repo.engine.api.platforms(repo.repository("base"), "latest")) == PLATFORMS
