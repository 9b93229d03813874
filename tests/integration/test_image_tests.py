"""Image tests on the real engine: tags move only for images whose tests passed on every
platform (arm64 under QEMU here), a verdict is recorded beside the key, a fix re-tests
without rebuilding, a hanging test is killed, and the fan-out refuses a failed platform."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.conftest import MakeRepo, Repo
from tests.integration.test_build import PREFIX

pytestmark = pytest.mark.engine

BUSYBOX = "ARG BUSYBOX_IMAGE=busybox\nFROM ${BUSYBOX_IMAGE}\n"
# Fails only where `uname -m` is not x86_64: on arm64, under QEMU or on a native runner.
ONLY_AMD64 = (
    "test:\n  run:\n    - test -f /base.txt\n    - uname -m | tee /dev/stderr | grep -qx x86_64\n"
    "  timeout: 120\n"
)
FIXED = (
    "test:\n  run:\n    - test -f /base.txt\n"
    "    - uname -m | tee /dev/stderr | grep -qxE 'x86_64|aarch64'\n  timeout: 120\n"
)
FILES = {
    "base-images/base/Dockerfile": BUSYBOX + "COPY base.txt /base.txt\n",
    "base-images/base/base.txt": "base\n",
    # image.yaml is builder's, not the build's: left out, editing the test keeps the key.
    "base-images/base/.dockerignore": "image.yaml\n",
    "base-images/base/image.yaml": ONLY_AMD64,
    "images/child/Dockerfile": PREFIX + "FROM ${BUILDER_PREFIX}/base\nCOPY child.txt /child.txt\n",
    "images/child/child.txt": "child\n",
    "images/solo/Dockerfile": BUSYBOX + "COPY solo.txt /solo.txt\n",
    "images/solo/solo.txt": "solo\n",
    "images/solo/image.yaml": "test: grep -q solo /solo.txt\n",
}


def statuses(images: dict[str, dict[str, object]]) -> dict[str, object]:
    return {name: data["status"] for name, data in images.items()}


def verdicts(data: dict[str, object]) -> dict[str, object]:
    tests = data["tests"]
    assert isinstance(tests, list)
    return {t["platform"]: t["result"] for t in tests}


def test_a_test_failing_only_on_arm64_moves_no_tag_and_the_fix_retests_without_a_rebuild(
    make_build_repo: MakeRepo, tmp_path: Path
) -> None:
    repo = make_build_repo(FILES)
    sha = repo.git("rev-parse", "HEAD")
    first = tmp_path / "first.json"
    done = repo.builder("build", "--all", "--metadata-file", str(first), check_exit=1)
    images = repo.metadata(first)
    assert statuses(images) == {"base": "failed", "child": "skipped", "solo": "built"}
    assert images["base"]["reason"] == (
        "test failed on linux/arm64: `uname -m | tee /dev/stderr | grep -qx x86_64` exited 1"
    )
    assert verdicts(images["base"]) == {"linux/amd64": "passed", "linux/arm64": "failed"}
    assert images["base"]["tests"][1]["output"] == "aarch64"  # type: ignore[index]
    assert images["child"]["reason"] == "parent base failed"
    assert "error: 1 image(s) failed: base" in done.stderr
    assert "base   failed (test)" in done.stdout

    api = repo.engine.api
    base, child, solo = (repo.repository(n) for n in ("base", "child", "solo"))
    # The failed image stays addressable by its key, and no tag people pull names it.
    [key] = [t for t in api.tags(base) if t.startswith("key-")]
    assert api.manifest(base, key).digest == images["base"]["digest"]
    assert set(api.tags(base)) == {key, "buildcache"}
    assert api.tags(child) == []  # never built on the failed parent
    tested = [t for t in api.tags(solo) if t.startswith("tested-")]
    assert len(tested) == 1
    assert api.release_tags(solo) == {f"git-{sha[:7]}", "main", "latest", *tested}
    assert api.manifest(solo, tested[0]).digest == api.manifest(solo, "latest").digest

    # Debugging: `builder test` runs the tests of what was built, tagged or not.
    amd64 = repo.builder("test", "--only", "base", "--platform", "linux/amd64", check_exit=0)
    assert "amd64 passed" in amd64.stdout
    both = repo.builder("test", "--only", "base", check_exit=1)
    assert "arm64 FAILED" in both.stdout
    assert f"@{images['base']['digest']}" in both.stdout
    assert "error: 1 image(s) failed their tests: base" in both.stderr

    # The fix is in the test: the same image is tested again and tagged, never rebuilt.
    fixed = repo.commit({"base-images/base/image.yaml": FIXED}, "the test was wrong")
    second = tmp_path / "second.json"
    done = repo.builder("build", "--metadata-file", str(second), check_exit=0)
    again = repo.metadata(second)
    assert statuses(again) == {"base": "tagged", "child": "built", "solo": "unchanged"}
    assert again["base"]["digest"] == images["base"]["digest"]
    assert verdicts(again["base"]) == {"linux/amd64": "passed", "linux/arm64": "passed"}
    assert "testing base" in done.stderr
    assert "building base" not in done.stderr
    for tag in ("latest", "main", f"git-{fixed[:7]}"):
        assert api.manifest(base, tag).digest == images["base"]["digest"]
    assert any(t.startswith("tested-") for t in api.tags(base))
    assert api.manifest(child, "latest").digest == again["child"]["digest"]
    amd64_child = api.platforms(child, "latest")["linux/amd64"]
    labels = api.config(child, amd64_child)["config"]["Labels"]
    assert labels["org.opencontainers.image.base.digest"] == images["base"]["digest"]
    assert api.manifest(solo, "latest").digest == images["solo"]["digest"]  # not rebuilt

    # Every key is built and tested: nothing left to do.
    third = repo.builder("build", check_exit=0)
    assert "nothing to build" in third.stdout


def leftover_containers(repo: Repo) -> list[str]:
    done = subprocess.run(
        [
            "docker",
            "ps",
            "--all",
            "--filter",
            "label=dev.builder.test-of",
            "--format",
            '{{.Label "dev.builder.test-of"}}',
        ],
        env=dict(repo.engine.env),
        capture_output=True,
        text=True,
        check=True,
    )
    return [line for line in done.stdout.splitlines() if f"/{repo.namespace}/" in line]


def test_a_hanging_test_is_killed_at_its_timeout_and_nothing_leaves_the_machine(
    make_build_repo: MakeRepo, tmp_path: Path
) -> None:
    repo = make_build_repo(
        {
            "images/hang/Dockerfile": BUSYBOX + "RUN echo built > /built.txt\n",
            "images/hang/image.yaml": (
                "test:\n  run: echo started; sleep 600\n  timeout: 5\n  platforms: [linux/amd64]\n"
            ),
        }
    )
    meta = tmp_path / "meta.json"
    started = time.monotonic()
    done = repo.builder("build", "--all", "--no-push", "--metadata-file", str(meta), check_exit=1)
    assert time.monotonic() - started < 300
    hang = repo.metadata(meta)["hang"]
    assert hang["status"] == "failed"
    assert hang["reason"] == (
        "test timed out on linux/amd64: `echo started; sleep 600` was killed after 5s"
    )
    [test] = hang["tests"]  # type: ignore[misc]
    assert test["result"] == "timed out"
    assert 5 <= test["seconds"] < 60
    assert test["output"] == "started"
    assert "amd64 TIMED OUT" in done.stdout
    assert leftover_containers(repo) == []
    assert repo.engine.api.tags(repo.repository("hang")) == []  # --no-push: nothing pushed


def test_the_fan_out_merges_only_platforms_whose_tests_passed(
    make_build_repo: MakeRepo, tmp_path: Path
) -> None:
    repo = make_build_repo(
        {
            "images/solo/Dockerfile": BUSYBOX + "COPY solo.txt /solo.txt\n",
            "images/solo/solo.txt": "solo\n",
            "images/solo/image.yaml": "test: uname -m | grep -qx x86_64\n",
        }
    )
    digests = tmp_path / "digests"
    for platform, code in (("linux/amd64", 0), ("linux/arm64", 1)):
        job = digests / platform.replace("/", "-")
        repo.builder(
            "build", "--all", "--only", "solo", "--platform", platform,
            "--push-by-digest", "--digests-dir", str(job), check_exit=code,
        )  # fmt: skip
    assert [p.name for p in digests.rglob("*.digest")] == ["solo__linux-amd64.digest"]
    done = repo.builder("merge", "--all", "--digests-dir", str(digests), check_exit=1)
    assert (
        "refusing to tag: no digest for linux/arm64 (its build failed, or its tests did)"
        in done.stderr
    )
    assert repo.engine.api.release_tags(repo.repository("solo")) <= {
        f"git-{repo.git('rev-parse', 'HEAD')[:7]}-linux-amd64",
        f"git-{repo.git('rev-parse', 'HEAD')[:7]}-linux-arm64",
    }  # staging tags of the docker driver at most: no tag people pull
