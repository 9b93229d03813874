"""builder promote's core as tables, its edge with a fake registry and buildx in real git
repos, and `builder pin --from-tag`'s pins. The real registry: tests/integration."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from builder.commands.promote import PromoteRequest, run_promote
from builder.consumers.metadata import compute_pins, parse_metadata
from builder.consumers.model import FromTag
from builder.consumers.pin import load_pins
from builder.consumers.render import render_commit_message
from builder.consumers.tags import compute_tag_pins
from builder.context import compute_context
from builder.errors import UserError
from builder.plan import Revision, compute_tags, is_reserved_tag
from builder.promotion import (
    Observed,
    PromoteReport,
    check_target_tag,
    compute_verdicts,
    describe_failure,
    source_tag,
)
from builder.refs import parse_reference
from builder.render.data import promote_json
from builder.render.text import render_promote_report
from tests.conftest import load_files

R = "registry.example/acme"
FILES = {
    "builder.yaml": "registry: registry.example\nnamespace: acme\n",
    "base-images/base/Dockerfile": "FROM python:3.12-slim\n",
    "images/api/Dockerfile": f"FROM {R}/base\n",
    "images/cli/Dockerfile": "FROM alpine:3.20\n",
}
ORDER = ("base", "api", "cli")  # parents first, then by name
BOTH = ("linux/amd64", "linux/arm64")


def digest(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


# -- the tags --------------------------------------------------------------------------


@pytest.mark.parametrize("tag", ["prod", "staging", "Prod-2024.1", "release_candidate", "v1"])
def test_target_tags_of_your_own(tag: str) -> None:
    assert check_target_tag(tag) == tag


@pytest.mark.parametrize(
    ("tag", "error"),
    [
        ("latest", "--to latest: builder moves latest with every build of the default branch"),
        ("git-1a2b3c4", "--to git-1a2b3c4: builder's git-* tags each name one build"),
        ("git-anything", "--to git-anything: builder's git-* tags"),
        ("key-0123456789abcdef", "--to key-0123456789abcdef: builder's key-* tags"),
        ("buildcache", "--to buildcache: builder gives this tag its own meaning"),
        ("1.2", "--to 1.2: builder gives this tag its own meaning"),
        ("3", "--to 3: builder gives this tag its own meaning"),
        ("-prod", "--to '-prod' is not a valid tag"),
        ("prod/eu", "--to 'prod/eu' is not a valid tag"),
        ("", "--to '' is not a valid tag"),
        ("x" * 129, f"--to '{'x' * 129}' is not a valid tag"),
    ],
)
def test_target_tags_builder_owns_or_docker_refuses(tag: str, error: str) -> None:
    with pytest.raises(UserError) as caught:
        check_target_tag(tag)
    assert caught.value.render().startswith(error), caught.value.render()


def test_every_tag_a_build_pushes_is_refused_as_a_target() -> None:
    revision = Revision(sha="1a2b3c4" + "0" * 33, branch="main", version_tag="v1.2.3")
    for tag in compute_tags(revision):
        assert tag.startswith(("git-", "key-")) or is_reserved_tag(tag) or tag == "main"
        if tag != "main":  # a branch's tag is a source, and may be a target of your own
            with pytest.raises(UserError):
                check_target_tag(tag)


@pytest.mark.parametrize(
    ("text", "tag"),
    [("main", "main"), ("feature/ETL-12", "feature-etl-12"), ("git-1a2b3c4", "git-1a2b3c4")],
)
def test_source_tags_are_branch_tags(text: str, tag: str) -> None:
    assert source_tag(text, flag="--from") == tag


def test_a_source_that_names_no_tag() -> None:
    with pytest.raises(UserError, match=r"--from '///' names no tag"):
        source_tag("///", flag="--from")


# -- verdicts ---------------------------------------------------------------------------


def seen(name: str, **changes: Any) -> Observed:
    fields: dict[str, Any] = {
        "name": name,
        "repository": f"{R}/{name}",
        "source": f"{R}/{name}:main",
        "digest": digest(name),
        "platforms": BOTH,
    }
    fields.update(changes)
    return Observed(**fields)


def verdicts(observed: Iterable[Observed], *, dry_run: bool = False) -> list[tuple[str, str]]:
    return [
        (p.status, p.reason) for p in compute_verdicts(list(observed), to="prod", dry_run=dry_run)
    ]


def test_verdicts_move_or_leave_in_place() -> None:
    observed = [
        seen("base", current=digest("base")),
        seen("api", current=digest("old")),
        seen("cli"),
    ]
    assert verdicts(observed) == [
        ("already there", ":prod already names this digest"),
        ("would move", f"{R}/api:main -> :prod"),
        ("would move", f"{R}/cli:main -> :prod"),
    ]
    assert verdicts(observed, dry_run=True)[1] == ("would move", "dry run")


def test_one_missing_or_incomplete_image_holds_the_whole_set() -> None:
    observed = [
        seen("base", current=digest("base")),
        seen("api", digest=None),
        seen("cli", platforms=("linux/amd64",), lacking=("linux/arm64",)),
    ]
    assert verdicts(observed) == [
        ("not moved", "nothing moves while api, cli cannot"),
        ("missing", f"{R}/api:main is not in the registry"),
        ("incomplete", f"{R}/cli:main lacks linux/arm64 (it holds linux/amd64)"),
    ]
    report = PromoteReport(source=":main", to="prod", results=compute_verdicts(observed, to="prod"))
    assert describe_failure(report) == (
        f"nothing moved to :prod: api missing: {R}/api:main is not in the registry; "
        f"cli incomplete: {R}/cli:main lacks linux/arm64 (it holds linux/amd64)"
    )


# -- the edge, with a fake registry and buildx ------------------------------------------


class FakeRegistry:
    """References -> digests, and each digest's platforms, as a registry would answer."""

    def __init__(self, tags: Mapping[str, str], platforms: Mapping[str, tuple[str, ...]]) -> None:
        self.tags = dict(tags)
        self.platforms_of = dict(platforms)
        self.asked: list[str] = []

    def __enter__(self) -> FakeRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def use_login(self, login: object) -> None:
        pass

    def head(self, reference: str) -> str | None:
        self.asked.append(reference)
        if "@" in reference:
            found = reference.partition("@")[2]
            return found if found in self.platforms_of else None
        return self.tags.get(reference)

    def platforms(self, reference: str) -> tuple[str, ...]:
        return self.platforms_of[reference.partition("@")[2]]


