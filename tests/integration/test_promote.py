"""`builder promote` and `builder pin --from-tag` against the real registry: a built set is
promoted tag by tag without a rebuild, a set with an image missing a platform moves
nothing, and pin reads the digests a branch's tags name.

One build for the module (three small images, both platforms, no RUN step): about 20 s.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import Engine, Repo

pytestmark = pytest.mark.engine

PLATFORMS = {"linux/amd64", "linux/arm64"}
IMAGES = ("base", "child", "solo")
PREFIX = "ARG BUILDER_PREFIX=docker.io/acme\n"
FILES = {
    "base-images/base/Dockerfile": (
        "ARG BUSYBOX_IMAGE=busybox\nFROM ${BUSYBOX_IMAGE}\nCOPY base.txt /base.txt\n"
    ),
    "base-images/base/base.txt": "base\n",
    "images/child/Dockerfile": PREFIX + "FROM ${BUILDER_PREFIX}/base\nCOPY child.txt /child.txt\n",
    "images/child/child.txt": "child\n",
    "images/solo/Dockerfile": "FROM scratch\nCOPY solo.txt /solo.txt\n",
    "images/solo/solo.txt": "solo\n",
}


@dataclass
class Built:
    repo: Repo
    digests: dict[str, str]  # image -> the digest the build pushed (its :main)

    @property
    def prefix(self) -> str:
        return f"{self.repo.engine.registry}/{self.repo.namespace}"

    def tag_digest(self, name: str, tag: str) -> str | None:
        api = self.repo.engine.api
        if tag not in api.tags(self.repo.repository(name)):
            return None
        return api.manifest(self.repo.repository(name), tag).digest

    def docker(self, *args: str) -> None:
        subprocess.run(
            ["docker", *args],
            cwd=self.repo.path,
            env=dict(self.repo.engine.env),
            capture_output=True,
            check=True,
            timeout=600,
        )


def workflow(prefix: str) -> str:
    return (
        "# the jobs, run by Argo\n"
        "apiVersion: argoproj.io/v1alpha1\nkind: WorkflowTemplate\n"
        "metadata:\n  name: jobs\nspec:\n  templates:\n"
        f"    - name: child\n      container:\n        image: {prefix}/child:main\n"
        f"    - name: solo\n      container:\n        image: {prefix}/solo:main  # pinned later\n"
    )


@pytest.fixture(scope="module")
def built(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Built:
    namespace = f"t{uuid.uuid4().hex[:10]}"
    path = tmp_path_factory.mktemp("promote") / "repo"
    path.mkdir()
    repo = Repo(path=path, namespace=namespace, engine=engine)
    repo.git("init", "-q", "-b", "main")
    prefix = f"{engine.registry}/{namespace}"
    config = (
        f"registry: {engine.registry}\nnamespace: {namespace}\n"
        f"build_args:\n  BUSYBOX_IMAGE: {engine.busybox()}\n"
        "consumers:\n  - deploy/*.yaml\n"
    )
    repo.commit({"builder.yaml": config, "deploy/wf.yaml": workflow(prefix), **FILES}, "initial")
    meta = path.parent / "build.json"
    repo.builder("build", "--all", "--metadata-file", str(meta), check_exit=0)
    images = repo.metadata(meta)
    return Built(repo=repo, digests={n: str(images[n]["digest"]) for n in IMAGES})


def restore_consumers(built: Built) -> None:
    built.repo.git("checkout", "--", "deploy")


def test_promote_points_every_tag_at_the_same_digest_and_pin_reads_it(
    built: Built, tmp_path: Path
) -> None:
    repo = built.repo
    dry = repo.builder("promote", "--from", "main", "--to", "prod", "--dry-run", check_exit=0)
    assert dry.stdout.splitlines()[-1] == "dry run, :main -> :prod: 3 would move; nothing moved"
    assert all(built.tag_digest(n, "prod") is None for n in IMAGES)

    out = tmp_path / "promoted.json"
    done = repo.builder(
        "promote", "--from", "main", "--to", "prod", "--write-metadata", str(out), check_exit=0
    )
    assert done.stdout.splitlines()[-1] == ":main -> :prod: 3 moved"
    for name in IMAGES:
        # The same index, not a rebuild: the digest the build pushed, every platform kept.
        assert built.tag_digest(name, "prod") == built.digests[name]
        platforms = repo.engine.api.platforms(repo.repository(name), "prod")
        assert set(platforms) == PLATFORMS
    moves = [line for line in done.stderr.splitlines() if line.startswith("moved ")]
    assert [m.split()[1].rsplit("/", 1)[1].rstrip(":") for m in moves] == [
        "base:prod",
        "child:prod",
        "solo:prod",
    ]  # parents before dependants
    assert moves[0].endswith(f": (new) -> {built.digests['base']}")
    promoted = json.loads(out.read_text(encoding="utf-8"))
    assert promoted["revision"] == "tag prod"
    assert {n: e["status"] for n, e in promoted["images"].items()} == dict.fromkeys(
        IMAGES, "tagged"
    )

    again = repo.builder("promote", "--from", "main", "--to", "prod", check_exit=0)
    assert again.stdout.splitlines()[-1] == ":main -> :prod: 3 already there"

    # The promoted set is a metadata file builder pin reads, and --from-tag agrees with it.
    pinned = repo.builder("pin", "--metadata-file", str(out), check_exit=0)
    assert pinned.stdout.splitlines()[-1] == (
        "pinned 2 reference(s) to 2 image(s) in 1 file(s), from tag prod"
    )
    text = (repo.path / "deploy/wf.yaml").read_text(encoding="utf-8")
    assert text == workflow(built.prefix).replace(
        f"{built.prefix}/child:main", f"{built.prefix}/child@{built.digests['child']}"
    ).replace(f"{built.prefix}/solo:main", f"{built.prefix}/solo@{built.digests['solo']}")
    restore_consumers(built)
    repo.builder("pin", "--from-tag", "prod", check_exit=0)
    assert (repo.path / "deploy/wf.yaml").read_text(encoding="utf-8") == text
    restore_consumers(built)


def test_a_set_with_an_image_missing_a_platform_moves_nothing(built: Built) -> None:
    repo, prefix = built.repo, built.prefix
    for name in ("base", "child"):
        built.docker(
            "buildx", "imagetools", "create", "-t", f"{prefix}/{name}:rc", f"{prefix}/{name}:main"
        )
    # solo's :rc is a real push for amd64 alone.
    built.docker(
        "buildx",
        "build",
        "--platform",
        "linux/amd64",
        "--push",
        "-t",
        f"{prefix}/solo:rc",
        "images/solo",
    )
    assert set(repo.engine.api.platforms(repo.repository("solo"), "rc")) == {"linux/amd64"}

    refused = repo.builder("promote", "--from", "rc", "--to", "stable", check_exit=1)
    assert all(built.tag_digest(n, "stable") is None for n in IMAGES)  # nothing moved
    error = refused.stderr.splitlines()[-1]
    assert error.startswith("error: nothing moved to :stable: solo incomplete: ")
    assert "lacks linux/arm64 (it holds linux/amd64)" in error
    rows = {line.split()[0]: line for line in refused.stdout.splitlines()[2:-1]}
    assert sorted(rows) == sorted(IMAGES)
    assert "not moved" in rows["base"]
    assert "not moved" in rows["child"]
    assert "incomplete" in rows["solo"]

    missing = repo.builder("promote", "--from", "nosuchtag", "--to", "stable", check_exit=1)
    assert "base missing: " in missing.stderr
    assert all(built.tag_digest(n, "stable") is None for n in IMAGES)

    # Narrowed to the complete images, the same source moves them.
    repo.builder(
        "promote",
        "--from",
        "rc",
        "--to",
        "stable",
        "--only",
        "base",
        "--only",
        "child",
        check_exit=0,
    )
    assert built.tag_digest("child", "stable") == built.digests["child"]
    assert built.tag_digest("solo", "stable") is None


def test_pin_from_tags_keeps_images_without_the_tag(built: Built) -> None:
    repo = built.repo
    repo.builder("promote", "--from", "main", "--to", "canary", "--only", "solo", check_exit=0)
    stale = repo.builder("pin", "--from-tag", "canary", "--check", check_exit=1)
    assert "deploy/wf.yaml:13: solo: mutable reference" in stale.stdout
    done = repo.builder("pin", "--from-tag", "canary", check_exit=0)
    assert f"kept child (untagged: the registry has no {built.prefix}/child:canary)" in done.stdout
    text = (repo.path / "deploy/wf.yaml").read_text(encoding="utf-8")
    assert f"{built.prefix}/child:main\n" in text  # kept
    assert f"{built.prefix}/solo@{built.digests['solo']}  # pinned later\n" in text
    restore_consumers(built)
