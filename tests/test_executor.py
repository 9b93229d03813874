"""The scheduler and the bake runner, driven by fakes: no engine, no registry."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import pytest

from builder.bake import Outputs, compute_dry_run
from builder.buildx import BakeResult, Buildx
from builder.changes import Affected, AffectedImage, Reason, compute_all
from builder.errors import RegistryError
from builder.executor import BakeRunner, as_planned, mark_unchanged, run_schedule
from builder.plan import BuildPlan, ImageBuild, Options, Revision, compute_plan
from builder.reports import ImageResult
from tests.conftest import load_files

SHA = "0123456789abcdef0123456789abcdef01234567"
ROOT = Path("/src")
D_BASE = "sha256:" + "a" * 64
D_API = "sha256:" + "b" * 64
D_WORKER = "sha256:" + "c" * 64
WAIT = 5.0  # seconds a thread may wait for another before the test fails

TREE = {
    "builder.yaml": "namespace: acme\n",
    "base-images/base/Dockerfile": "FROM python:3.12-slim\n",
    "images/api/Dockerfile": "FROM docker.io/acme/base:latest\n",
    "images/worker/Dockerfile": "FROM acme/api\n",
    "images/cli/Dockerfile": "FROM alpine:3.20\n",
}
# Two independent roots, a child of each, a grandchild and a depends_on edge.
FOREST = {
    "builder.yaml": "namespace: acme\n",
    "images/a/Dockerfile": "FROM alpine\n",
    "images/b/Dockerfile": "FROM alpine\n",
    "images/c/Dockerfile": "FROM acme/a\n",
    "images/d/Dockerfile": "FROM acme/c\n",
    "images/e/Dockerfile": "FROM alpine\n",
    "images/e/image.yaml": "depends_on: [b]\n",
}


def plan_of(
    files: Mapping[str, str] = TREE,
    affected: tuple[str, ...] | None = None,
    *,
    options: Options | None = None,
    everything: tuple[str, ...] | None = None,
) -> BuildPlan:
    repo = load_files(files)
    reason = Reason(kind="all", note="--only")

    def narrowed(names: tuple[str, ...]) -> Affected:
        return Affected(
            images=tuple(
                AffectedImage(name=n, path=repo.graph.images[n].directory, reasons=(reason,))
                for n in repo.graph.order
                if n in names
            )
        )

    return compute_plan(
        repo.graph,
        compute_all(repo.graph, "every image") if affected is None else narrowed(affected),
        settings=repo.settings,
        revision=Revision(sha=SHA, branch="main"),
        options=options or Options(),
        everything_affected=None if everything is None else narrowed(everything),
    )


def built(build: ImageBuild, digest: str | None = None) -> ImageResult:
    return ImageResult(
        name=build.name,
        status="built",
        reason="ok",
        repository=build.repository,
        digest=digest,
        tags=build.tags,
        platforms=build.platforms,
    )


class Recorder:
    """A build_one that records its calls and fails the images it is told to."""

    def __init__(self, fail: tuple[str, ...] = (), crash: tuple[str, ...] = ()) -> None:
        self.fail = fail
        self.crash = crash
        self.calls: list[tuple[str, tuple[str, ...]]] = []

    def __call__(self, build: ImageBuild, parents: Mapping[str, ImageResult]) -> ImageResult:
        self.calls.append((build.name, tuple(sorted(parents))))
        if build.name in self.crash:
            raise RuntimeError("boom")
        if build.name in self.fail:
            return ImageResult(name=build.name, status="failed", reason="exit code: 1")
        return built(build)


def statuses(results: Mapping[str, ImageResult]) -> dict[str, tuple[str, str]]:
    return {n: (r.status, r.reason) for n, r in sorted(results.items())}


# -- run_schedule ----------------------------------------------------------------------------


def test_every_image_is_built_once_after_its_parents() -> None:
    plan = plan_of(FOREST)
    recorder = Recorder()
    results = run_schedule(plan, recorder, jobs=1)
    assert recorder.calls == [
        ("a", ()),
        ("b", ()),
        ("c", ("a",)),
        ("d", ("c",)),
        ("e", ("b",)),
    ]
    assert {r.status for r in results.values()} == {"built"}
    assert set(results) == {"a", "b", "c", "d", "e"}


def test_independent_images_run_concurrently() -> None:
    plan = plan_of(FOREST, ("a", "b"))
    started = {"a": threading.Event(), "b": threading.Event()}

    def build_one(build: ImageBuild, parents: Mapping[str, ImageResult]) -> ImageResult:
        started[build.name].set()
        other = "b" if build.name == "a" else "a"
        # Each waits for the other to start: only possible when both run at once.
        if not started[other].wait(WAIT):
            return ImageResult(name=build.name, status="failed", reason="ran alone")
        return built(build)

    results = run_schedule(plan, build_one, jobs=2)
    assert statuses(results) == {"a": ("built", "ok"), "b": ("built", "ok")}


def test_one_job_never_overlaps() -> None:
    plan = plan_of(FOREST)
    lock = threading.Lock()
    running: list[str] = []
    overlap: list[tuple[str, ...]] = []

    def build_one(build: ImageBuild, parents: Mapping[str, ImageResult]) -> ImageResult:
        with lock:
            running.append(build.name)
            if len(running) > 1:
                overlap.append(tuple(running))
        threading.Event().wait(0.01)
        with lock:
            running.remove(build.name)
        return built(build)

    run_schedule(plan, build_one, jobs=1)
    assert overlap == []


def test_a_child_starts_only_after_its_parent_finished() -> None:
    plan = plan_of(FOREST, ("a", "b", "c"))
    b_started = threading.Event()
    finished: set[str] = set()
    seen: dict[str, tuple[frozenset[str], Mapping[str, ImageResult]]] = {}

    def build_one(build: ImageBuild, parents: Mapping[str, ImageResult]) -> ImageResult:
        seen[build.name] = (frozenset(finished), dict(parents))
        if build.name == "b":
            b_started.set()
        if build.name == "a":  # a is still running when b starts: a slot is free for c
            assert b_started.wait(WAIT)
        return built(build, digest=D_BASE if build.name == "a" else None)

    results = run_schedule(plan, build_one, jobs=2, on_finish=lambda r: finished.add(r.name))
    assert {r.status for r in results.values()} == {"built"}
    c_saw_finished, c_parents = seen["c"]
    assert "a" in c_saw_finished
    assert set(c_parents) == {"a"}
    assert c_parents["a"].digest == D_BASE  # the parent's result reaches the child


def test_a_failure_skips_dependants_and_the_rest_still_builds() -> None:
    plan = plan_of(FOREST)
    recorder = Recorder(fail=("a",))
    results = run_schedule(plan, recorder, jobs=2)
    assert statuses(results) == {
        "a": ("failed", "exit code: 1"),
        "b": ("built", "ok"),
        "c": ("skipped", "parent a failed"),
        "d": ("skipped", "parent c skipped"),
        "e": ("built", "ok"),
    }
    assert sorted(name for name, _ in recorder.calls) == ["a", "b", "e"]
    assert results["c"].repository == "docker.io/acme/c"


def test_depends_on_failure_skips_too() -> None:
    results = run_schedule(plan_of(FOREST), Recorder(fail=("b",)), jobs=2)
    assert statuses(results)["e"] == ("skipped", "parent b failed")


def test_an_exception_becomes_a_failed_result() -> None:
    recorder = Recorder(crash=("c",))
    results = run_schedule(plan_of(FOREST), recorder, jobs=2)
    assert statuses(results) == {
        "a": ("built", "ok"),
        "b": ("built", "ok"),
        "c": ("failed", "internal error: boom"),
        "d": ("skipped", "parent c failed"),
        "e": ("built", "ok"),
    }


def test_callbacks_see_starts_and_every_result() -> None:
    started: list[str] = []
    finished: list[tuple[str, str]] = []
    run_schedule(
        plan_of(FOREST),
        Recorder(fail=("a",)),
        jobs=1,
        on_start=lambda b: started.append(b.name),
        on_finish=lambda r: finished.append((r.name, r.status)),
    )
    assert started == ["a", "b", "e"]
    assert sorted(finished) == [
        ("a", "failed"),
        ("b", "built"),
        ("c", "skipped"),
        ("d", "skipped"),
        ("e", "built"),
    ]


def test_an_empty_plan_runs_nothing() -> None:
    plan = plan_of(FOREST, ())
    assert run_schedule(plan, Recorder()) == {}


def test_mark_unchanged_and_as_planned() -> None:
    plan = plan_of(TREE, ("api", "worker"))
    planned = as_planned(plan)
    assert statuses(planned) == {"api": ("planned", "dry run"), "worker": ("planned", "dry run")}
    assert planned["api"].tags == plan.get("api").tags
    assert planned["api"].platforms == ("linux/amd64", "linux/arm64")
    merged = mark_unchanged(plan, planned)
    assert statuses(merged)["base"] == ("unchanged", "not affected")
    assert statuses(merged)["cli"] == ("unchanged", "not affected")


def test_pinned_is_repository_at_digest() -> None:
    result = ImageResult(name="x", status="built", reason="", repository="r/x", digest=D_API)
    assert result.pinned == f"r/x@{D_API}"
    assert ImageResult(name="x", status="built", reason="").pinned is None


# -- BakeRunner ------------------------------------------------------------------------------


class FakeBuildx:
    """Only `bake` is called: it replays the scripted results and records each call."""

    def __init__(self, *results: BakeResult, lines: tuple[str, ...] = ()) -> None:
        self.results = list(results)
        self.lines = lines
        self.calls: list[tuple[dict[str, Any], list[str]]] = []
        self.created = []

    def bake(
        self,
        definition: dict[str, Any],
        targets: list[str],
        *,
        on_line: Callable[[str], None] | None = None,
    ) -> BakeResult:
        self.calls.append((definition, targets))
        for line in self.lines:
            if on_line is not None:
                on_line(line)
        return self.results.pop(0)

    def imagetools_create(self, sources: list[str], tags: list[str]) -> str | None:
        self.created.append((sources, tags))
        return self.create_error

    created: list[tuple[list[str], list[str]]]
    create_error: str | None = None


def ok(target: str = "worker", digest: str | None = D_WORKER) -> BakeResult:
    meta = {target: {"containerimage.digest": digest}} if digest else {}
    return BakeResult(ok=True, metadata=meta, log="done")


def broken(error: str) -> BakeResult:
    return BakeResult(ok=False, metadata={}, log=f"log of {error}", error=error)


def bake_targets(definition: Mapping[str, object]) -> dict[str, dict[str, Any]]:
    return cast(dict[str, dict[str, Any]], definition["target"])


def runner(plan: BuildPlan, fake: FakeBuildx, **kwargs: Any) -> BakeRunner:
    return BakeRunner(buildx=cast(Buildx, fake), plan=plan, root=ROOT, **kwargs)


def test_pushing_pins_in_plan_parents_by_digest() -> None:
    plan = plan_of()
    api = built(plan.get("api"), D_API)
    definition, targets = runner(plan, FakeBuildx()).definition(plan.get("worker"), {"api": api})
    assert targets == ["worker"]
    assert list(definition) == ["target"]
    target = bake_targets(definition)["worker"]
    assert target["contexts"] == {"acme/api": f"docker-image://docker.io/acme/api@{D_API}"}
    assert target["labels"]["org.opencontainers.image.base.digest"] == D_API
    assert target["output"] == ["type=registry"]
    assert target["cache-to"] == ["type=registry,ref=docker.io/acme/worker:buildcache,mode=max"]


def test_an_unknown_base_digest_is_blank_not_the_parents() -> None:
    """Labels are inherited through FROM: without one of its own the image would show
    its parent's base.digest, which names the grandparent."""
    plan = plan_of()
    definition, _ = runner(plan, FakeBuildx()).definition(
        plan.get("worker"), {"api": built(plan.get("api"))}
    )
    target = bake_targets(definition)["worker"]
    assert "contexts" not in target
    assert target["labels"]["org.opencontainers.image.base.digest"] == ""


