"""Never miss a rebuild, proved on the real engine: what BuildKit receives changes exactly
when builder's content key and affected set say so; every Docker Hub spelling of an in-repo
parent builds on this run's parent; digest pins are honoured; overrides keep edges; files
git ignores never sneak into an image under a commit's key."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.integration.conftest import GIT_ENV, MakeRepo, Repo
from tests.integration.registry_api import Entry

pytestmark = pytest.mark.engine

AMD64 = "linux/amd64"


def one_platform(repo: Repo) -> None:
    """amd64 only: these tests are about inputs, not architectures, and stay fast."""
    config = (repo.path / "builder.yaml").read_text()
    repo.commit({"builder.yaml": config + "platforms: [linux/amd64]\n"}, "amd64 only")


def build(repo: Repo, tmp_path: Path, *args: str) -> dict[str, dict[str, object]]:
    meta = tmp_path / f"meta-{uuid.uuid4().hex[:6]}.json"
    repo.builder("build", "--metadata-file", str(meta), *args, check_exit=0)
    return repo.metadata(meta)


def key_of(result: dict[str, object]) -> str:
    tags = result["tags"]
    assert isinstance(tags, list)
    return next(t.rsplit(":", 1)[1] for t in tags if t.rsplit(":", 1)[1].startswith("key-"))


def entries(repo: Repo, name: str, digest: object) -> dict[str, Entry]:
    found = repo.engine.api.entries(repo.repository(name), str(digest), AMD64)
    return {p: e for p, e in found.items() if p.startswith("ctx")}


# -- modes, links, submodules: the image changes exactly when the key does ------------------


def run_git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "protocol.file.allow=always", *args],
        cwd=cwd,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        check=True,
    )


def submodule_source(tmp_path: Path) -> Path:
    source = tmp_path / "vendored"
    source.mkdir()
    run_git(source, "init", "-q", "-b", "main")
    (source / "lib.sh").write_text("echo v1\n")
    run_git(source, "add", "-A")
    run_git(source, "commit", "-q", "-m", "v1")
    return source


def test_modes_links_and_submodules_change_the_image_exactly_when_the_key_does(
    make_build_repo: MakeRepo, tmp_path: Path
) -> None:
    repo = make_build_repo(
        {
            "images/ctx/Dockerfile": "FROM scratch\nCOPY . /ctx/\n",
            # image.yaml is a context file like any other unless the .dockerignore drops it.
            "images/ctx/.dockerignore": "*.md\nDockerfile\nimage.yaml\n",
            "images/ctx/run.sh": "echo run\n",
            "images/ctx/notes.md": "never sent\n",
        }
    )
    one_platform(repo)
    (repo.path / "images/ctx/link").symlink_to("run.sh")
    source = submodule_source(tmp_path)
    run_git(repo.path, "submodule", "add", "-q", str(source), "images/ctx/vendor")
    repo.commit({}, "link and submodule")
    first = build(repo, tmp_path, "--all")["ctx"]
    before = entries(repo, "ctx", first["digest"])
    assert before["ctx/link"].link == "run.sh"
    assert before["ctx/vendor/lib.sh"].content == b"echo v1\n"
    assert "ctx/notes.md" not in before

    def bump() -> None:
        (source / "lib.sh").write_text("echo v2\n")
        run_git(source, "commit", "-q", "-am", "v2")
        run_git(repo.path / "images/ctx/vendor", "pull", "-q", "origin", "main")

    def relink() -> None:
        (repo.path / "images/ctx/link").unlink()
        (repo.path / "images/ctx/link").symlink_to("notes.md")

    steps = [
        ("chmod +x", lambda: (repo.path / "images/ctx/run.sh").chmod(0o755), True),
        ("retarget a link", relink, True),
        ("bump the submodule", bump, True),
        (
            "edit a file .dockerignore drops",
            lambda: repo.write({"images/ctx/notes.md": "x\n"}),
            False,
        ),
        ("edit image.yaml only", lambda: repo.write({"images/ctx/image.yaml": "# hi\n"}), False),
    ]
    previous, previous_key, digest = before, key_of(first), first["digest"]
    for name, change, sent_differs in steps:
        change()
        repo.commit({}, name)
        result = build(repo, tmp_path)["ctx"]
        digest = result["digest"] or digest  # "unchanged": not affected, nothing pushed
        now = entries(repo, "ctx", digest)
        key = key_of(result) if result["tags"] else previous_key
        assert (now != previous) == sent_differs, name
        assert (key != previous_key) == sent_differs, f"{name}: key moved={key != previous_key}"
        # A new key is built; the same key is at most re-tagged, never rebuilt.
        assert (result["status"] == "built") == sent_differs, (name, result["status"])
        previous, previous_key = now, key
    assert previous["ctx/run.sh"].mode == 0o755
    assert previous["ctx/link"].link == "notes.md"
    assert previous["ctx/vendor/lib.sh"].content == b"echo v2\n"


# -- Docker Hub spellings of an in-repo parent -----------------------------------------------

SPELLINGS = {
    "plain": "{ns}/base",
    "hub": "docker.io/{ns}/base",
    "index": "index.docker.io/{ns}/base:latest",
    "registry1": "registry-1.docker.io/{ns}/base",
}


def layers(reference: str) -> list[str]:
    out = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{json .RootFS.Layers}}", reference],
        capture_output=True,
        text=True,
        check=True,
    )
    return list(json.loads(out.stdout))


def test_every_docker_hub_spelling_builds_on_this_runs_parent(
    make_build_repo: MakeRepo, tmp_path: Path
) -> None:
    """Nothing can be pulled from Docker Hub here: a child whose named context BuildKit did
    not match would fail to resolve; one that matched must carry the parent's new layers."""
    namespace = f"hub{uuid.uuid4().hex[:8]}"
    files = {
        "builder.yaml": f"registry: docker.io\nnamespace: {namespace}\nplatforms: [linux/amd64]\n",
        "base-images/base/Dockerfile": "FROM scratch\nCOPY marker /marker\n",
        "base-images/base/marker": "v1\n",
    }
    for name, spelling in SPELLINGS.items():
        files[f"images/{name}/Dockerfile"] = (
            f"FROM {spelling.format(ns=namespace)}\nCOPY own /own-{name}\n"
        )
        files[f"images/{name}/own"] = f"{name}\n"
    repo = make_build_repo(files)
    args = ("--no-push", "--no-reconcile", "--no-cache")
    # The loaded images stay in the engine's store (tiny; removing them costs a minute).
    build(repo, tmp_path, "--all", *args)
    sha = repo.commit({"base-images/base/marker": "v2\n"}, "parent changes")
    results = build(repo, tmp_path, *args)
    assert {n for n, r in results.items() if r["status"] == "built"} == {"base", *SPELLINGS}
    tag = f"git-{sha[:7]}"
    parent = layers(f"docker.io/{namespace}/base:{tag}")
    for name in SPELLINGS:
        child = layers(f"docker.io/{namespace}/{name}:{tag}")
        assert child[: len(parent)] == parent, f"{name} did not build on this run's base"