class FakeBuildx:
    """`imagetools create` that moves the fake registry's tag, or fails for `failing`."""

    def __init__(self, registry: FakeRegistry, failing: Iterable[str] = ()) -> None:
        self.registry = registry
        self.failing = set(failing)
        self.created: list[tuple[list[str], list[str]]] = []

    def __call__(self, engine: object) -> FakeBuildx:  # noqa: ARG002 - make_buildx's shape
        return self

    def __enter__(self) -> FakeBuildx:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def login(self, registry: str, username: str, password: str) -> None:
        pass

    def imagetools_create(self, sources: list[str], tags: list[str]) -> str | None:
        self.created.append((sources, tags))
        if any(t.rsplit("/", 1)[1].partition(":")[0] in self.failing for t in tags):
            return "ERROR: failed to push: unexpected status 500"
        for tag in tags:
            self.registry.tags[tag] = sources[0].partition("@")[2]
        return None


def main_tags(**overrides: str | None) -> dict[str, str]:
    tags = {f"{R}/{n}:main": digest(n) for n in ORDER}
    for name, value in overrides.items():
        if value is None:
            tags.pop(f"{R}/{name}:main")
        else:
            tags[f"{R}/{name}:main"] = value
    return tags


Promote = Callable[..., tuple[PromoteReport, FakeRegistry, FakeBuildx, list[str]]]


@pytest.fixture
def promote(make_repo: Callable[..., Path]) -> Promote:
    root = make_repo(FILES)

    def run(
        tags: Mapping[str, str],
        platforms: Mapping[str, tuple[str, ...]] | None = None,
        failing: Iterable[str] = (),
        **request: Any,
    ) -> tuple[PromoteReport, FakeRegistry, FakeBuildx, list[str]]:
        registry = FakeRegistry(tags, platforms or dict.fromkeys(tags.values(), BOTH))
        buildx = FakeBuildx(registry, failing)
        lines: list[str] = []
        report = run_promote(
            compute_context(root, {}),
            PromoteRequest(**{"to": "prod", "from_tag": "main", **request}),
            log=lines.append,
            make_buildx=buildx,  # type: ignore[arg-type]
            make_registry=lambda _ctx: registry,  # type: ignore[arg-type,return-value]
        )
        return report, registry, buildx, lines

    return run


