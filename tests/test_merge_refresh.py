"""`builder merge` reads the digests the fan-out jobs wrote; `builder refresh` finds moves."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.changes import compute_all
from builder.commands.merge import load_digests
from builder.commands.refresh import (
    BASE_DIGEST_LABEL,
    UpstreamMove,
    compute_moves,
    describe_moves,
)
from builder.errors import UserError
from builder.pipeline import digest_file_name
from builder.plan import BuildPlan, Options, Revision, compute_plan
from tests.conftest import load_files

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64


def write(directory: Path, relative: str, text: str) -> Path:
    path = directory / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# -- digest files ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "platforms", "expected"),
    [
        ("base", ("linux/amd64",), "base__linux-amd64.digest"),
        ("etl-job", ("linux/amd64", "linux/arm64"), "etl-job__linux-amd64+linux-arm64.digest"),
        ("a.b", ("linux/arm64/v8",), "a.b__linux-arm64-v8.digest"),
    ],
)
def test_digest_file_name(image: str, platforms: tuple[str, ...], expected: str) -> None:
    assert digest_file_name(image, platforms) == expected


def test_load_digests_from_nested_artifact_dirs(tmp_path: Path) -> None:
    # actions/download-artifact puts each artifact in a directory of its own.
    write(tmp_path, "digests-base-amd64/base__linux-amd64.digest", f"{D1}\n")
    write(tmp_path, "digests-base-arm64/deeper/base__linux-arm64.digest", f"  {D2}  \n")
    write(tmp_path, "etl-job__linux-amd64+linux-arm64.digest", D3)
    write(tmp_path, "pi__linux-arm-v7.digest", D1)
    write(tmp_path, "digests-base-amd64/README.txt", "not a digest file")
    assert load_digests(tmp_path) == {
        "base": {"linux/amd64": D1, "linux/arm64": D2},
        "etl-job": {"linux/amd64": D3, "linux/arm64": D3},
        "pi": {"linux/arm/v7": D1},
    }


def test_load_digests_of_an_empty_directory(tmp_path: Path) -> None:
    assert load_digests(tmp_path) == {}


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("base.digest", D1),  # no `__platforms`
        ("base__linux-amd64.digest", ""),
        ("base__linux-amd64.digest", "1" * 64),
        ("base__linux-amd64.digest", "error: push failed"),
    ],
)
def test_load_digests_rejects_files_it_did_not_write(tmp_path: Path, name: str, text: str) -> None:
    path = write(tmp_path, f"artifact/{name}", text)
    with pytest.raises(UserError, match="not a digest file builder wrote") as info:
        load_digests(tmp_path)
    assert info.value.file == str(path)


def test_load_digests_needs_the_directory(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"digests directory .*missing does not exist"):
        load_digests(tmp_path / "missing")


@pytest.mark.parametrize(
    ("image", "platforms"),
    [
        ("base", ("linux/amd64",)),
        ("etl-job.v2", ("linux/amd64", "linux/arm64")),
        ("pi", ("linux/arm/v7",)),
        pytest.param(
            "my__app",
            ("linux/amd64",),
        ),
    ],
)
def test_digest_files_round_trip(tmp_path: Path, image: str, platforms: tuple[str, ...]) -> None:
    write(tmp_path, digest_file_name(image, platforms), f"{D1}\n")
    assert load_digests(tmp_path) == {image: dict.fromkeys(platforms, D1)}


# -- refresh ---------------------------------------------------------------------------------

TREE = {
    "builder.yaml": "namespace: acme\n",
    "base-images/base/Dockerfile": "FROM python:3.12-slim\n",
    "images/api/Dockerfile": "FROM acme/base\n",
    "images/cli/Dockerfile": "FROM alpine:3.20\n",
    "images/tool/Dockerfile": "FROM golang:1.22\n",
    "images/copy/Dockerfile": "FROM acme/base\nCOPY --from=busybox:1.36 /bin/sh /sh\n",
}


def plan() -> BuildPlan:
    repo = load_files(TREE)
    return compute_plan(
        repo.graph,
        compute_all(repo.graph, "refresh"),
        settings=repo.settings,
        revision=Revision(sha="0" * 40),
        options=Options(),
    )


def test_compute_moves() -> None:
    digests = {"python:3.12-slim": D2, "alpine:3.20": D1, "busybox:1.36": D3}
    previous = {
        "base": {BASE_DIGEST_LABEL: D1, "other": "x"},
        "cli": {BASE_DIGEST_LABEL: D1},  # alpine did not move
        # tool: golang's digest is unknown, so nothing can be said
    }
    assert compute_moves(plan(), digests, previous) == (
        UpstreamMove(reference="python:3.12-slim", old=D1, new=D2, image="base"),
    )


def test_compute_moves_without_previous_labels() -> None:
    digests = {"python:3.12-slim": D2, "alpine:3.20": D1, "golang:1.22": D3}
    assert compute_moves(plan(), digests, {"cli": {}}) == (
        UpstreamMove(reference="python:3.12-slim", old=None, new=D2, image="base"),
        UpstreamMove(reference="alpine:3.20", old=None, new=D1, image="cli"),
        UpstreamMove(reference="golang:1.22", old=None, new=D3, image="tool"),
    )


def test_in_repo_bases_and_copy_sources_are_no_upstream() -> None:
    # api and copy start from base: its move is base's, and busybox is only copied from.
    digests = {"busybox:1.36": D3}
    assert compute_moves(plan(), digests, {}) == ()


def test_no_digests_no_moves() -> None:
    assert compute_moves(plan(), {}, {"base": {BASE_DIGEST_LABEL: D1}}) == ()


def test_each_moved_upstream_is_one_line() -> None:
    moves = (
        UpstreamMove(reference="python:3.12-slim", old=D1, new=D2, image="base"),
        UpstreamMove(reference="python:3.12-slim", old=D1, new=D2, image="tools"),
        UpstreamMove(reference="alpine:3.20", old=None, new=D2, image="cli"),
        UpstreamMove(reference="debian:12", old="", new=D1, image="deb"),
    )
    assert describe_moves(moves) == [
        f"upstream python:3.12-slim moved {D1} -> {D2} (under base, tools)",
        f"upstream alpine:3.20 is at {D2}; no earlier digest recorded (under cli)",
        f"upstream debian:12 is at {D1}; no earlier digest recorded (under deb)",
    ]