# -- digest pins and overrides ----------------------------------------------------------------


def test_a_digest_pin_is_honoured_while_its_repository_is_rebuilt(
    make_build_repo: MakeRepo, tmp_path: Path
) -> None:
    repo = make_build_repo(
        {
            "base-images/base/Dockerfile": "FROM scratch\nCOPY marker /marker\n",
            "base-images/base/marker": "v1\n",
        }
    )
    one_platform(repo)
    v1 = build(repo, tmp_path, "--all")["base"]["digest"]
    registry = repo.engine.registry
    pin = f"{registry}/{repo.repository('base')}@{v1}"
    repo.commit(
        {
            "images/pinned/Dockerfile": f"FROM {pin}\nCOPY own /own\n",
            "images/pinned/own": "pinned\n",
            "base-images/base/marker": "v2\n",
        },
        "pin v1, move base to v2",
    )
    results = build(repo, tmp_path)
    assert results["base"]["status"] == results["pinned"]["status"] == "built"
    api = repo.engine.api
    marker = api.read_file(
        repo.repository("pinned"), str(results["pinned"]["digest"]), AMD64, "marker"
    )
    assert marker == b"v1\n", "the pinned digest was rewired to the fresh build"
    assert api.read_file(repo.repository("base"), "latest", AMD64, "marker") == b"v2\n"


def test_a_namespace_override_keeps_literal_references_wired(
    make_build_repo: MakeRepo, tmp_path: Path
) -> None:
    """builder.yaml says namespace N; the run pushes to N2. `FROM <registry>/N/base`, written
    out, still means the in-repo base, and builds on the N2 base this run pushed."""
    repo = make_build_repo({})
    registry = repo.engine.registry
    repo.commit(
        {
            "base-images/base/Dockerfile": "FROM scratch\nCOPY marker /marker\n",
            "base-images/base/marker": "fresh\n",
            "images/child/Dockerfile": (f"FROM {registry}/{repo.namespace}/base\nCOPY own /own\n"),
            "images/child/own": "child\n",
        },
        "literal reference",
    )
    one_platform(repo)
    other = f"{repo.namespace}x"
    results = build(repo, tmp_path, "--all", "--namespace", other)
    assert {results["base"]["status"], results["child"]["status"]} == {"built"}
    api = repo.engine.api
    marker = api.read_file(f"{other}/child", str(results["child"]["digest"]), AMD64, "marker")
    assert marker == b"fresh\n"
    assert api.tags(repo.repository("base")) == [], "nothing may be pushed under builder.yaml's"


# -- files git ignores ------------------------------------------------------------------------


def test_ignored_files_are_refused_or_counted_in_the_key(
    make_build_repo: MakeRepo, tmp_path: Path
) -> None:
    repo = make_build_repo(
        {
            ".gitignore": "dist/\n",
            "images/app/Dockerfile": "FROM scratch\nCOPY . /ctx/\n",
            "images/app/src.txt": "source\n",
        }
    )
    one_platform(repo)
    (repo.path / "images/app/dist").mkdir()
    (repo.path / "images/app/dist/app.js").write_text("generated\n")
    refused = repo.builder("build", "--all", check_exit=2)
    assert "images/app/dist/app.js" in refused.stderr
    assert repo.engine.api.tags(repo.repository("app")) == []

    with_artifact = build(repo, tmp_path, "--all", "--include-ignored")["app"]
    assert "ctx/dist/app.js" in entries(repo, "app", with_artifact["digest"])
    (repo.path / "images/app/dist/app.js").unlink()
    clean = build(repo, tmp_path, "--all")["app"]
    # The clean checkout's key is not the one the artifact was pushed under: rebuilt.
    assert clean["status"] == "built"
    assert key_of(clean) != key_of(with_artifact)
    assert "ctx/dist/app.js" not in entries(repo, "app", clean["digest"])
