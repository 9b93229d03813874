"""The parsed-Dockerfile cache: same answers as the parser, and never trusted blindly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from builder.dockerfiles import parse_dockerfile
from builder.errors import DockerfileError
from builder.parse_cache import ParseCache

TEXT = "ARG BUILDER_PREFIX=docker.io/acme\nFROM ${BUILDER_PREFIX}/base AS b\nFROM python:3.12\n"


def test_a_cached_parse_equals_a_fresh_one(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    first = ParseCache(path)
    info = first.parse(TEXT, path="images/a/Dockerfile", build_args={"BUILDER_PREFIX": "r/ns"})
    first.save()
    second = ParseCache(path)
    again = second.parse(TEXT, path="images/a/Dockerfile", build_args={"BUILDER_PREFIX": "r/ns"})
    assert (
        again
        == info
        == parse_dockerfile(TEXT, path="images/a/Dockerfile", build_args={"BUILDER_PREFIX": "r/ns"})
    )
    assert again.base is not None
    assert again.base.text == "python:3.12"


def test_build_args_are_part_of_the_key(tmp_path: Path) -> None:
    cache = ParseCache(tmp_path / "cache.json")
    one = cache.parse(TEXT, path="Dockerfile", build_args={"BUILDER_PREFIX": "a/x"})
    two = cache.parse(TEXT, path="Dockerfile", build_args={"BUILDER_PREFIX": "b/y"})
    assert one.references[0].text == "a/x/base"
    assert two.references[0].text == "b/y/base"


def test_errors_are_not_cached_and_still_raised(tmp_path: Path) -> None:
    cache = ParseCache(tmp_path / "cache.json")
    for _ in range(2):
        with pytest.raises(DockerfileError, match="no FROM instruction"):
            cache.parse("# nothing\nARG X\n", path="Dockerfile")


@pytest.mark.parametrize(
    "content",
    ["not json", json.dumps({"parser": "other-version", "entries": {}}), json.dumps([1, 2])],
)
def test_a_foreign_or_broken_cache_is_ignored(tmp_path: Path, content: str) -> None:
    path = tmp_path / "cache.json"
    path.write_text(content, encoding="utf-8")
    info = ParseCache(path).parse(TEXT, path="Dockerfile")
    assert info == parse_dockerfile(TEXT, path="Dockerfile")


def test_only_entries_used_this_run_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    cache = ParseCache(path)
    cache.parse(TEXT, path="a/Dockerfile")
    cache.parse(TEXT, path="b/Dockerfile")
    cache.save()
    later = ParseCache(path)
    later.parse(TEXT, path="a/Dockerfile")
    later.save()
    assert len(json.loads(path.read_text(encoding="utf-8"))["entries"]) == 1


READS = (
    "FROM alpine AS t\nONBUILD COPY . /app\nFROM t AS built\nARG X\nCOPY src/ $X /app/\n"
    "RUN --mount=type=bind,source=req.txt,target=/r true\nONBUILD RUN true\n"
)


def test_context_reads_survive_the_cache(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    first = ParseCache(path)
    info = first.parse(READS, path="images/a/Dockerfile", platforms=("linux/amd64", "linux/arm64"))
    first.save()
    again = ParseCache(path).parse(
        READS, path="images/a/Dockerfile", platforms=("linux/amd64", "linux/arm64")
    )
    assert again == info
    assert [r.path for r in again.reads] == [".", ".", "src", "req.txt"]
    assert again.onbuild == (7, "ONBUILD RUN true")


def test_an_entry_without_its_reads_is_parsed_again(tmp_path: Path) -> None:
    """An entry that lost its reads must never read as "reads nothing"."""
    path = tmp_path / "cache.json"
    cache = ParseCache(path)
    info = cache.parse(READS, path="Dockerfile")
    cache.save()
    data = json.loads(path.read_text())
    for entry in data["entries"].values():
        del entry["reads"]
    path.write_text(json.dumps(data))
    assert ParseCache(path).parse(READS, path="Dockerfile") == info
