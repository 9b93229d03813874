"""Fan-out across runners, end to end: plan -> per-platform builds by digest -> merge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.conftest import MakeRepo
from tests.integration.test_build import ALL, FIXTURE, PLATFORMS

pytestmark = pytest.mark.engine


def test_waves_of_per_platform_builds_merge_into_what_one_build_gives(
    make_build_repo: MakeRepo, tmp_path: Path
):
    repo = make_build_repo(FIXTURE)
    sha = repo.git("rev-parse", "HEAD")
    planned = repo.builder("plan", "--all", "--format", "github-matrix", check_exit=0)
    matrix = json.loads(planned.stdout)["include"]
    assert {(e["image"], e["platform"]) for e in matrix} == {
        (image, platform) for image in ALL for platform in PLATFORMS
    }
    assert {e["runner"] for e in matrix if e["platform"] == "linux/arm64"} == {"ubuntu-24.04-arm"}
    waves = sorted({e["generation"] for e in matrix})
    assert waves == [1, 2, 3]  # base+solo, child, grandchild+pair

    merged: dict[str, object] = {}
    for wave in waves:
        digests = tmp_path / f"wave{wave}"
        for entry in (e for e in matrix if e["generation"] == wave):
            # One "runner" per image and platform, as the fan-out workflow runs them.
            job_dir = digests / f"{entry['image']}-{entry['platform'].replace('/', '-')}"
            repo.builder(
                "build",
                "--all",
                "--only",
                entry["image"],
                "--platform",
                entry["platform"],
                "--push-by-digest",
                "--digests-dir",
                str(job_dir),
                check_exit=0,
            )
        meta = tmp_path / f"merge{wave}.json"
        repo.builder(
            "merge",
            "--all",
            "--digests-dir",
            str(digests),
            "--metadata-file",
            str(meta),
            check_exit=0,
        )
        for name, data in repo.metadata(meta).items():
            if data["status"] == "built":
                merged[name] = data["digest"]

    assert set(merged) == ALL
    api = repo.engine.api
    for name in ALL:
        repository = repo.repository(name)
        assert {f"git-{sha[:7]}", "main", "latest"} <= set(api.tags(repository))
        assert api.manifest(repository, "latest").digest == merged[name]
        assert set(api.platforms(repository, "latest")) == PLATFORMS
    # Each child was built on its parent's merged digest from the earlier wave.
    child = repo.repository("child")
    for platform in sorted(PLATFORMS):
        seen = api.read_file(child, "latest", platform, "/child-saw-base.txt")
        assert seen == b"base v1\n"
        labels = api.config(child, api.platforms(child, "latest")[platform])["config"]["Labels"]
        assert labels["org.opencontainers.image.base.digest"] == merged["base"]


def test_merge_refuses_an_image_missing_a_platform(make_build_repo: MakeRepo, tmp_path: Path):
    repo = make_build_repo(FIXTURE)
    digests = tmp_path / "digests"
    repo.builder(
        "build",
        "--all",
        "--only",
        "solo",
        "--platform",
        "linux/amd64",
        "--push-by-digest",
        "--digests-dir",
        str(digests),
        check_exit=0,
    )
    done = repo.builder("merge", "--all", "--digests-dir", str(digests), check_exit=1)
    assert "refusing to tag: no digest for linux/arm64" in done.stderr
    sha = repo.git("rev-parse", "HEAD")
    tags = set(repo.engine.api.tags(repo.repository("solo")))
    assert not tags & {"latest", "main", f"git-{sha[:7]}"}  # no multi-arch tag at all


def test_a_later_wave_refuses_to_build_on_an_unmerged_parent(make_build_repo: MakeRepo):
    repo = make_build_repo(FIXTURE)
    done = repo.builder(
        "build",
        "--all",
        "--only",
        "child",
        "--platform",
        "linux/amd64",
        "--push-by-digest",
        check_exit=1,
    )
    assert "parent base is affected by this change" in done.stdout + done.stderr


def test_a_merged_branch_needs_no_wave_only_the_merge_tags_it(
    make_build_repo: MakeRepo, tmp_path: Path
):
    repo = make_build_repo(FIXTURE)
    repo.builder("build", "--all", check_exit=0)
    main_before = repo.git("rev-parse", "HEAD")
    repo.git("checkout", "-q", "-b", "feature")
    repo.commit({"images/solo/solo.txt": "solo v2\n"})
    repo.builder("build", "--base", main_before, check_exit=0)  # the branch's own build
    repo.git("checkout", "-q", "main")
    repo.git("merge", "-q", "--ff-only", "feature")

    planned = repo.builder("plan", "--base", main_before, "--format", "github-matrix")
    assert json.loads(planned.stdout)["include"] == []  # nothing to build on any runner
    empty = tmp_path / "digests"
    empty.mkdir()
    meta = tmp_path / "merge.json"
    repo.builder(
        "merge", "--base", main_before, "--digests-dir", str(empty),
        "--metadata-file", str(meta), check_exit=0,
    )  # fmt: skip
    assert repo.metadata(meta)["solo"]["status"] == "tagged"
    api = repo.engine.api
    branch = api.manifest(repo.repository("solo"), "feature").digest
    assert api.manifest(repo.repository("solo"), "latest").digest == branch
    assert api.manifest(repo.repository("solo"), "main").digest == branch
