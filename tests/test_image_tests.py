"""Image tests (image.yaml `test:`): parsing, verdicts, the order of a tested push, and the
reports, driven by fakes; tests/integration/test_image_tests.py runs them on the engine."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any, cast

import pytest

from builder.bake import Outputs, compute_dry_run
from builder.buildx import TEST_LABEL, BakeResult, Buildx
from builder.changes import Affected, Reason, compute_affected, compute_all
from builder.commands.merge import merge_one
from builder.commands.test import compute_reference, parse_ref
from builder.config import parse_image_config, parse_settings
from builder.context import EngineOptions
from builder.errors import ConfigError, EngineError, UserError
from builder.executor import BakeRunner, ImageTester, run_schedule
from builder.git import Git
from builder.keys import compute_keys, compute_test_hash, key_tag, verdict_tag
from builder.model import Settings, TestSpec
from builder.pipeline import _already_pushed
from builder.plan import BuildPlan, Options, Revision, compute_plan, compute_tags
from builder.reconcile import (
    State,
    compute_reconciled,
    fetch_key_report,
    parse_state,
    updated_state,
)
from builder.registry import Registry
from builder.render.data import metadata_json
from builder.render.github import compute_matrix, render_summary
from builder.render.text import (
    render_build_report,
    render_dry_run,
    render_explain,
    render_test_line,
    render_test_report,
)
from builder.reports import (
    BuildReport,
    ImageResult,
    KeyReport,
    Range,
    Selection,
    TestOutcome,
    TestResult,
)
from tests.conftest import invoke, load_files

SHA = "0123456789abcdef0123456789abcdef01234567"
ROOT = Path("/src")
D_BASE = "sha256:" + "a" * 64
D_API = "sha256:" + "b" * 64
D_OLD = "sha256:" + "e" * 64
AMD64, ARM64 = "linux/amd64", "linux/arm64"
IMAGES = PurePosixPath("images/api")

TREE = {
    "builder.yaml": "namespace: acme\n",
    "base-images/base/Dockerfile": "FROM python:3.12-slim\n",
    "base-images/base/image.yaml": "test:\n  run:\n    - python3 -V\n    - uname -m\n",
    "images/api/Dockerfile": "FROM acme/base\n",
    "images/cli/Dockerfile": "FROM alpine:3.20\n",
}
KEYS = {"base": "1" * 64, "api": "2" * 64, "cli": "3" * 64}


def spec_of(text: str, settings: str = "") -> TestSpec | None:
    config = parse_image_config(text, directory=IMAGES, settings=parse_settings(settings))
    return config.test


# -- image.yaml test: and builder.yaml smoke_test -------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("test: python3 -V\n", TestSpec(commands=("python3 -V",)), id="one-command"),
        pytest.param("test: [a, ' b ']\n", TestSpec(commands=("a", "b")), id="a-list"),
        pytest.param(
            "test:\n  run: a\n  timeout: 5\n  env: {B: 2, A: x}\n  network: default\n"
            "  platforms: [linux/arm64]\n",
            TestSpec(
                commands=("a",),
                timeout=5,
                env=(("A", "x"), ("B", "2")),
                network="default",
                platforms=(ARM64,),
            ),
            id="a-block",
        ),
        pytest.param("test:\n  run: |\n    a\n    b\n", TestSpec(commands=("a\nb",)), id="script"),
        pytest.param("test: false\n", None, id="opted-out"),
        pytest.param("name: api\n", None, id="none"),
    ],
)
def test_test_shapes(text: str, expected: TestSpec | None) -> None:
    assert spec_of(text) == expected


def test_smoke_test_applies_to_images_without_a_test_of_their_own() -> None:
    settings = "smoke_test: --help --verbose 'a b'\n"
    assert parse_settings(settings).smoke_test == ("--help", "--verbose", "a b")
    assert spec_of("name: api\n", settings) == TestSpec(smoke=("--help", "--verbose", "a b"))
    assert spec_of("test: true-ish\n", settings) == TestSpec(commands=("true-ish",))
    assert spec_of("test: false\n", settings) is None
    assert parse_settings("").smoke_test is None


SHAPE = "'test' must be a command, a list of commands or a mapping with 'run', got"
EXAMPLE = "(e.g. test: python3 -c 'import job')"
WHOLE = "must be a whole number of seconds, at least 1, got"
NOT_BUILT = "is not one of the image's platforms"
SUBSET = (
    "(test some of the platforms the image is built for, or leave 'platforms' out to test them all)"
)
RUN_A = "test:\n  run: a\n"
TEST_ERRORS = [
    ("test: 42\n", f"1: {SHAPE} int 42 {EXAMPLE}"),
    ("test: true\n", f"1: {SHAPE} a boolean {EXAMPLE}"),
    ("test:\n", f"1: {SHAPE} nothing {EXAMPLE}"),
    ("test: '  '\n", "1: 'test' is an empty command"),
    ("test: []\n", "1: 'test' lists no command"),
    ("test:\n  - a\n  - ''\n", "3: 'test' command 2 is empty"),
    ("test:\n  - a\n  - [b]\n", "3: 'test' command 2 must be a string, got a list"),
    ("test:\n  run: ''\n", "2: 'test.run' is an empty command"),
    (
        "test:\n  run: {a: b}\n",
        "2: 'test.run' must be a command or a list of commands, got a mapping",
    ),
    (
        "test:\n  run:\n    - a\n    - null\n",
        "4: 'test.run' command 2 must be a string, got nothing",
    ),
    ("test:\n  timeout: 3\n", "1: 'test' needs 'run': the command or commands to run in the image"),
    (RUN_A + "  timout: 3\n", "3: unknown key 'timout' in 'test' (did you mean 'timeout'?)"),
    (RUN_A + "  timeout: 0\n", f"3: 'test.timeout' {WHOLE} int 0"),
    (RUN_A + "  timeout: 1.5\n", f"3: 'test.timeout' {WHOLE} float 1.5"),
    (RUN_A + "  timeout: true\n", f"3: 'test.timeout' {WHOLE} a boolean"),
    (
        RUN_A + "  network: host\n",
        (
            "3: 'test.network' must be 'none' or 'default', got 'host' "
            "(tests run without a network unless they ask for docker's default one)"
        ),
    ),
    (RUN_A + "  env: [A=1]\n", "3: 'test.env' must be a mapping of NAME: value, got a list"),
    (RUN_A + "  env:\n    1A: x\n", "4: invalid test env name '1A'"),
    (
        RUN_A + "  env:\n    A: {b: c}\n",
        "4: test env 'A' must be a string or number, got a mapping",
    ),
    (RUN_A + "  platforms: []\n", "3: 'test.platforms' must not be empty"),
    (
        RUN_A + "  platforms: linux/arm64\n",
        "3: 'test.platforms' must be a list of non-empty strings, got a string",
    ),
    (
        RUN_A + "  platforms:\n    - linux/amd64\n    - linux/s390x\n",
        f"5: test platform 'linux/s390x' {NOT_BUILT} (linux/amd64, linux/arm64) {SUBSET}",
    ),
    (
        "platforms: [linux/amd64]\n" + RUN_A + "  platforms: [linux/arm64]\n",
        f"4: test platform 'linux/arm64' {NOT_BUILT} (linux/amd64) {SUBSET}",
    ),
    (
        RUN_A + "  platforms: [linux]\n",
        "3: invalid platform 'linux' (expected os/arch[/variant], e.g. linux/arm64)",
    ),
]


@pytest.mark.parametrize(("text", "message"), TEST_ERRORS)
def test_test_errors_say_where(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        spec_of(text)
    assert str(info.value) == f"images/api/image.yaml:{message}"


NON_EMPTY = "builder.yaml:1: 'smoke_test' must be a non-empty string, got"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("smoke_test: ''\n", f"{NON_EMPTY} an empty string"),
        ("smoke_test: [--help]\n", f"{NON_EMPTY} a list"),
        (
            'smoke_test: "\'--help"\n',
            (
                "builder.yaml:1: 'smoke_test' \"'--help\" cannot be split into arguments: No "
                "closing quotation (quote as a shell would, e.g. smoke_test: --help)"
            ),
        ),
    ],
)
def test_smoke_test_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(text)
    assert str(info.value) == message


def test_platforms_for_narrows_to_what_is_built() -> None:
    spec = TestSpec(commands=("a",), platforms=(ARM64,))
    assert spec.platforms_for((AMD64, ARM64)) == (ARM64,)
    assert spec.platforms_for((AMD64,)) == ()
    assert TestSpec(commands=("a",)).platforms_for((AMD64,)) == (AMD64,)


# -- verdicts: the test is no part of the content key ----------------------------------------


def file_ids(files: Mapping[str, str]) -> dict[str, str]:
    return {
        p: hashlib.sha1(t.encode(), usedforsecurity=False).hexdigest() for p, t in files.items()
    }


def test_a_test_change_keeps_the_key_when_image_yaml_is_out_of_the_context() -> None:
    files = {
        "builder.yaml": "namespace: acme\n",
        "images/api/Dockerfile": "FROM alpine:3.20\nCOPY . /app\n",
        "images/api/.dockerignore": "image.yaml\n",
        "images/api/image.yaml": "test: 'true'\n",
    }
    other = {**files, "images/api/image.yaml": "test: 'false'\n"}
    one, two = load_files(files), load_files(other)
    assert compute_keys(one.graph, file_ids(files)) == compute_keys(two.graph, file_ids(other))
    hash_one = compute_test_hash(one.graph.images["api"].config.test or TestSpec(), (AMD64,))
    hash_two = compute_test_hash(two.graph.images["api"].config.test or TestSpec(), (AMD64,))
    assert hash_one != hash_two


def test_an_image_yaml_the_context_sends_is_an_input_like_any_file() -> None:
    """BuildKit receives image.yaml when the context keeps it: editing the test then
    changes what a build could copy, so the key changes (the exactness rule)."""
    files = {
        "builder.yaml": "namespace: acme\n",
        "images/api/Dockerfile": "FROM alpine:3.20\nCOPY . /app\n",
        "images/api/image.yaml": "test: 'true'\n",
    }
    other = {**files, "images/api/image.yaml": "test: 'false'\n"}
    keys = compute_keys(load_files(files).graph, file_ids(files))
    assert keys != compute_keys(load_files(other).graph, file_ids(other))


@pytest.mark.parametrize(
    "change",
    [
        {"commands": ("b",)},
        {"smoke": ("--help",)},
        {"timeout": 9},
        {"network": "default"},
        {"env": (("A", "1"),)},
    ],
)
def test_every_field_of_a_test_is_in_its_hash(change: dict[str, Any]) -> None:
    spec = TestSpec(commands=("a",))
    assert compute_test_hash(spec, (AMD64,)) != compute_test_hash(replace(spec, **change), (AMD64,))
    assert compute_test_hash(spec, (AMD64,)) != compute_test_hash(spec, (AMD64, ARM64))
    assert compute_test_hash(spec, (ARM64, AMD64)) == compute_test_hash(spec, (AMD64, ARM64))


def test_the_verdict_tag_names_key_and_test() -> None:
    assert verdict_tag("ab" * 32, "cd" * 32) == f"tested-{'ab' * 8}-{'cd' * 4}"


def test_a_branch_named_like_a_verdict_earns_no_tag() -> None:
    branch = f"tested-{'a' * 16}-{'b' * 8}"
    assert compute_tags(Revision(sha=SHA, branch=branch)) == ("git-0123456",)


# -- plans -------------------------------------------------------------------------------------


def plan_of(
    files: Mapping[str, str] = TREE,
    *,
    options: Options | None = None,
    keys: Mapping[str, str] | None = KEYS,
    existing: Mapping[str, str] | None = None,
    tested: frozenset[str] = frozenset(),
    names: tuple[str, ...] | None = None,
) -> BuildPlan:
    repo = load_files(files)
    everything = compute_all(repo.graph, "every image")
    affected = everything
    if names is not None:
        affected = Affected(images=tuple(i for i in everything.images if i.name in names))
    return compute_plan(
        repo.graph,
        affected,
        settings=repo.settings,
        revision=Revision(sha=SHA, branch="main"),
        options=options or Options(),
        keys=keys,
        existing=existing,
        tested=tested,
    )


def test_pushing_a_tested_image_holds_every_tag_but_the_key() -> None:
    base = plan_of().get("base")
    assert base.test == TestSpec(commands=("python3 -V", "uname -m"))
    assert base.test_platforms == (AMD64, ARM64)
    assert base.bake_tags == (f"docker.io/acme/base:{key_tag(KEYS['base'])}",)
    assert base.held == (
        "docker.io/acme/base:git-0123456",
        "docker.io/acme/base:main",
        "docker.io/acme/base:latest",
    )
    assert base.tags == (*base.held, *base.bake_tags)
    test_hash = compute_test_hash(base.test, (AMD64, ARM64))
    assert base.verdict == f"docker.io/acme/base:{verdict_tag(KEYS['base'], test_hash)}"
    api = plan_of().get("api")  # no test: everything pushed at once, as before
    assert (api.test, api.held, api.verdict, api.bake_tags) == (None, (), None, api.tags)


def test_without_keys_a_staging_tag_stands_in_for_the_key() -> None:
    base = plan_of(keys=None).get("base")
    staging = "docker.io/acme/base:git-0123456-linux-amd64-linux-arm64"
    assert base.bake_tags == (staging,)
    assert base.tags[0] == staging
    assert base.verdict is None


@pytest.mark.parametrize(
    "options", [Options(push=False), Options(push_by_digest=True, platforms=(ARM64,))]
)
def test_only_a_tagging_push_holds_tags(options: Options) -> None:
    base = plan_of(options=options).get("base")
    assert base.held == ()
    assert base.test is not None


def test_a_platform_override_narrows_the_tested_platforms() -> None:
    files = {**TREE, "base-images/base/image.yaml": "test:\n  run: a\n  platforms: [linux/arm64]\n"}
    assert plan_of(files).get("base").test_platforms == (ARM64,)
    narrowed = plan_of(files, options=Options(push=False, platforms=(AMD64,))).get("base")
    assert (narrowed.test, narrowed.test_platforms) == (None, ())


def test_an_existing_image_is_tag_only_once_tested() -> None:
    untested = plan_of(existing={"base": D_BASE}).get("base")
    assert (untested.tested, untested.tag_only) == (False, False)
    tested = plan_of(existing={"base": D_BASE}, tested=frozenset({"base"})).get("base")
    assert (tested.tested, tested.tag_only) == (True, True)
    assert plan_of(existing={"api": D_API}).get("api").tag_only  # no test at all


def test_the_fan_out_gives_an_untested_existing_image_its_jobs() -> None:
    plan = plan_of(existing={"base": D_BASE, "api": D_API})
    assert {e["image"] for e in compute_matrix(plan)["include"]} == {"base", "cli"}


# -- the tester, through a fake door -----------------------------------------------------------


class FakeEngine:
    """The docker door, scripted: bake and imagetools as in test_executor, and tests whose
    outcome per (platform, command) the test decides; every call is recorded."""

    def __init__(
        self,
        *bakes: BakeResult,
        outcomes: Mapping[tuple[str, str], TestOutcome] | None = None,
        pull_error: str | None = None,
        default: tuple[str, ...] = ("python3", "/app/job.py"),
    ) -> None:
        self.bakes = list(bakes)
        self.outcomes = dict(outcomes or {})
        self.pull_error = pull_error
        self.default = default
        self.calls: list[tuple[Any, ...]] = []

    def bake(
        self,
        definition: dict[str, Any],
        targets: list[str],
        *,
        on_line: Callable[[str], None] | None = None,  # noqa: ARG002 - the door's signature
    ) -> BakeResult:
        self.calls.append(("bake", definition, targets))
        return self.bakes.pop(0)

    def imagetools_create(self, sources: list[str], tags: list[str]) -> str | None:
        self.calls.append(("create", sources, tags))
        return None

    def pull(self, reference: str, platform: str) -> str | None:
        self.calls.append(("pull", reference, platform))
        return self.pull_error

    def default_command(self, reference: str) -> tuple[str, ...]:
        self.calls.append(("inspect", reference))
        if not self.default:
            raise EngineError(f"cannot inspect {reference}: No such image")
        return self.default

    def run_test(
        self,
        reference: str,
        platform: str,
        argv: Sequence[str],
        *,
        env: Sequence[tuple[str, str]] = (),
        network: str = "none",
        timeout: float,
    ) -> TestOutcome:
        self.calls.append(("run", reference, platform, tuple(argv), tuple(env), network, timeout))
        return self.outcomes.get((platform, argv[-1]), TestOutcome(exit_code=0, seconds=0.5))

    def of(self, kind: str) -> list[tuple[Any, ...]]:
        return [c for c in self.calls if c[0] == kind]


def ticking() -> Callable[[], float]:
    """A clock that moves one second per reading."""
    now = [0.0]

    def clock() -> float:
        now[0] += 1.0
        return now[0]

    return clock


ON_ARM = {(ARM64, "uname -m"): TestOutcome(exit_code=1, output="aarch64\n", seconds=1.0)}


def make_tester(
    engine: FakeEngine, seen: list[tuple[str, TestResult]] | None = None
) -> ImageTester:
    return ImageTester(
        buildx=cast(Buildx, engine),
        on_test=(lambda n, t: seen.append((n, t))) if seen is not None else None,
        clock=ticking(),
    )


def test_every_platform_runs_every_command_in_the_image() -> None:
    engine = FakeEngine()
    seen: list[tuple[str, TestResult]] = []
    base = plan_of().get("base")
    results = make_tester(engine, seen).run_tests(base, f"docker.io/acme/base@{D_BASE}", pull=True)
    reference = f"docker.io/acme/base@{D_BASE}"
    assert engine.calls == [
        ("pull", reference, AMD64),
        ("run", reference, AMD64, ("/bin/sh", "-c", "python3 -V"), (), "none", 300),
        ("run", reference, AMD64, ("/bin/sh", "-c", "uname -m"), (), "none", 300),
        ("pull", reference, ARM64),
        ("run", reference, ARM64, ("/bin/sh", "-c", "python3 -V"), (), "none", 300),
        ("run", reference, ARM64, ("/bin/sh", "-c", "uname -m"), (), "none", 300),
    ]
    assert results == (
        TestResult(platform=AMD64, verdict="passed", seconds=1.0, commands=2),
        TestResult(platform=ARM64, verdict="passed", seconds=1.0, commands=2),
    )
    assert [n for n, _ in seen] == ["base", "base"]


def test_a_platform_stops_at_its_first_failure_and_the_others_still_run() -> None:
    outcomes = {(AMD64, "python3 -V"): TestOutcome(exit_code=2, output="no python")}
    engine = FakeEngine(outcomes=outcomes)
    results = make_tester(engine).run_tests(plan_of().get("base"), "r@x", pull=False)
    assert [c[2:4] for c in engine.of("run")] == [
        (AMD64, ("/bin/sh", "-c", "python3 -V")),
        (ARM64, ("/bin/sh", "-c", "python3 -V")),
        (ARM64, ("/bin/sh", "-c", "uname -m")),
    ]
    assert engine.of("pull") == []
    assert results[0] == TestResult(
        platform=AMD64,
        verdict="failed",
        seconds=1.0,
        commands=1,
        detail="`python3 -V` exited 2",
        output="no python",
    )
    assert results[1].passed


def test_a_timeout_and_an_engine_error_are_reported_as_such() -> None:
    outcomes = {
        (AMD64, "uname -m"): TestOutcome(exit_code=None, output="half", timed_out=True),
        (ARM64, "python3 -V"): TestOutcome(exit_code=None, error="No such image: r@x"),
    }
    results = make_tester(FakeEngine(outcomes=outcomes)).run_tests(
        plan_of().get("base"), "r@x", pull=False
    )
    assert (results[0].verdict, results[0].detail, results[0].output) == (
        "timed out",
        "`uname -m` was killed after 300s",
        "half",
    )
    assert (results[1].verdict, results[1].detail) == (
        "failed",
        "`python3 -V` could not run: No such image: r@x",
    )


def test_a_pull_failure_fails_the_platform_without_running_it() -> None:
    engine = FakeEngine(pull_error="manifest unknown")
    results = make_tester(engine).run_tests(plan_of().get("base"), "r@x", pull=True)
    assert engine.of("run") == []
    assert [r.detail for r in results] == ["cannot pull the image: manifest unknown"] * 2


def test_a_smoke_check_appends_its_arguments_to_the_default_command() -> None:
    files = {**TREE, "builder.yaml": "namespace: acme\nsmoke_test: --help\n"}
    cli = plan_of(files).get("cli")
    engine = FakeEngine(default=("/entry", "serve"))
    results = make_tester(engine).run_tests(cli, "r@x", pull=False)
    assert [c[3] for c in engine.of("run")] == [("/entry", "serve", "--help")] * 2
    assert all(r.passed for r in results)
    assert make_tester(FakeEngine(default=())).run_tests(cli, "r@x", pull=False)[0].detail == (
        "cannot inspect r@x: No such image"
    )


# -- the order of a tested push ----------------------------------------------------------------


def ok(target: str, digest: str) -> BakeResult:
    return BakeResult(ok=True, metadata={target: {"containerimage.digest": digest}}, log="baked")


def runner(plan: BuildPlan, engine: FakeEngine, **kwargs: Any) -> BakeRunner:
    return BakeRunner(buildx=cast(Buildx, engine), plan=plan, root=ROOT, clock=ticking(), **kwargs)


def test_a_passing_image_is_baked_under_its_key_then_tested_then_tagged() -> None:
    plan = plan_of(names=("base",))
    base = plan.get("base")
    engine = FakeEngine(ok("base", D_BASE))
    result = runner(plan, engine)(base, {})
    [bake, *rest] = engine.calls
    assert bake[1]["target"]["base"]["tags"] == list(base.bake_tags)
    assert [c[0] for c in rest] == ["pull", "run", "run", "pull", "run", "run", "create"]
    assert engine.of("create") == [
        ("create", [f"docker.io/acme/base@{D_BASE}"], [*base.held, base.verdict])
    ]
    assert (result.status, result.digest, result.tags) == ("built", D_BASE, base.tags)
    assert [t.verdict for t in result.tests] == ["passed", "passed"]


def test_a_failure_on_arm64_moves_nothing_and_keeps_the_key_tag() -> None:
    plan = plan_of(names=("base",))
    base = plan.get("base")
    engine = FakeEngine(ok("base", D_BASE), outcomes=ON_ARM)
    result = runner(plan, engine)(base, {})
    assert engine.of("create") == []
    assert result.status == "failed"
    assert result.test_failed
    assert result.reason == "test failed on linux/arm64: `uname -m` exited 1"
    assert (result.digest, result.tags) == (D_BASE, base.bake_tags)
    assert result.log.endswith("--- test on linux/arm64: `uname -m` exited 1\naarch64")


def test_dependants_of_a_failed_test_are_skipped() -> None:
    plan = plan_of(names=("base", "api"))
    engine = FakeEngine(ok("base", D_BASE), outcomes=ON_ARM)
    results = run_schedule(plan, runner(plan, engine), jobs=1)
    assert (results["api"].status, results["api"].reason) == ("skipped", "parent base failed")
    assert len(engine.of("bake")) == 1


def test_an_existing_untested_image_is_tested_then_tagged_never_baked() -> None:
    plan = plan_of(names=("base",), existing={"base": D_BASE})
    base = plan.get("base")
    engine = FakeEngine()
    result = runner(plan, engine)(base, {})
    assert engine.of("bake") == []
    assert [c[1] for c in engine.of("pull")] == [f"docker.io/acme/base@{D_BASE}"] * 2
    assert engine.of("create") == [
        ("create", [f"docker.io/acme/base@{D_BASE}"], [*base.tags, base.verdict])
    ]
    assert (result.status, result.digest) == ("tagged", D_BASE)
    assert result.reason.startswith(f"{key_tag(KEYS['base'])} already pushed; tests passed; tagged")
    assert len(result.tests) == 2


def test_an_existing_image_failing_again_stays_untagged() -> None:
    plan = plan_of(names=("base",), existing={"base": D_BASE})
    engine = FakeEngine(outcomes=ON_ARM)
    result = runner(plan, engine)(plan.get("base"), {})
    assert engine.of("create") == []
    assert (result.status, result.reason) == (
        "failed",
        "test failed on linux/arm64: `uname -m` exited 1",
    )


def test_an_existing_tested_image_is_only_tagged() -> None:
    plan = plan_of(names=("base",), existing={"base": D_BASE}, tested=frozenset({"base"}))
    engine = FakeEngine()
    result = runner(plan, engine)(plan.get("base"), {})
    assert [c[0] for c in engine.calls] == ["create"]
    assert (result.status, result.tests) == ("tagged", ())


def test_not_pushing_tests_the_loaded_image_by_its_local_tag() -> None:
    plan = plan_of(names=("base",), options=Options(push=False), keys=None)
    base = plan.get("base")
    engine = FakeEngine(ok("base", D_BASE), outcomes=ON_ARM)
    result = runner(plan, engine, load=True)(base, {})
    assert engine.of("pull") == []
    assert {c[1] for c in engine.of("run")} == {"docker.io/acme/base:git-0123456"}
    assert (result.status, result.digest) == ("failed", None)


def test_not_pushing_nor_loading_leaves_the_tests_not_run() -> None:
    plan = plan_of(names=("base",), options=Options(push=False), keys=None)
    result = runner(plan, FakeEngine(ok("base", D_BASE)))(plan.get("base"), {})
    assert result.status == "built"
    assert [t.verdict for t in result.tests] == ["not run", "not run"]


def test_a_by_digest_push_tests_its_platform_and_tags_nothing() -> None:
    plan = plan_of(names=("base",), options=Options(push_by_digest=True, platforms=(ARM64,)))
    engine = FakeEngine(ok("base", D_BASE), outcomes=ON_ARM)
    result = runner(plan, engine)(plan.get("base"), {})
    assert [c[2] for c in engine.of("run")] == [ARM64, ARM64]
    assert engine.of("create") == []
    assert result.status == "failed"  # so no digest file: merge refuses the image


def test_an_image_pinned_to_an_untested_parent_is_not_built() -> None:
    repo = load_files(TREE)
    plan = compute_plan(
        repo.graph,
        Affected(images=tuple(i for i in compute_all(repo.graph, "-").images if i.name == "api")),
        settings=repo.settings,
        revision=Revision(sha=SHA, branch="main"),
        options=Options(),
        keys=KEYS,
        untested=frozenset({"base"}),
    )
    api = plan.get("api")
    assert api.untested_parents == ("base",)
    engine = FakeEngine()
    result = runner(plan, engine)(api, {})
    assert engine.calls == []
    assert result.status == "failed"
    assert result.reason.startswith("parent base is pushed under its key but its tests never")


def test_merge_records_the_verdict_of_images_whose_jobs_passed() -> None:
    plan = plan_of(names=("base",))
    base = plan.get("base")

    class Registry:
        def digest(self, reference: str) -> str:  # noqa: ARG002 - the door's signature
            return D_BASE

        def platforms(self, reference: str) -> tuple[str, ...]:  # noqa: ARG002
            return (AMD64, ARM64)

    engine = FakeEngine()
    have = {AMD64: D_OLD, ARM64: D_API}
    result = merge_one(base, have, cast(Buildx, engine), cast(Any, Registry()))
    assert engine.of("create")[0][2] == [*base.tags, base.verdict]
    assert [(t.platform, t.verdict) for t in result.tests] == [(AMD64, "passed"), (ARM64, "passed")]
    missing = merge_one(base, {AMD64: D_OLD}, cast(Buildx, engine), cast(Any, Registry()))
    assert missing.reason == (
        "refusing to tag: no digest for linux/arm64 (its build failed, or its tests did)"
    )


# -- reconcile: a key without a passing verdict is not done --------------------------------------

GRAPH = load_files(TREE).graph
HASH = "9" * 64


def key_report(present: Sequence[str], tested: Sequence[str] = ()) -> KeyReport:
    return KeyReport(
        keys=KEYS,
        present=frozenset(present),
        digests=dict.fromkeys(present, D_BASE),
        base_digests={},
        test_hashes={"base": HASH},
        tested=frozenset(tested),
    )


def test_an_untested_key_is_affected_for_a_test_not_a_build() -> None:
    report = key_report(["base", "api", "cli"])
    assert report.untested == frozenset({"base"})
    result = compute_reconciled(GRAPH, Affected(images=()), report)
    [image] = result.images
    assert image.name == "base"
    assert image.reasons == (
        Reason(kind="test", note=f"the registry has no {verdict_tag(KEYS['base'], HASH)}"),
    )
    assert image.reasons[0].render().startswith("not tested: the registry has no tested-")
    assert compute_reconciled(GRAPH, Affected(images=()), key_report(KEYS, ["base"])).images == ()


def test_an_untested_key_is_planned_on_its_digest_unless_forced() -> None:
    report = key_report(["base", "api", "cli"])
    rebuilt = compute_reconciled(GRAPH, Affected(images=()), report)
    assert _already_pushed(Affected(images=()), rebuilt, report, frozenset()) == {"base": D_BASE}
    assert _already_pushed(Affected(images=()), rebuilt, report, frozenset({"base"})) == {}


class FakeRegistry:
    def __init__(self, table: Mapping[str, str]) -> None:
        self.table = dict(table)
        self.asked: list[str] = []
        self.requests = 0
        self._lock = threading.Lock()

    def head(self, reference: str) -> str | None:
        with self._lock:
            self.asked.append(reference)
            self.requests += 1
        return self.table.get(reference)

    def triggers(self, reference: str) -> tuple[str, ...]:
        with self._lock:
            self.asked.append(reference)
            self.requests += 1
        return ()


class FakeGit:
    def file_ids(self, sha: str | None) -> dict[str, str]:  # noqa: ARG002
        return file_ids(TREE)


def fetch(table: Mapping[str, str], state: State | None = None) -> tuple[KeyReport, FakeRegistry]:
    registry = FakeRegistry(table)
    selection = Selection(
        repo=load_files(TREE),
        range=Range(base=None, head=SHA, base_label="-", head_label="HEAD"),
        affected=Affected(images=()),
        warnings=(),
    )
    report = fetch_key_report(
        cast(Git, FakeGit()), selection, cast(Registry, registry), state=state, jobs=2
    )
    return report, registry


def test_the_verdict_must_name_the_keys_digest() -> None:
    report, _ = fetch({})
    keys, hashes = report.keys, report.test_hashes
    assert set(hashes) == {"base"}
    key_ref = f"docker.io/acme/base:{key_tag(keys['base'])}"
    verdict_ref = f"docker.io/acme/base:{verdict_tag(keys['base'], hashes['base'])}"
    tested, asked = fetch({key_ref: D_BASE, verdict_ref: D_BASE})
    assert tested.tested == frozenset({"base"})
    assert verdict_ref in asked.asked
    stale, _ = fetch({key_ref: D_BASE, verdict_ref: D_OLD})  # the key was pushed again
    assert stale.untested == frozenset({"base"})
    missing, _ = fetch({key_ref: D_BASE})
    assert missing.untested == frozenset({"base"})


def test_the_state_answers_for_a_verdict_it_recorded_for_this_test() -> None:
    report, _ = fetch({})
    key, test = report.keys["base"], report.test_hashes["base"]
    state = State(images={"base": (key, D_BASE)}, tests={"base": test})
    known, registry = fetch({}, state)
    assert known.tested == frozenset({"base"})
    assert not any("acme/base" in a for a in registry.asked)
    other = State(images={"base": (key, D_BASE)}, tests={"base": "0" * 64})
    changed, registry = fetch({}, other)
    assert changed.untested == frozenset({"base"})
    assert any("tested-" in a for a in registry.asked)


def test_the_state_records_a_tested_image_only_with_a_passing_verdict() -> None:
    report = key_report(["base", "api"])
    pushed = {"base": D_BASE, "api": D_API}
    previous = State(images={"base": (KEYS["base"], D_OLD)}, tests={"base": HASH})
    failed = updated_state(previous, report, pushed, revision=SHA)
    assert set(failed.images) == {"api"}
    assert failed.tests == {}
    passed = updated_state(None, report, pushed, frozenset({"base"}), revision=SHA)
    assert passed.images["base"] == (KEYS["base"], D_BASE)
    assert passed.tests == {"base": HASH}
    again = parse_state(passed.to_json())
    assert again == passed
    assert passed.revision == SHA
    # A version 1 state predates the keys it would need: never trusted.
    assert parse_state(b'{"version":1,"images":{},"bases":{}}') is None


# -- reports -----------------------------------------------------------------------------------

PASSED = TestResult(platform=AMD64, verdict="passed", seconds=1.25, commands=2)
FAILED = TestResult(
    platform=ARM64,
    verdict="failed",
    seconds=3.5,
    commands=2,
    detail="`uname -m` exited 1",
    output="aarch64",
)


def build_report(result: ImageResult) -> BuildReport:
    repo = load_files(TREE)
    selection = Selection(
        repo=repo,
        range=Range(base="e" * 40, head=SHA, base_label="HEAD~1", head_label="HEAD"),
        affected=Affected(images=()),
        warnings=(),
    )
    plan = plan_of(names=("base",))
    return BuildReport(
        selection=selection,
        plan=plan,
        revision=Revision(sha=SHA, branch="main"),
        results={"base": result, "cli": ImageResult(name="cli", status="unchanged", reason="-")},
    )


FAILED_BASE = ImageResult(
    name="base",
    status="failed",
    reason="test failed on linux/arm64: `uname -m` exited 1",
    repository="docker.io/acme/base",
    digest=D_BASE,
    tests=(PASSED, FAILED),
)


def test_the_table_shows_each_platforms_verdict_and_time() -> None:
    text = render_build_report(build_report(FAILED_BASE))
    header, _, row, summary = text.splitlines()
    assert header.split() == ["IMAGE", "STATUS", "PINNED", "TAGS", "/", "WHY", "TESTS"]
    assert row.startswith("base   failed (test)")
    assert row.endswith("amd64 passed 1.2s, arm64 FAILED 3.5s")
    assert summary == "1 failed, 1 unchanged"


def test_the_table_has_no_tests_column_without_tests() -> None:
    text = render_build_report(build_report(replace(FAILED_BASE, tests=())))
    assert "TESTS" not in text
    assert "failed (test)" not in text


def test_the_metadata_file_lists_tests_per_platform() -> None:
    data = metadata_json(build_report(FAILED_BASE))
    assert data["images"]["base"]["tests"] == [
        {"platform": AMD64, "result": "passed", "seconds": 1.25, "commands": 2},
        {
            "platform": ARM64,
            "result": "failed",
            "seconds": 3.5,
            "commands": 2,
            "detail": "`uname -m` exited 1",
            "output": "aarch64",
        },
    ]
    assert data["images"]["cli"]["tests"] == []
    json.dumps(data)


def test_the_summary_has_a_tests_column() -> None:
    summary = render_summary(build_report(FAILED_BASE))
    assert "| image | status | why | tests | tags | pinned |" in summary
    assert "| base | ❌ failed (test) |" in summary
    assert "✅ amd64 1.2s<br>❌ arm64 3.5s" in summary


def test_the_log_line_of_a_platform() -> None:
    assert render_test_line("base", FAILED) == (
        "tested base on linux/arm64: failed in 3.5s: `uname -m` exited 1"
    )
    skipped = TestResult(platform=AMD64, verdict="not run", detail="no store")
    assert render_test_line("base", skipped) == "tested base on linux/amd64: not run: no store"


def test_the_dry_run_says_what_waits_for_the_tests() -> None:
    plan = plan_of(names=("base",), existing={"base": D_BASE})
    report = replace(build_report(FAILED_BASE), plan=plan)
    text = render_dry_run(report, ROOT, Outputs())
    assert f"already pushed as {D_BASE}: tested, then tagged" in text
    assert "tag docker.io/acme/base:latest (once the tests pass)" in text
    assert "test on linux/amd64, linux/arm64 (timeout 300s, network none):" in text
    assert "      $ uname -m" in text
    assert "(records that the tests passed)" in text
    assert compute_dry_run(plan, root=ROOT, outputs=Outputs()) == {}  # nothing to bake


def test_explain_says_a_key_is_retested() -> None:
    repo = load_files(TREE)
    report = key_report(["base", "api", "cli"])
    selection = Selection(
        repo=repo,
        range=Range(base=None, head=SHA, base_label="-", head_label="HEAD"),
        affected=compute_reconciled(repo.graph, Affected(images=()), report),
        warnings=(),
    )
    text = render_explain(selection, report)
    tag = verdict_tag(KEYS["base"], HASH)
    assert f"{key_tag(KEYS['base'])} built before; {tag} missing: re-tested, not rebuilt" in text


def test_the_test_command_report() -> None:
    assert "no image has a test" in render_test_report({})
    text = render_test_report({"base": FAILED_BASE})
    assert "base   failed" in text
    assert "amd64 passed 1.2s, arm64 FAILED 3.5s" in text


# -- builder test -----------------------------------------------------------------------------


def test_the_tested_reference_is_the_ref_the_key_or_the_commit() -> None:
    base = plan_of().get("base")
    assert compute_reference(base, "v1", D_BASE, "git-0123456") == ("docker.io/acme/base:v1", "v1")
    assert compute_reference(base, D_OLD, None, "git-0123456") == (
        f"docker.io/acme/base@{D_OLD}",
        D_OLD,
    )
    assert compute_reference(base, None, D_BASE, "git-0123456") == (
        f"docker.io/acme/base@{D_BASE}",
        key_tag(KEYS["base"]),
    )
    assert compute_reference(base, None, None, "git-0123456") == (
        "docker.io/acme/base:git-0123456",
        "git-0123456",
    )


@pytest.mark.parametrize("text", ["a:b", "sha256:12", "", "-x"])
def test_a_bad_ref_is_refused(text: str) -> None:
    with pytest.raises(UserError, match="neither a tag nor a digest"):
        parse_ref(text)


def test_the_cli_refuses_a_bad_ref_in_one_line(tmp_path: Path) -> None:
    result = invoke("test", "--ref", "a b", "-C", tmp_path)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        (
            "error: --ref 'a b' is neither a tag nor a digest "
            "(e.g. --ref git-0123abc or --ref sha256:<64 hex>)"
        )
    ]


# -- the door: a real child process, a fake docker ---------------------------------------------


@pytest.fixture
def fake_docker(tmp_path: Path) -> tuple[Buildx, Path]:
    """`docker` on PATH records its argv, sleeps in `run` when told to, and exits as told."""
    calls = tmp_path / "calls"
    shim = tmp_path / "bin" / "docker"
    shim.parent.mkdir()
    shim.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {calls}\n'
        'case "$1" in\n'
        '  run) echo "out of the container"; echo "to stderr" >&2;'
        ' [ -n "$SHIM_SLEEP" ] && exec sleep "$SHIM_SLEEP"; exit "${SHIM_EXIT:-0}";;\n'
        '  image) echo \'["/entry"]\t["serve"]\';;\n'
        "  container) exit 1;;\n"
        '  pull) [ -n "$SHIM_PULL" ] && { echo "$SHIM_PULL" >&2; exit 1; }; exit 0;;\n'
        "esac\n",
        encoding="utf-8",
    )
    shim.chmod(0o755)
    environ = {"PATH": f"{shim.parent}{os.pathsep}{os.environ['PATH']}"}
    return Buildx(EngineOptions(environ=environ)), calls


def with_env(buildx: Buildx, **env: str) -> Buildx:
    buildx._environ.update(env)
    return buildx


def test_run_test_runs_one_container_by_a_unique_name(fake_docker: tuple[Buildx, Path]) -> None:
    buildx, calls = fake_docker
    outcome = buildx.run_test(
        "r/a@sha256:1", ARM64, ["/bin/sh", "-c", "uname -m"], env=[("A", "1")], timeout=30
    )
    assert outcome.passed
    assert outcome.output == "out of the container\nto stderr"
    [argv] = calls.read_text().splitlines()
    words = argv.split()
    assert words[:3] == ["run", "--rm", "--name"]
    assert words[3].startswith("builder-test-")
    assert words[4:] == [
        "--label",
        f"{TEST_LABEL}=r/a@sha256:1",
        "--pull",
        "never",
        "--platform",
        ARM64,
        "--network",
        "none",
        "--env=A=1",
        "--entrypoint",
        "/bin/sh",
        "r/a@sha256:1",
        "-c",
        "uname",
        "-m",
    ]


def test_a_failing_command_is_its_exit_code(fake_docker: tuple[Buildx, Path]) -> None:
    buildx, _ = fake_docker
    outcome = with_env(buildx, SHIM_EXIT="3").run_test("r", AMD64, ["x"], timeout=30)
    assert (outcome.exit_code, outcome.passed, outcome.error) == (3, False, "")
    engine = with_env(buildx, SHIM_EXIT="125").run_test("r", AMD64, ["x"], timeout=30)
    assert (engine.exit_code, engine.error) == (None, "out of the container")


def test_a_hanging_test_is_killed_by_name_at_its_timeout(fake_docker: tuple[Buildx, Path]) -> None:
    buildx, calls = fake_docker
    started = time.monotonic()
    outcome = with_env(buildx, SHIM_SLEEP="30").run_test("r", AMD64, ["x"], timeout=1)
    assert time.monotonic() - started < 15
    assert outcome.timed_out
    assert outcome.exit_code is None
    assert "out of the container" in outcome.output
    run, kill, remove, inspect = calls.read_text().splitlines()
    name = run.split()[3]
    assert kill == f"kill {name}"
    assert remove == f"rm --force {name}"
    assert inspect == f"container inspect {name}"  # gone: the shim knows no container


def test_pull_and_default_command(fake_docker: tuple[Buildx, Path]) -> None:
    buildx, calls = fake_docker
    assert buildx.pull("r@sha256:1", ARM64) is None
    assert with_env(buildx, SHIM_PULL="Error response from daemon: denied").pull("r", ARM64) == (
        "denied"
    )
    assert buildx.default_command("r@sha256:1") == ("/entry", "serve")
    assert calls.read_text().splitlines()[0] == f"pull --quiet --platform {ARM64} r@sha256:1"


def test_the_door_runs_in_the_runs_docker_context() -> None:
    buildx = Buildx(EngineOptions(environ={"DOCKER_HOST": "unix:///x.sock", "PATH": "/bin"}))
    buildx._context = "second"
    argv, env = buildx._docker()
    assert argv == ["docker", "--context", "second"]
    assert "DOCKER_HOST" not in env


def test_affected_reasons_of_a_test_edit_are_git_config_reasons() -> None:
    """git sees image.yaml change; reconcile, not git, decides it is re-tested only."""
    affected = compute_affected(GRAPH, ["base-images/base/image.yaml"])
    assert [i.name for i in affected.images] == ["base", "api"]
    assert isinstance(Settings(), Settings)