def test_a_base_by_tag_is_labelled_with_the_digest_it_names_now() -> None:
    plan = plan_of(affected=("worker",))
    fake = FakeBuildx()
    found = registry_holding({"acme/api": D_API})
    definition, _ = runner(plan, fake, resolve=found).definition(plan.get("worker"), {})
    labels = bake_targets(definition)["worker"]["labels"]
    assert labels["org.opencontainers.image.base.digest"] == D_API


def test_not_pushing_bakes_the_ancestors_as_cacheonly_targets() -> None:
    plan = plan_of(options=Options(push=False))
    definition, targets = runner(plan, FakeBuildx()).definition(plan.get("worker"), {})
    assert targets == ["worker"]
    bake = bake_targets(definition)
    assert set(bake) == {"base", "api", "worker"}  # cli is no ancestor
    assert bake["api"]["contexts"] == {"acme/base": "target:base"}
    assert bake["worker"]["contexts"] == {"acme/api": "target:api"}
    assert "contexts" not in bake["base"]
    assert {t["output"][0] for t in bake.values()} == {"type=cacheonly"}
    assert all("cache-to" not in t for t in bake.values())


def test_loading_names_only_the_image_itself() -> None:
    plan = plan_of(options=Options(push=False))
    definition, _ = runner(plan, FakeBuildx(), load=True).definition(plan.get("worker"), {})
    bake = bake_targets(definition)
    assert bake["worker"]["output"] == ["type=image"]
    assert bake["worker"]["tags"] == list(plan.get("worker").tags)
    assert bake["api"]["output"] == bake["base"]["output"] == ["type=cacheonly"]