def test_promote_moves_each_tag_parents_first(promote: Promote) -> None:
    tags = {**main_tags(), f"{R}/base:prod": digest("base"), f"{R}/api:prod": digest("old")}
    report, registry, buildx, lines = promote(tags)
    assert [(r.name, r.status, r.previous) for r in report.results] == [
        ("base", "already there", digest("base")),
        ("api", "moved", digest("old")),
        ("cli", "moved", None),
    ]
    assert buildx.created == [
        ([f"{R}/api@{digest('api')}"], [f"{R}/api:prod"]),
        ([f"{R}/cli@{digest('cli')}"], [f"{R}/cli:prod"]),
    ]
    assert lines == [
        f"moved {R}/api:prod: {digest('old')} -> {digest('api')}",
        f"moved {R}/cli:prod: (new) -> {digest('cli')}",
    ]
    assert all(registry.tags[f"{R}/{n}:prod"] == digest(n) for n in ORDER)
    assert describe_failure(report) is None


def test_a_missing_tag_or_platform_moves_nothing(promote: Promote) -> None:
    tags = main_tags(cli=None)
    platforms = {digest("base"): BOTH, digest("api"): ("linux/amd64",)}
    report, _registry, buildx, _lines = promote(tags, platforms)
    assert [r.status for r in report.results] == ["not moved", "incomplete", "missing"]
    assert buildx.created == []
    assert describe_failure(report) is not None


def test_an_arm64_variant_counts_as_arm64(promote: Promote) -> None:
    platforms = dict.fromkeys(main_tags().values(), ("linux/amd64", "linux/arm64/v8"))
    report, *_ = promote(main_tags(), platforms)
    assert [r.status for r in report.results] == ["moved"] * 3


def test_a_dry_run_asks_and_moves_nothing(promote: Promote) -> None:
    report, registry, buildx, _lines = promote(main_tags(), dry_run=True)
    assert [r.status for r in report.results] == ["would move"] * 3
    assert buildx.created == []
    assert f"{R}/cli:prod" in registry.asked  # what the target names now, for the report


def test_a_failed_move_stops_the_rest(promote: Promote) -> None:
    report, _registry, buildx, lines = promote(main_tags(), failing=["api"])
    assert [r.status for r in report.results] == ["moved", "failed", "not moved"]
    assert len(buildx.created) == 2
    assert lines[-1] == "FAILED api: ERROR: failed to push: unexpected status 500"
    assert describe_failure(report) == (
        "api could not be moved to :prod (tagging failed: ERROR: failed to push: unexpected "
        "status 500); moved before it: base; rerun to finish"
    )


def test_only_narrows_the_set(promote: Promote) -> None:
    report, *_ = promote(main_tags(cli=None), only=("base", "api"))
    assert [(r.name, r.status) for r in report.results] == [("base", "moved"), ("api", "moved")]


def metadata_file(where: Path, **statuses: str) -> Path:
    images = {}
    for name in ORDER:
        status = statuses.get(name, "built")
        pushed = status in ("built", "tagged")
        images[name] = {
            "status": status,
            "reason": "",
            "repository": f"{R}/{name}",
            "tags": [],
            "digest": digest(f"{name}@build") if pushed else None,
            "pinned": f"{R}/{name}@{digest(f'{name}@build')}" if pushed else None,
            "platforms": list(BOTH),
        }
    path = where / "meta.json"
    path.write_text(json.dumps({"revision": "ab" * 20, "push": True, "images": images}))
    return path


def test_promote_a_metadata_file(promote: Promote, tmp_path: Path) -> None:
    meta = metadata_file(tmp_path, cli="unchanged")
    built = {f"{R}/{n}:other": digest(f"{n}@build") for n in ("base", "api")}
    report, _registry, buildx, _lines = promote(built, from_tag=None, metadata_file=meta)
    assert report.revision == "ab" * 20
    assert [(r.name, r.status) for r in report.results] == [("base", "moved"), ("api", "moved")]
    assert buildx.created[0] == ([f"{R}/base@{digest('base@build')}"], [f"{R}/base:prod"])
    # Named with --only, an image the file has no digest for is missing: nothing moves.
    report, *_ = promote(built, from_tag=None, metadata_file=meta, only=("api", "cli"))
    assert [(r.name, r.status) for r in report.results] == [
        ("api", "not moved"),
        ("cli", "missing"),
    ]
    assert report.results[1].reason == f"{meta} records no pushed digest for it"


