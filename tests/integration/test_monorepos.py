"""Real-monorepo layouts on the real engine: variants under one repository, addressed by
tag, and images of one folder told apart by a suffix, built for both platforms."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.integration.conftest import MakeRepo

pytestmark = pytest.mark.engine

PLATFORMS = {"linux/amd64", "linux/arm64"}


def test_variants_and_tag_addressed_parents_build_on_this_runs_images(
    make_build_repo: MakeRepo, tmp_path: Path
) -> None:
    repo = make_build_repo({})
    registry = repo.engine.registry
    deps = f"{registry}/{repo.namespace}/buildpack-deps"
    app = f"{registry}/{repo.namespace}/app"
    busybox = repo.engine.busybox()

    def variant(tag: str, parent: str, marker: str) -> dict[str, str]:
        return {
            "Dockerfile": f"FROM {parent}\nCOPY marker /{tag}.txt\n",
            "image.yaml": f"repository: {deps}\ntag: {tag}\n",
            "marker": marker,
        }

    files = {
        "builder.yaml": (repo.path / "builder.yaml").read_text()
        + "image_roots: [images, 'debian/*', 'debian/*/*']\n",
        **{
            f"debian/bookworm/curl/{k}": v
            for k, v in variant("bookworm-curl", busybox, "curl v1\n").items()
        },
        **{
            f"debian/bookworm/scm/{k}": v
            for k, v in variant("bookworm-scm", f"{deps}:bookworm-curl", "scm\n").items()
        },
        **{
            f"debian/bookworm/{k}": v
            for k, v in variant("bookworm", f"{deps}:bookworm-scm", "full\n").items()
        },
        # One folder, two images: the plain one and a `-gpu` flavour (another build arg).
        "images/app/Dockerfile": (
            f"FROM {busybox}\nARG FLAVOR=cpu\nRUN echo $FLAVOR > /flavor.txt\n"
        ),
        "images/app/image.yaml": (
            "- name: app\n- name: app-gpu\n  tag_suffix: -gpu\n  build_args: {FLAVOR: gpu}\n"
        ),
        "images/app-user/Dockerfile": f"FROM {app}:latest-gpu\nCOPY run.sh /run.sh\n",
        "images/app-user/run.sh": "run\n",
    }
    sha = repo.commit(files, "monorepo layouts")
    meta = tmp_path / "meta.json"
    repo.builder("build", "--all", "--metadata-file", str(meta), check_exit=0)
    images = repo.metadata(meta)
    assert {n for n, d in images.items() if d["status"] == "built"} == {
        "bookworm",
        "bookworm-curl",
        "bookworm-scm",
        "app",
        "app-gpu",
        "app-user",
    }
    api = repo.engine.api
    short = sha[:7]
    deps_tags = api.release_tags(f"{repo.namespace}/buildpack-deps")
    for tag in ("bookworm-curl", "bookworm-scm", "bookworm"):
        # Each variant's own tag, and builder's tags carrying it as a prefix.
        assert {tag, f"{tag}-git-{short}", f"{tag}-main"} <= deps_tags
        assert set(api.platforms(f"{repo.namespace}/buildpack-deps", tag)) == PLATFORMS
        # Image names under a glob root: the folders below its literal part, joined.
        assert api.manifest(f"{repo.namespace}/buildpack-deps", tag).digest == images[tag]["digest"]
    app_tags = api.release_tags(f"{repo.namespace}/app")
    assert {"latest", "main", f"git-{short}", "latest-gpu", "main-gpu", f"git-{short}-gpu"} == (
        app_tags
    )
    for platform in PLATFORMS:
        full = api.read_file(
            f"{repo.namespace}/buildpack-deps", "bookworm", platform, "bookworm-curl.txt"
        )
        assert full == b"curl v1\n"
        flavor = api.read_file(f"{repo.namespace}/app-user", "latest", platform, "flavor.txt")
        assert flavor == b"gpu\n"

    # The tag-addressed parent changes: its dependants, and only they, build on it.
    repo.commit({"debian/bookworm/curl/marker": f"curl {uuid.uuid4().hex}\n"}, "curl moves")
    second = tmp_path / "second.json"
    repo.builder("build", "--metadata-file", str(second), check_exit=0)
    results = repo.metadata(second)
    assert {n for n, d in results.items() if d["status"] == "built"} == {
        "bookworm",
        "bookworm-curl",
        "bookworm-scm",
    }
    marker = (repo.path / "debian/bookworm/curl/marker").read_bytes()
    for platform in PLATFORMS:
        got = api.read_file(
            f"{repo.namespace}/buildpack-deps", "bookworm", platform, "bookworm-curl.txt"
        )
        assert got == marker