def test_a_loaded_image_reports_its_local_tags() -> None:
    plan = plan_of(options=Options(push=False))
    fake = FakeBuildx(ok("base", None))
    result = runner(plan, fake, load=True)(plan.get("base"), {})
    assert (result.status, result.digest, result.tags) == ("built", None, plan.get("base").tags)
    plain = runner(plan, FakeBuildx(ok("base", None)))(plan.get("base"), {})
    assert plain.tags == ()


def test_not_pushing_a_root_is_one_target() -> None:
    plan = plan_of(options=Options(push=False))
    definition, _ = runner(plan, FakeBuildx()).definition(plan.get("base"), {})
    assert set(bake_targets(definition)) == {"base"}


def test_push_by_digest_output() -> None:
    plan = plan_of(options=Options(push_by_digest=True, platforms=("linux/arm64",)))
    definition, _ = runner(plan, FakeBuildx()).definition(plan.get("base"), {})
    target = bake_targets(definition)["base"]
    assert target["tags"] == []
    assert target["output"] == [
        "type=image,name=docker.io/acme/base,push-by-digest=true,name-canonical=true,push=true"
    ]


def test_staging_tags_replace_push_by_digest_on_the_docker_driver() -> None:
    plan = plan_of(options=Options(push_by_digest=True, platforms=("linux/arm64",)))
    definition, _ = runner(plan, FakeBuildx(), staging_tags=True).definition(plan.get("base"), {})
    target = bake_targets(definition)["base"]
    assert target["tags"] == ["docker.io/acme/base:git-0123456-linux-arm64"]
    assert target["output"] == ["type=registry"]


