"""Precise inputs, proved on the real engine: for each narrowing rule, a change outside what
the Dockerfile reads leaves the image exactly as it was, and builder says "not affected"
and keeps the content key; a change inside changes the image, and builder says affected,
with a new key.

Each image is built afresh (`--no-cache`) with SOURCE_DATE_EPOCH fixed and timestamps
rewritten to it, into an OCI layout: the same inputs give the same bytes, so an unchanged
manifest digest (and rootfs diff ids) means BuildKit saw nothing new. The builds use the
context, Dockerfile and build args builder gives bake; the keys are the ones reconcile
computes (builder.keys.compute_keys on the commit), the affected set the real CLI's.
"""

from __future__ import annotations

import json
import subprocess
import tarfile
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from builder.git import Git, RevisionSnapshot
from builder.keys import compute_keys
from builder.repo import load_repo
from tests.integration.conftest import MakeRepo, Repo

pytestmark = pytest.mark.engine

EPOCH = "1700000000"


@dataclass(frozen=True)
class Built:
    digest: str  # the image manifest's
    diff_ids: tuple[str, ...]


def build(repo: Repo, tmp_path: Path, image: Rule) -> Built:
    """The image as BuildKit builds it from the working tree, reproducibly."""
    out = tmp_path / f"{image.name}-{uuid.uuid4().hex[:8]}.tar"
    argv = ["docker", "buildx", "build", "--no-cache", "--platform", "linux/amd64"]
    argv += ["--build-arg", f"SOURCE_DATE_EPOCH={EPOCH}"]
    for name, value in {"BUSYBOX_IMAGE": repo.engine.busybox(), **image.args}.items():
        argv += ["--build-arg", f"{name}={value}"]
    argv += ["-f", image.dockerfile, "--output", f"type=oci,dest={out},rewrite-timestamp=true"]
    done = subprocess.run(
        [*argv, image.context],
        cwd=repo.path,
        env=dict(repo.engine.env),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"{' '.join(argv)}\n{done.stderr[-3000:]}"
    with tarfile.open(out) as tar:

        def blob(digest: str) -> dict[str, object]:
            member = tar.extractfile(f"blobs/sha256/{digest.removeprefix('sha256:')}")
            assert member is not None
            return dict(json.load(member))

        member = tar.extractfile("index.json")
        assert member is not None
        index = json.load(member)
        digest = index["manifests"][0]["digest"]
        manifest = blob(digest)
        config = manifest["config"]
        assert isinstance(config, dict)
        rootfs = blob(config["digest"])["rootfs"]
        assert isinstance(rootfs, dict)
    out.unlink()
    return Built(digest=digest, diff_ids=tuple(rootfs["diff_ids"]))


def keys_at(repo: Repo) -> dict[str, str]:
    git = Git(repo.path)
    sha = git.resolve("HEAD")
    return compute_keys(load_repo(RevisionSnapshot(git, sha)).graph, git.file_ids(sha))


def affected(repo: Repo) -> dict[str, list[dict[str, str]]]:
    done = repo.builder(
        "affected", "--base", "HEAD~1", "--head", "HEAD", "--no-reconcile", "-f", "json"
    )
    assert done.returncode == 0, done.stderr
    return {i["name"]: i["reasons"] for i in json.loads(done.stdout)["affected"]}


@dataclass(frozen=True)
class Rule:
    """One narrowing rule: an image, and the changes it does not and does read."""

    name: str
    dockerfile: str
    context: str
    files: Mapping[str, str]
    unread: tuple[Mapping[str, str], ...]  # each a commit the image must not see
    read: Mapping[str, str]  # a commit the image must see
    args: Mapping[str, str] = field(default_factory=dict)
    source: str = ""  # the instruction --explain must name for `read`
    links: Mapping[str, str] = field(default_factory=dict)  # symbolic link -> its target


RULES = (
    Rule(
        name="file",
        dockerfile="images/file/Dockerfile",
        context="images/file",
        files={
            "images/file/Dockerfile": "FROM scratch\nCOPY app.py /app/\n",
            "images/file/app.py": "print('v1')\n",
            "images/file/notes.md": "notes\n",
        },
        unread=({"images/file/notes.md": "more notes\n"}, {"images/file/new.txt": "new\n"}),
        read={"images/file/app.py": "print('v2')\n"},
        source="images/file/Dockerfile:2 COPY app.py /app/",
    ),
    Rule(
        name="folder",
        dockerfile="images/folder/Dockerfile",
        context="images/folder",
        files={
            "images/folder/Dockerfile": "FROM scratch\nCOPY src/ /app/src/\n",
            "images/folder/.dockerignore": "src/**/*.md\n",
            "images/folder/src/lib/util.py": "v1\n",
            "images/folder/src/lib/README.md": "readme\n",
            "images/folder/docs/guide.md": "guide\n",
        },
        unread=(
            {"images/folder/docs/guide.md": "guide 2\n"},
            {"images/folder/docs/new.md": "new\n"},
            {"images/folder/src/lib/README.md": "the .dockerignore drops it\n"},
        ),
        read={"images/folder/src/lib/new.py": "new\n"},
        source="images/folder/Dockerfile:2 COPY src/ /app/src/",
    ),
    Rule(
        name="glob",
        dockerfile="images/glob/Dockerfile",
        context="images/glob",
        files={
            "images/glob/Dockerfile": "FROM scratch\nCOPY *.conf /etc/app/\n",
            "images/glob/a.conf": "a\n",
            "images/glob/sub/inner.conf": "inner\n",
            "images/glob/index.html": "html\n",
        },
        unread=(
            {"images/glob/sub/inner.conf": "inner 2\n"},
            {"images/glob/index.html": "html 2\n"},
        ),
        read={"images/glob/b.conf": "b\n"},
        source="images/glob/Dockerfile:2 COPY *.conf /etc/app/",
    ),
    Rule(
        name="arg",
        dockerfile="images/arg/Dockerfile",
        context="images/arg",
        files={
            "images/arg/Dockerfile": (
                "ARG FLAVOUR=blue\nFROM scratch\nARG FLAVOUR\nARG SIZE\n"
                "COPY assets/${FLAVOUR}/ /assets/\nCOPY sizes/${SIZE}.txt /size.txt\n"
            ),
            "images/arg/image.yaml": "build_args: {SIZE: large}\n",
            "images/arg/assets/blue/x.css": "blue\n",
            "images/arg/assets/red/x.css": "red\n",
            "images/arg/sizes/large.txt": "large\n",
            "images/arg/sizes/small.txt": "small\n",
        },
        unread=(
            {"images/arg/assets/red/x.css": "red 2\n"},
            {"images/arg/sizes/small.txt": "small 2\n"},
        ),
        read={"images/arg/assets/blue/x.css": "blue 2\n"},
        args={"SIZE": "large"},
        source="images/arg/Dockerfile:5 COPY assets/${FLAVOUR}/ /assets/",
    ),
    Rule(
        name="mount",
        dockerfile="images/mount/Dockerfile",
        context="images/mount",
        files={
            "images/mount/Dockerfile": (
                "ARG BUSYBOX_IMAGE\nFROM ${BUSYBOX_IMAGE}\n"
                "RUN --mount=type=bind,source=data,target=/d cp -r /d /out\n"
            ),
            "images/mount/data/seed.csv": "1,2\n",
            "images/mount/other.txt": "other\n",
        },
        unread=({"images/mount/other.txt": "other 2\n"},),
        read={"images/mount/data/seed.csv": "3,4\n"},
        source=(
            "images/mount/Dockerfile:3 RUN --mount=type=bind,source=data,target=/d cp -r /d /out"
        ),
    ),
    Rule(
        name="pilot",
        dockerfile="docker/Dockerfile.pilot",
        context="docker",
        files={
            "docker/Dockerfile.pilot": "FROM scratch\nCOPY pilot /usr/local/bin/\n",
            "docker/Dockerfile.proxy": "FROM scratch\nCOPY envoy /usr/local/bin/\n",
            "docker/pilot": "pilot v1\n",
            "docker/envoy": "envoy v1\n",
            "images/pilot/image.yaml": (
                "dockerfile: ../../docker/Dockerfile.pilot\ncontext: ../../docker\n"
            ),
            "images/proxy/image.yaml": (
                "dockerfile: ../../docker/Dockerfile.proxy\ncontext: ../../docker\n"
            ),
        },
        unread=(
            {"docker/envoy": "envoy v2\n"},
            {"docker/Dockerfile.proxy": "FROM scratch\nCOPY envoy /bin/\n"},
        ),
        read={"docker/pilot": "pilot v2\n"},
        source="docker/Dockerfile.pilot:2 COPY pilot /usr/local/bin/",
    ),
    Rule(
        name="ctrl",
        dockerfile="images/ctrl/Dockerfile",
        context="components",
        files={
            "images/ctrl/Dockerfile": (
                "FROM scratch\nCOPY common/ /src/common/\nCOPY ctrl/ /src/ctrl/\n"
            ),
            "images/ctrl/image.yaml": "context: ../../components\n",
            "components/common/lib.go": "package common\n",
            "components/ctrl/main.go": "package main\n",
            "components/other/main.go": "package other\n",
        },
        unread=({"components/other/main.go": "package other // 2\n"},),
        read={"components/common/lib.go": "package common // 2\n"},
        source="images/ctrl/Dockerfile:2 COPY common/ /src/common/",
    ),
    Rule(
        name="fallback",
        dockerfile="images/fallback/Dockerfile",
        context="images/fallback",
        files={
            # SRC has no value: builder cannot tell what it names, and counts everything;
            # the build then copies the whole context (`${SRC:-.}`), as builder feared.
            "images/fallback/Dockerfile": "FROM scratch\nARG SRC\nCOPY ${SRC:-.} /ctx/\n",
            "images/fallback/anything.txt": "v1\n",
            "elsewhere/file.txt": "outside the context\n",
        },
        unread=({"elsewhere/file.txt": "still outside\n"},),
        read={"images/fallback/anything.txt": "v2\n"},
        source="images/fallback/Dockerfile:3 COPY ${SRC:-.} /ctx/ (ARG SRC has no value)",
    ),
    Rule(
        name="onbuild",
        dockerfile="images/onbuild/Dockerfile",
        context="images/onbuild",
        files={
            # The trigger runs in the stage built FROM base, with this build's context.
            "images/onbuild/Dockerfile": (
                "FROM scratch AS base\nONBUILD COPY . /app/\nFROM base\nCOPY tool /bin/\n"
            ),
            "images/onbuild/tool": "tool\n",
            "images/onbuild/anything.txt": "v1\n",
            "elsewhere/file.txt": "outside the context\n",
        },
        unread=({"elsewhere/file.txt": "still outside\n"},),
        read={"images/onbuild/anything.txt": "v2\n"},
        source=(
            "images/onbuild/Dockerfile:2 ONBUILD COPY . /app/ "
            "(its ONBUILD trigger runs in the stage built FROM it, in this context)"
        ),
    ),
    Rule(
        name="link",
        dockerfile="images/link/Dockerfile",
        context="images/link",
        files={
            # lib is a link to target/: BuildKit follows it (fsutil FollowLinks) and copies
            # target's files, which no read names: builder counts everything.
            "images/link/Dockerfile": "FROM scratch\nCOPY lib/ /lib/\n",
            "images/link/target/x.py": "v1\n",
            "elsewhere/file.txt": "outside the context\n",
        },
        links={"images/link/lib": "target"},
        unread=({"elsewhere/file.txt": "still outside\n"},),
        read={"images/link/target/x.py": "v2\n"},
        source=(
            "images/link/Dockerfile:2 COPY lib/ /lib/ "
            "(images/link/lib is a symbolic link, which BuildKit follows)"
        ),
    ),
)


@pytest.mark.parametrize("rule", RULES, ids=[r.name for r in RULES])
def test_a_change_counts_exactly_when_the_build_reads_it(
    make_build_repo: MakeRepo, tmp_path: Path, rule: Rule
) -> None:
    repo = make_build_repo(dict(rule.files))
    if rule.links:
        for link, target in rule.links.items():
            (repo.path / link).symlink_to(target)
        repo.commit({}, "links")
    before, key = build(repo, tmp_path, rule), keys_at(repo)[rule.name]
    for change in rule.unread:
        repo.commit(dict(change), f"outside: {sorted(change)}")
        now = build(repo, tmp_path, rule)
        assert now == before, f"{sorted(change)} changed the image: builder would miss it"
        assert rule.name not in affected(repo), f"{sorted(change)}: affected, yet unread"
        assert keys_at(repo)[rule.name] == key, f"{sorted(change)} moved the key"
    repo.commit(dict(rule.read), f"inside: {sorted(rule.read)}")
    after = build(repo, tmp_path, rule)
    assert after.digest != before.digest
    assert after.diff_ids != before.diff_ids
    reasons = affected(repo).get(rule.name)
    assert reasons is not None, f"{sorted(rule.read)} changed the image, builder says unaffected"
    assert {r.get("source") for r in reasons} == {rule.source}
    assert keys_at(repo)[rule.name] != key


def test_a_file_only_the_other_dockerfile_reads_leaves_this_image_alone(
    make_build_repo: MakeRepo, tmp_path: Path
) -> None:
    """Several Dockerfiles in one folder: each image reads its own files; a change to one
    image's file leaves the other image's bytes, affected verdict and key alone."""
    [pilot] = [r for r in RULES if r.name == "pilot"]
    proxy = Rule(
        name="proxy",
        dockerfile="docker/Dockerfile.proxy",
        context="docker",
        files=pilot.files,
        unread=(),
        read={},
    )
    repo = make_build_repo(dict(pilot.files))
    before = {r.name: build(repo, tmp_path, r) for r in (pilot, proxy)}
    keys = keys_at(repo)
    repo.commit({"docker/envoy": "envoy v2\n"}, "proxy's binary")
    after = {r.name: build(repo, tmp_path, r) for r in (pilot, proxy)}
    assert after["pilot"] == before["pilot"]
    assert after["proxy"] != before["proxy"]
    assert sorted(affected(repo)) == ["proxy"]
    now = keys_at(repo)
    assert (now["pilot"] == keys["pilot"], now["proxy"] == keys["proxy"]) == (True, False)
