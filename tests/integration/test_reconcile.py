"""Content keys against the real registry: lost builds are rebuilt, upstream moves noticed."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.integration.conftest import Engine, MakeRepo
from tests.integration.test_actions import actions_env, read_outputs
from tests.integration.test_build import FIXTURE, PREFIX

pytestmark = pytest.mark.engine


def built(repo_metadata: dict[str, dict[str, object]]) -> set[str]:
    return {n for n, d in repo_metadata.items() if d["status"] == "built"}


def test_a_failed_image_is_rebuilt_by_the_next_unrelated_push(
    make_build_repo: MakeRepo, tmp_path: Path
):
    files = dict(FIXTURE)
    # Fails unless the run passes the secret: a failure of the run, not of the commit.
    files["images/child/Dockerfile"] = (
        PREFIX + "FROM ${BUILDER_PREFIX}/base\nCOPY child.txt /child.txt\n"
        # A fresh layer first, or BuildKit's cache would answer the RUN from an earlier run.
        "COPY nonce.txt /nonce.txt\n"
        "RUN --mount=type=secret,id=flag,required=true cat /run/secrets/flag > /dev/null\n"
        "RUN cat /base.txt > /child-saw-base.txt\n"
    )
    files["images/child/nonce.txt"] = f"{uuid.uuid4()}\n"
    repo = make_build_repo(files)
    first = tmp_path / "first.json"
    repo.builder("build", "--all", "--metadata-file", str(first), check_exit=1)
    assert built(repo.metadata(first)) == {"base", "solo"}

    repo.commit({"images/solo/solo.txt": "solo v2\n"})  # touches solo only
    second = tmp_path / "second.json"
    done = repo.builder(
        "build",
        "--secret",
        "id=flag,env=FLAG",
        "--metadata-file",
        str(second),
        env={"FLAG": "1"},
        check_exit=0,
    )
    images = repo.metadata(second)
    assert built(images) == {"solo", "child", "grandchild", "pair"}
    assert images["base"]["status"] == "unchanged"  # built before: its key is in the registry
    assert "content key not built" in done.stdout + done.stderr or images["child"]["reason"]

    # Nothing left to do: a rerun of the same commit pushes nothing and says so.
    third = repo.builder("build", check_exit=0)
    assert "nothing to build" in third.stdout


def _seed_upstream(engine: Engine, tmp_path: Path, reference: str, content: str) -> str:
    """Push a two-platform 'upstream' image, as Docker Hub would publish a new python:3.x."""
    context = tmp_path / f"upstream-{abs(hash(content))}"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f"FROM {engine.busybox()}\nCOPY version /upstream-version\n", encoding="utf-8"
    )
    (context / "version").write_text(content, encoding="utf-8")
    subprocess.run(
        [
            "docker",
            "buildx",
            "build",
            "--platform",
            "linux/amd64,linux/arm64",
            "--push",
            "--provenance=false",
            "-t",
            reference,
            str(context),
        ],
        env=dict(engine.env),
        check=True,
        capture_output=True,
    )
    repository, _, tag = reference.partition("/")[2].rpartition(":")
    return engine.api.manifest(repository, tag).digest


def test_refresh_rebuilds_exactly_the_dependants_of_a_moved_upstream(
    make_build_repo: MakeRepo, engine: Engine, tmp_path: Path
):
    files = dict(FIXTURE)
    files["base-images/base/Dockerfile"] = (
        "ARG UPSTREAM=busybox\nFROM ${UPSTREAM}\nCOPY base.txt /base.txt\n"
    )
    repo = make_build_repo(files)
    upstream = f"{engine.registry}/{repo.namespace}-upstream/base:1"
    old = _seed_upstream(engine, tmp_path, upstream, "1.0\n")
    config = (repo.path / "builder.yaml").read_text(encoding="utf-8")
    repo.commit({"builder.yaml": config + f"  UPSTREAM: {upstream}\n"})
    repo.builder("build", "--all", check_exit=0)

    quiet = tmp_path / "quiet.json"
    done = repo.builder("refresh", "--metadata-file", str(quiet), check_exit=0)
    assert built(repo.metadata(quiet)) == set()
    assert "nothing to do" in done.stderr

    commit_tag = f"git-{repo.git('rev-parse', 'HEAD')[:7]}"
    before = engine.api.manifest(repo.repository("grandchild"), commit_tag).digest
    new = _seed_upstream(engine, tmp_path, upstream, "1.1 with a security fix\n")
    meta = tmp_path / "refresh.json"
    done = repo.builder("refresh", "--metadata-file", str(meta), check_exit=0)
    assert built(repo.metadata(meta)) == {"base", "child", "grandchild", "pair"}
    # The commit's own tag is immutable: the refreshed image moves latest, not git-<sha7>.
    assert engine.api.manifest(repo.repository("grandchild"), commit_tag).digest == before
    latest = engine.api.manifest(repo.repository("grandchild"), "latest").digest
    assert latest == repo.metadata(meta)["grandchild"]["digest"] != before
    assert f"upstream {upstream} moved {old} -> {new}" in done.stderr
    for platform in ("linux/amd64", "linux/arm64"):
        seen = engine.api.read_file(
            repo.repository("grandchild"), "latest", platform, "/upstream-version"
        )
        assert seen == b"1.1 with a security fix\n"

    again = tmp_path / "again.json"
    repo.builder("refresh", "--metadata-file", str(again), check_exit=0)
    assert built(repo.metadata(again)) == set()


def test_force_push_with_reconcile_builds_only_what_changed(
    make_build_repo: MakeRepo, tmp_path: Path
):
    repo = make_build_repo(FIXTURE)
    repo.builder("build", "--all", check_exit=0)
    sha = repo.commit({"images/solo/solo.txt": "solo after a force push\n"})
    env = actions_env(repo, tmp_path, "push", {"before": "2" * 40, "after": sha})
    done = repo.builder("build", env=env, check_exit=0)
    assert "not in this clone" in done.stderr
    assert json.loads(read_outputs(tmp_path / "output")["built"]) == ["solo"]


def test_shallow_clone_without_history_with_reconcile(make_build_repo: MakeRepo, tmp_path: Path):
    repo = make_build_repo(FIXTURE)
    repo.builder("build", "--all", check_exit=0)
    repo.commit({"images/grandchild/g.txt": "grandchild v2\n"})
    shallow = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", f"file://{repo.path}", str(shallow)], check=True
    )
    subprocess.run(["git", "-C", str(shallow), "remote", "remove", "origin"], check=True)
    clone = type(repo)(path=shallow, namespace=repo.namespace, engine=repo.engine)
    meta = tmp_path / "meta.json"
    done = clone.builder("build", "--metadata-file", str(meta), check_exit=0)
    assert "shallow clone" in done.stderr
    assert built(clone.metadata(meta)) == {"grandchild"}


def test_a_merged_branch_is_tagged_on_main_not_rebuilt(make_build_repo: MakeRepo, tmp_path: Path):
    repo = make_build_repo(FIXTURE)
    repo.builder("build", "--all", check_exit=0)
    main_before = repo.git("rev-parse", "HEAD")
    repo.git("checkout", "-q", "-b", "feature/x")
    feature = repo.commit({"images/child/child.txt": "child v2\n"})
    push = {"before": main_before, "after": feature}
    repo.builder("build", env=actions_env(repo, tmp_path, "push", push, ref="feature/x"))
    assert set(json.loads(read_outputs(tmp_path / "output")["built"])) == {
        "child",
        "grandchild",
        "pair",
    }

    # A fast-forward merge: main now names exactly what the branch built.
    repo.git("checkout", "-q", "main")
    repo.git("merge", "-q", "--ff-only", "feature/x")
    env = actions_env(repo, tmp_path, "push", push, ref="main")
    done = repo.builder("build", env=env, check_exit=0)
    outputs = read_outputs(tmp_path / "output")
    assert json.loads(outputs["built"]) == []
    assert set(json.loads(outputs["tagged"])) == {"child", "grandchild", "pair"}
    assert "tagging child" in done.stderr
    api = repo.engine.api
    for name in ("child", "grandchild", "pair"):
        branch = api.manifest(repo.repository(name), "feature-x").digest
        assert api.manifest(repo.repository(name), "latest").digest == branch
        assert api.manifest(repo.repository(name), "main").digest == branch
    assert (
        api.manifest(repo.repository("solo"), "latest").digest
        != api.manifest(repo.repository("child"), "latest").digest
    )

    # Again: every tag is in place, nothing is pushed.
    env = actions_env(repo, tmp_path, "push", push, ref="main")
    again = repo.builder("build", env=env, check_exit=0)
    assert "nothing to build" in again.stdout
    assert json.loads(read_outputs(tmp_path / "output")["tagged"]) == []


def test_a_local_push_records_content_keys(make_build_repo: MakeRepo, tmp_path: Path):
    repo = make_build_repo(FIXTURE)
    local = {"CI": "false"}
    repo.builder("build", "--all", env=local, check_exit=0)
    for name in ("base", "solo"):
        assert any(t.startswith("key-") for t in repo.engine.api.tags(repo.repository(name)))
    # So CI recognises them: its first run on the same commit builds nothing.
    ci = repo.builder("build", "--base", "HEAD", check_exit=0)
    assert "nothing to build" in ci.stdout


def push_onbuild_base(engine: Engine, tmp_path: Path) -> str:
    """An upstream base whose config carries `ONBUILD COPY . /app/`, in the registry."""
    upstream = f"{engine.registry}/onbuild-{uuid.uuid4().hex[:8]}/base:1"
    context = tmp_path / "upstream"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f"FROM {engine.busybox()}\nONBUILD COPY . /app/\n", encoding="utf-8"
    )
    push = ["docker", "buildx", "build", "--platform", "linux/amd64,linux/arm64", "--push"]
    subprocess.run(
        [*push, "--provenance=false", "-t", upstream, str(context)],
        env=dict(engine.env),
        check=True,
        capture_output=True,
    )
    return upstream


def test_an_upstream_onbuild_trigger_rebuilds_the_child_when_what_it_copies_changes(
    make_build_repo: MakeRepo, engine: Engine, tmp_path: Path
):
    """The child's Dockerfile reads nothing from its context, but its upstream base's
    `ONBUILD COPY . /app` copies all of it: reconcile reads the base's config, so the
    child's key counts its whole context and a change there rebuilds it (precise inputs
    alone would keep the key and re-tag the old image)."""
    upstream = push_onbuild_base(engine, tmp_path)
    repo = make_build_repo(
        {
            "images/app/Dockerfile": f"FROM {upstream}\nLABEL org.example.job=app\n",
            "images/app/data.txt": "v1\n",
        }
    )
    first = tmp_path / "first.json"
    repo.builder("build", "--all", "--metadata-file", str(first), check_exit=0)
    assert built(repo.metadata(first)) == {"app"}
    seen = engine.api.read_file(repo.repository("app"), "latest", "linux/amd64", "/app/data.txt")
    assert seen == b"v1\n"

    repo.commit({"images/app/data.txt": "v2\n"})
    second = tmp_path / "second.json"
    repo.builder("build", "--metadata-file", str(second), check_exit=0)
    assert built(repo.metadata(second)) == {"app"}
    for platform in ("linux/amd64", "linux/arm64"):
        seen = engine.api.read_file(repo.repository("app"), "latest", platform, "/app/data.txt")
        assert seen == b"v2\n"


def test_a_local_push_refuses_ignored_files_an_upstream_trigger_would_send(
    make_build_repo: MakeRepo, engine: Engine, tmp_path: Path
):
    """The child's Dockerfile reads nothing, so the first look finds no stray; its base's
    `ONBUILD COPY . /app/`, learned from the registry, sends the file git ignores. A local
    push refuses it, and one that sends it (--include-ignored) counts it in the key, so
    CI's clean checkout rebuilds instead of taking that image for its own."""
    upstream = push_onbuild_base(engine, tmp_path)
    repo = make_build_repo(
        {
            ".gitignore": "*.log\n",
            "images/app/Dockerfile": f"FROM {upstream}\nLABEL org.example.job=app\n",
            "images/app/data.txt": "v1\n",
        }
    )
    repo.write({"images/app/debug.log": "local only\n"})
    local = {"CI": "false"}
    preview = repo.builder("affected", "--base", "HEAD", "--reconcile", env=local, check_exit=0)
    assert "app: 1 file(s) git ignores are in its build context" in preview.stderr
    assert "images/app/debug.log" in preview.stderr

    refused = repo.builder("build", "--all", env=local, check_exit=2)
    assert refused.stderr.splitlines()[-1].startswith(
        "error: 1 file(s) git ignores are in the build contexts of app: images/app/debug.log; "
        "refusing to push images that no commit describes"
    )
    assert engine.api.tags(repo.repository("app")) == []  # nothing pushed

    repo.builder("build", "--all", "--include-ignored", env=local, check_exit=0)
    seen = engine.api.read_file(repo.repository("app"), "latest", "linux/amd64", "/app/debug.log")
    assert seen == b"local only\n"
    repo.write({"images/app/debug.log": None})  # CI's clean checkout
    ci = tmp_path / "ci.json"
    repo.builder("build", "--base", "HEAD", "--metadata-file", str(ci), check_exit=0)
    assert built(repo.metadata(ci)) == {"app"}