def test_staging_tags_do_nothing_without_push_by_digest() -> None:
    plan = plan_of()
    definition, _ = runner(plan, FakeBuildx(), staging_tags=True).definition(plan.get("base"), {})
    target = bake_targets(definition)["base"]
    assert target["tags"] == list(plan.get("base").tags)


def test_pinned_parents_resolve_to_a_digest() -> None:
    plan = plan_of(affected=("worker",), everything=("api", "worker"))
    asked: list[str] = []

    def resolve(reference: str) -> str:
        asked.append(reference)
        return D_API

    definition, _ = runner(plan, FakeBuildx(), resolve=resolve).definition(plan.get("worker"), {})
    target = bake_targets(definition)["worker"]
    assert asked == ["docker.io/acme/api:git-0123456"]
    assert target["contexts"] == {"acme/api": f"docker-image://docker.io/acme/api@{D_API}"}
    assert target["labels"]["org.opencontainers.image.base.digest"] == D_API


def test_pinned_parents_on_a_registry_with_a_port() -> None:
    files = {**TREE, "builder.yaml": "registry: localhost:5000\nnamespace: acme\n"}
    files["images/worker/Dockerfile"] = "FROM localhost:5000/acme/api\n"
    plan = plan_of(files, affected=("worker",), everything=("api", "worker"))
    pins = runner(plan, FakeBuildx(), resolve=lambda _: D_API).pin_parents(plan.get("worker"))
    assert pins == {"api": f"docker-image://localhost:5000/acme/api@{D_API}"}