def test_a_digest_the_registry_lost_is_missing(promote: Promote, tmp_path: Path) -> None:
    meta = metadata_file(tmp_path)
    report, *_ = promote({}, {digest("base@build"): BOTH}, from_tag=None, metadata_file=meta)
    assert [r.status for r in report.results] == ["not moved", "missing", "missing"]


@pytest.mark.parametrize(
    ("statuses", "error"),
    [
        ({"api": "failed"}, "image 'api' failed in that build; promote a build that pushed"),
        (
            dict.fromkeys(ORDER, "unchanged"),
            "records no pushed image: nothing to promote",
        ),
    ],
)
def test_metadata_files_that_are_no_set(
    promote: Promote, tmp_path: Path, statuses: dict[str, str], error: str
) -> None:
    meta = metadata_file(tmp_path, **statuses)
    with pytest.raises(UserError) as caught:
        promote({}, from_tag=None, metadata_file=meta)
    assert caught.value.render().startswith(f"{meta}: {error}"), caught.value.render()


# -- the report, for people and for builder pin -----------------------------------------


def test_the_table(promote: Promote) -> None:
    tags = {**main_tags(), f"{R}/base:prod": digest("base"), f"{R}/api:prod": digest("old")}
    report, *_ = promote(tags)
    assert render_promote_report(report).splitlines() == [
        "IMAGE  STATUS         :prod WAS -> NOW" + " " * 28 + "WHY",
        "-----  -------------  " + "-" * 42 + "  ---",
        f"base   already there  {digest('base')[:19]}" + " " * 25 + "-",
        f"api    moved          {digest('old')[:19]} -> {digest('api')[:19]}  -",
        f"cli    moved          (none) -> {digest('cli')[:19]}" + " " * 15 + "-",
        ":main -> :prod: 1 already there, 2 moved",
    ]


def test_the_promoted_set_is_a_metadata_file_pin_reads(promote: Promote) -> None:
    graph = load_files(FILES).graph
    tags = {**main_tags(), f"{R}/base:prod": digest("base")}
    report, *_ = promote(tags)
    data = promote_json(report)
    assert data["promoted"] == {"from": "main", "to": "prod"}
    assert data["images"]["api"]["tags"] == [f"{R}/api:prod"]
    pins = compute_pins(parse_metadata(json.dumps(data), source="p.json"), graph, source="p.json")
    assert {n: t.pinned for n, t in pins.targets.items()} == {
        n: f"{R}/{n}@{digest(n)}" for n in ORDER
    }
    assert pins.revision == "tag prod"
    # A dry run or a refused promotion is no set to pin.
    for refused in (promote(main_tags(), dry_run=True)[0], promote(main_tags(cli=None))[0]):
        text = json.dumps(promote_json(refused))
        with pytest.raises(UserError):
            compute_pins(parse_metadata(text, source="p.json"), graph, source="p.json")


# -- builder pin --from-tag -------------------------------------------------------------


def test_pins_from_tags_keep_images_without_the_tag() -> None:
    graph = load_files(FILES).graph
    tags = main_tags(cli=None)
    pins = load_pins(FromTag(tag="main", resolve=tags.get), graph)
    assert {n: t.pinned for n, t in pins.targets.items()} == {
        "base": f"{R}/base@{digest('base')}",
        "api": f"{R}/api@{digest('api')}",
    }
    assert [(h.name, h.status, h.reason) for h in pins.held] == [
        ("cli", "untagged", f"the registry has no {R}/cli:main")
    ]
    assert pins.revision == "tag main"
    assert pins.image_of(parse_reference(f"{R}/cli:1")) == "cli"  # still known: checked, kept


def test_a_registry_answer_that_is_no_digest() -> None:
    graph = load_files(FILES).graph
    with pytest.raises(UserError, match=r"api:main is 'sha256:12', no digest"):
        compute_tag_pins(graph, "main", {"base": digest("base"), "api": "sha256:12"})


def test_a_commit_message_for_tags() -> None:
    pins = compute_tag_pins(load_files(FILES).graph, "main", {n: digest(n) for n in ORDER})
    assert render_commit_message(pins.revision, ()).splitlines()[0] == (
        "Pin 0 image(s) to the digests of tag main"
    )
