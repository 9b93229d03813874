"""builder under a simulated GitHub Actions environment, against the real engine."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import MakeRepo, Repo
from tests.integration.test_build import ALL, FIXTURE

pytestmark = pytest.mark.engine


def actions_env(
    repo: Repo, tmp_path: Path, event_name: str, event: dict[str, object], ref: str = "main"
) -> dict[str, str]:
    event_path = tmp_path / "event.json"
    event_path.write_text(json.dumps(event), encoding="utf-8")
    for name in ("output", "summary"):
        (tmp_path / name).write_text("", encoding="utf-8")
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": event_name,
        "GITHUB_EVENT_PATH": str(event_path),
        "GITHUB_REF_TYPE": "branch",
        "GITHUB_REF_NAME": ref,
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "acme/monorepo",
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary"),
    }


def read_outputs(path: Path) -> dict[str, str]:
    """Parse $GITHUB_OUTPUT's `name<<DELIM ... DELIM` records."""
    outputs, lines = {}, path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        name, _, delimiter = lines[i].partition("<<")
        end = lines.index(delimiter, i + 1)
        outputs[name] = "\n".join(lines[i + 1 : end])
        i = end + 1
    return outputs


def test_push_event_writes_summary_outputs_and_groups(make_build_repo: MakeRepo, tmp_path: Path):
    repo = make_build_repo(FIXTURE)
    repo.builder("build", "--all", check_exit=0)
    before = repo.git("rev-parse", "HEAD")
    after = repo.commit({"images/solo/solo.txt": "solo v2\n"})
    env = actions_env(repo, tmp_path, "push", {"before": before, "after": after})
    done = repo.builder("build", env=env, check_exit=0)

    outputs = read_outputs(tmp_path / "output")
    assert json.loads(outputs["built"]) == ["solo"]
    assert json.loads(outputs["failed"]) == []
    images = json.loads(outputs["images"])
    assert images["solo"]["status"] == "built"
    assert images["base"]["status"] == "unchanged"
    assert images["solo"]["pinned"].startswith(
        f"{repo.engine.registry}/{repo.namespace}/solo@sha256:"
    )
    assert json.loads(outputs["matrix"]) == {
        "include": [{"image": "solo", "platforms": "linux/amd64,linux/arm64"}]
    }
    summary = (tmp_path / "summary").read_text(encoding="utf-8")
    assert "| solo | ✅ built | context file changed: images/solo/solo.txt |" in summary
    assert "| base | ➖ unchanged | not affected |" in summary
    assert "```mermaid" in summary
    assert "classDef built" in summary
    assert "::group::built solo" in done.stderr
    assert "::endgroup::" in done.stderr
    labels_source = repo.engine.api.config(
        repo.repository("solo"),
        repo.engine.api.platforms(repo.repository("solo"), "latest")["linux/amd64"],
    )["config"]["Labels"]["org.opencontainers.image.source"]
    assert labels_source == "https://github.com/acme/monorepo"


def test_force_push_with_a_missing_before_builds_everything_loudly(
    make_build_repo: MakeRepo, tmp_path: Path
):
    repo = make_build_repo(FIXTURE)
    after = repo.git("rev-parse", "HEAD")
    env = actions_env(repo, tmp_path, "push", {"before": "1" * 40, "after": after})
    done = repo.builder("build", env=env, check_exit=0)
    assert "::warning::base 111111111111 from the push event is not in this clone" in done.stderr
    assert set(json.loads(read_outputs(tmp_path / "output")["built"])) == ALL


def test_new_branch_compares_with_its_merge_base_and_earns_no_latest(
    make_build_repo: MakeRepo, tmp_path: Path
):
    repo = make_build_repo(FIXTURE)
    repo.builder("build", "--all", check_exit=0)  # main's images, parents of the branch's
    repo.git("checkout", "-q", "-b", "feature/ETL-7")
    sha = repo.commit({"images/child/child.txt": "child v2\n"})
    env = actions_env(
        repo, tmp_path, "push", {"before": "0" * 40, "after": sha}, ref="feature/ETL-7"
    )
    done = repo.builder("build", env=env, check_exit=0)
    assert "new branch: comparing with its merge base with main" in done.stderr
    assert set(json.loads(read_outputs(tmp_path / "output")["built"])) == {
        "child",
        "grandchild",
        "pair",
    }
    main_sha = repo.git("rev-parse", "main")
    tags = repo.engine.api.release_tags(repo.repository("child"))
    assert tags == {f"git-{main_sha[:7]}", "main", "latest"} | {
        f"git-{sha[:7]}",
        "feature-etl-7",
    }
    # latest still points at main's build, not the branch's.
    api = repo.engine.api
    latest = api.manifest(repo.repository("child"), "latest").digest
    assert latest == api.manifest(repo.repository("child"), "main").digest
    assert latest != api.manifest(repo.repository("child"), "feature-etl-7").digest


def test_pull_request_builds_without_pushing(make_build_repo: MakeRepo, tmp_path: Path):
    repo = make_build_repo(FIXTURE)
    repo.builder("build", "--all", check_exit=0)
    base = repo.git("rev-parse", "HEAD")
    repo.commit({"base-images/base/base.txt": "base v2\n"})
    event = {
        "pull_request": {"base": {"sha": base}, "head": {"sha": repo.git("rev-parse", "HEAD")}}
    }
    env = actions_env(repo, tmp_path, "pull_request", event)
    repo.builder("build", "--no-push", env=env, check_exit=0)
    images = json.loads(read_outputs(tmp_path / "output")["images"])
    assert {n for n, d in images.items() if d["status"] == "built"} == ALL - {"solo"}
    assert all(d["digest"] is None for d in images.values())
    head = repo.git("rev-parse", "HEAD")
    for name in ALL:
        assert f"git-{head[:7]}" not in repo.engine.api.tags(repo.repository(name))
    # On the docker driver the images are loaded instead: runnable, on the new parent.
    for platform, arch in (("linux/amd64", "x86_64"), ("linux/arm64", "aarch64")):
        shown = subprocess.run(
            [
                "docker",
                "run",
                "--rm",
                "--platform",
                platform,
                f"{repo.engine.registry}/{repo.repository('pair')}:git-{head[:7]}",
                "cat",
                "/pair-base.txt",
                "/base-arch.txt",
            ],
            env=dict(repo.engine.env),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert (shown.returncode, shown.stdout) == (0, f"base v2\n{arch}\n"), shown.stderr


def test_config_errors_become_annotations(make_build_repo: MakeRepo, tmp_path: Path):
    repo = make_build_repo(FIXTURE)
    sha = repo.commit({"images/solo/image.yaml": "platforms: linux/amd64\n"})
    env = actions_env(repo, tmp_path, "push", {"before": "0" * 40, "after": sha})
    done = repo.builder("build", env=env, check_exit=2)
    assert "::error file=images/solo/image.yaml,line=1::" in done.stderr
    assert "Traceback" not in done.stderr