def test_pinned_parents_without_resolve_use_the_tag() -> None:
    plan = plan_of(affected=("worker",), everything=("api", "worker"))
    definition, _ = runner(plan, FakeBuildx()).definition(plan.get("worker"), {})
    target = bake_targets(definition)["worker"]
    assert target["contexts"] == {"acme/api": "docker-image://docker.io/acme/api:git-0123456"}
    assert target["labels"]["org.opencontainers.image.base.digest"] == ""


def test_an_unresolvable_parent_fails_the_image_without_baking() -> None:
    plan = plan_of(affected=("worker",), everything=("api", "worker"))

    def resolve(reference: str) -> str:
        raise RegistryError(f"manifest unknown: {reference}")

    fake = FakeBuildx()
    result = runner(plan, fake, resolve=resolve)(plan.get("worker"), {})
    assert (result.status, result.repository) == ("failed", "docker.io/acme/worker")
    assert result.reason == (
        "parent api is affected by this change but docker.io/acme/api:git-0123456 cannot be "
        "resolved (manifest unknown: docker.io/acme/api:git-0123456); build it first, "
        "e.g. in an earlier wave"
    )
    assert fake.calls == []


def test_not_pushing_pins_the_ancestors_pinned_parents() -> None:
    plan = plan_of(
        affected=("api", "worker"),
        everything=("base", "api", "worker"),
        options=Options(push=False),
    )
    definition, _ = runner(plan, FakeBuildx()).definition(plan.get("worker"), {})
    bake = bake_targets(definition)
    assert bake["api"]["contexts"] == {
        "acme/base": "docker-image://docker.io/acme/base:git-0123456"
    }


def test_a_built_image_reports_digest_tags_and_attempts() -> None:
    plan = plan_of()
    fake = FakeBuildx(ok())
    result = runner(plan, fake)(plan.get("worker"), {"api": built(plan.get("api"), D_API)})
    assert result.status == "built"
    assert result.reason == "every image"
    assert (result.digest, result.pinned) == (D_WORKER, f"docker.io/acme/worker@{D_WORKER}")
    assert result.tags == plan.get("worker").tags
    assert result.platforms == ("linux/amd64", "linux/arm64")
    assert (result.attempts, result.log) == (1, "done")
    assert fake.calls[0][1] == ["worker"]


def test_not_pushing_reports_no_digest_and_no_tags() -> None:
    plan = plan_of(options=Options(push=False))
    result = runner(plan, FakeBuildx(ok()))(plan.get("worker"), {})
    assert (result.status, result.digest, result.tags) == ("built", None, ())


def test_transient_errors_are_retried_with_backoff() -> None:
    plan = plan_of()
    sleeps: list[float] = []
    fake = FakeBuildx(
        broken("ERROR: failed to push: connection refused"),
        broken("ERROR: unexpected status: 503 Service Unavailable"),
        ok(),
    )
    result = runner(plan, fake, sleep=sleeps.append)(plan.get("worker"), {})
    assert (result.status, result.attempts, result.digest) == ("built", 3, D_WORKER)
    assert sleeps == [1.0, 2.0]
    assert len(fake.calls) == 3
    assert fake.calls[0] == fake.calls[2]  # the same definition every time
    assert result.log.splitlines() == [
        "log of ERROR: failed to push: connection refused",
        "log of ERROR: unexpected status: 503 Service Unavailable",
        "done",
    ]


def test_backoff_scales() -> None:
    plan = plan_of()
    sleeps: list[float] = []
    fake = FakeBuildx(*[broken("ERROR: i/o timeout")] * 4)
    result = runner(plan, fake, sleep=sleeps.append, retries=4, backoff=0.5)(plan.get("base"), {})
    assert (result.status, result.attempts, result.reason) == ("failed", 4, "ERROR: i/o timeout")
    assert sleeps == [0.5, 1.0, 2.0]  # none after the last attempt


def test_a_final_error_is_not_retried() -> None:
    plan = plan_of()
    sleeps: list[float] = []
    error = "ERROR: failed to push docker.io/acme/base:git-0123456: unauthorized"
    fake = FakeBuildx(broken(error))
    result = runner(plan, fake, sleep=sleeps.append)(plan.get("base"), {})
    assert (result.status, result.reason, result.attempts) == ("failed", error, 1)
    assert result.repository == "docker.io/acme/base"
    assert sleeps == []
    assert len(fake.calls) == 1


def test_log_lines_carry_the_image_name() -> None:
    plan = plan_of()
    lines: list[tuple[str, str]] = []
    fake = FakeBuildx(ok("base", D_BASE), lines=("#1 load", "#2 done"))
    runner(plan, fake, on_line=lambda n, line: lines.append((n, line)))(plan.get("base"), {})
    assert lines == [("base", "#1 load"), ("base", "#2 done")]


@pytest.mark.parametrize(
    ("held", "status", "reason"),
    [
        (("linux/amd64", "linux/arm64"), "built", "every image"),
        (("linux/arm64/v8", "linux/amd64", "unknown/unknown"), "built", "every image"),
        (
            ("linux/amd64",),
            "failed",
            f"the registry lacks linux/arm64 for {D_BASE}",
        ),
        ((), "failed", f"the registry lacks linux/amd64, linux/arm64 for {D_BASE}"),
    ],
)
def test_verify_every_platform_is_in_the_registry(
    held: tuple[str, ...], status: str, reason: str
) -> None:
    plan = plan_of()
    asked: list[str] = []

    def verify(reference: str) -> tuple[str, ...]:
        asked.append(reference)
        return held

    result = runner(plan, FakeBuildx(ok("base", D_BASE)), verify=verify)(plan.get("base"), {})
    assert (result.status, result.reason) == (status, reason)
    assert asked == [f"docker.io/acme/base@{D_BASE}"]


def test_verify_errors_fail_the_image() -> None:
    plan = plan_of()

    def verify(reference: str) -> tuple[str, ...]:
        raise RegistryError("registry 127.0.0.1:5000 answered 500")

    result = runner(plan, FakeBuildx(ok("base", D_BASE)), verify=verify)(plan.get("base"), {})
    assert (result.status, result.reason) == ("failed", "registry 127.0.0.1:5000 answered 500")


def test_verify_is_not_asked_when_not_pushing() -> None:
    plan = plan_of(options=Options(push=False))

    def verify(reference: str) -> tuple[str, ...]:
        raise AssertionError(reference)

    result = runner(plan, FakeBuildx(ok("base", D_BASE)), verify=verify)(plan.get("base"), {})
    assert result.status == "built"


# -- already pushed: tags only ---------------------------------------------------------------


def registry_holding(tags: Mapping[str, str]) -> Callable[[str], str]:
    def resolve(reference: str) -> str:
        if reference not in tags:
            raise RegistryError(f"{reference} is not in the registry")
        return tags[reference]

    return resolve


def existing_plan(existing: Mapping[str, str]) -> BuildPlan:
    plan = plan_of(TREE, ("base", "api", "worker"))
    return replace(
        plan,
        images=tuple(replace(b, existing=existing.get(b.name), key="f" * 64) for b in plan.images),
    )


def test_an_already_pushed_image_is_tagged_not_built() -> None:
    plan = existing_plan({"base": D_BASE})
    fake = FakeBuildx()
    held = {"docker.io/acme/base:git-0123456": D_BASE}  # a rerun: one tag is in place
    result = runner(plan, fake, resolve=registry_holding(held))(plan.get("base"), {})
    assert fake.calls == []  # no bake
    assert fake.created == [
        (
            [f"docker.io/acme/base@{D_BASE}"],
            ["docker.io/acme/base:main", "docker.io/acme/base:latest"],
        )
    ]
    assert (result.status, result.digest) == ("tagged", D_BASE)
    assert result.reason == "key-ffffffffffffffff already pushed; tagged main, latest"
    assert result.tags == plan.get("base").tags


def test_a_rerun_with_every_tag_in_place_pushes_nothing() -> None:
    plan = existing_plan({"base": D_BASE})
    fake = FakeBuildx()
    result = runner(plan, fake, resolve=lambda _: D_BASE)(plan.get("base"), {})
    assert (fake.calls, fake.created) == ([], [])
    assert (result.status, result.pinned) == ("unchanged", f"docker.io/acme/base@{D_BASE}")
    assert result.tags == plan.get("base").tags


def test_tagging_never_moves_a_pushed_commit_tag() -> None:
    plan = existing_plan({"base": D_BASE})
    fake = FakeBuildx()
    elsewhere = {"docker.io/acme/base:git-0123456": D_API}
    result = runner(plan, fake, resolve=registry_holding(elsewhere))(plan.get("base"), {})
    assert "docker.io/acme/base:git-0123456" not in fake.created[0][1]
    assert "docker.io/acme/base:git-0123456" not in result.tags
    assert result.status == "tagged"


def test_a_failed_tagging_fails_the_image() -> None:
    plan = existing_plan({"base": D_BASE})
    fake = FakeBuildx()
    fake.create_error = "denied: requested access to the resource is denied"
    result = runner(plan, fake)(plan.get("base"), {})
    assert (result.status, result.reason) == (
        "failed",
        "tagging failed: denied: requested access to the resource is denied",
    )


def test_dependants_build_on_a_tagged_parent() -> None:
    plan = existing_plan({"base": D_BASE})
    fake = FakeBuildx(ok("api", D_API), ok("worker", D_WORKER))
    results = run_schedule(plan, runner(plan, fake), jobs=1)
    assert [r.status for r in results.values()] == ["tagged", "built", "built"]
    api = bake_targets(fake.calls[0][0])["api"]
    assert api["contexts"] == {"acme/base": f"docker-image://docker.io/acme/base@{D_BASE}"}


def test_a_rebuild_keeps_a_pushed_commit_tag_where_it_is() -> None:
    plan = plan_of(TREE, ("base",))
    fake = FakeBuildx(ok("base", D_BASE))
    pushed = {"docker.io/acme/base:git-0123456": D_API}
    result = runner(plan, fake, resolve=registry_holding(pushed))(plan.get("base"), {})
    tags = bake_targets(fake.calls[0][0])["base"]["tags"]
    assert tags == ["docker.io/acme/base:main", "docker.io/acme/base:latest"]
    assert result.tags == tuple(tags)


def test_the_bake_file_leaves_already_pushed_images_out() -> None:
    plan = existing_plan({"base": D_BASE})
    bake = compute_dry_run(plan, root=ROOT, outputs=Outputs())
    assert list(bake) == ["api", "worker"]
    assert bake["api"]["target"]["api"]["contexts"] == {
        "acme/base": f"docker-image://docker.io/acme/base@{D_BASE}"
    }


# -- the dry run prints what a run bakes -------------------------------------------------------


@pytest.mark.parametrize("push", [False, True])
def test_the_dry_run_prints_the_definitions_a_run_bakes(push: bool) -> None:
    """One function computes both: with this run's digests in place of the dry run's
    placeholders, every definition handed to buildx is the one --dry-run printed."""
    plan = plan_of(options=Options(push=push))
    digests = {"base": D_BASE, "api": D_API, "worker": D_WORKER, "cli": "sha256:" + "d" * 64}
    fake = FakeBuildx(*(ok(b.target, digests[b.name]) for b in plan.images))
    now = {"python:3.12-slim": "sha256:" + "1" * 64, "alpine:3.20": "sha256:" + "2" * 64}

    def resolve(reference: str) -> str:
        if reference not in now:
            raise RegistryError(f"{reference} is not in the registry")  # no tag pushed yet
        return now[reference]

    bake = runner(plan, fake, resolve=resolve, verify=lambda _: ("linux/amd64", "linux/arm64"))
    run_schedule(plan, bake, jobs=1)
    printed = compute_dry_run(plan, root=ROOT, outputs=Outputs())
    baked = {targets[0]: definition for definition, targets in fake.calls}
    text = json.dumps(printed)
    for name, digest in digests.items():
        text = text.replace(f"<digest of {name} this run pushes>", digest)
    for base, digest in now.items():
        text = text.replace(f"<digest {base} names at build time>", digest)
    assert json.loads(text) == baked
