"""The reports GitLab and Jenkins show (JUnit XML, dotenv) and the GitLab fan-out child
pipeline, as pure values and through the CLI; checked the way their readers read them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from builder.changes import compute_affected
from builder.ci import CIFacts
from builder.executor import mark_unchanged
from builder.plan import BuildPlan, Options, Revision, compute_plan
from builder.publish import ReportFiles, publish, report_files
from builder.render.gitlab import (
    DOTENV_LIMIT,
    compute_child_pipeline,
    compute_dotenv,
    render_child_pipeline,
    render_dotenv,
)
from builder.render.junit import (
    LOG_TAIL_LINES,
    Case,
    Suite,
    compute_suites,
    log_tail,
    render_junit,
    render_report_junit,
)
from builder.reports import BuildReport, ImageResult, Range, Selection, TestResult
from tests.conftest import commit, invoke, load_files
from tests.integration.test_gitlab import expected_child

MakeRepo = Callable[..., Path]
SHA = "0123456789abcdef0123456789abcdef01234567"
DIGEST = "sha256:" + "a" * 64
TREE = {
    "builder.yaml": "namespace: acme\n",
    "base-images/base/Dockerfile": "FROM python:3.12-slim\n",
    "images/api/Dockerfile": "FROM acme/base\nCOPY . /app\n",
    "images/worker/Dockerfile": "FROM acme/api\n",
    "images/cli/Dockerfile": "FROM alpine:3.20\n",
    "images/cli/image.yaml": "platforms: [linux/amd64]\n",
}
REPO = load_files(TREE)
GITLAB = {"CI": "true", "GITLAB_CI": "true", "CI_PIPELINE_SOURCE": "push"}
JENKINS = {"CI": "true", "JENKINS_URL": "https://jenkins.example.invalid/"}
# A build log as buildx prints it: colours, a carriage return, a NUL and a bell.
LOG = "\n".join(
    [f"#{n} step {n} \x1b[32mDONE\x1b[0m" for n in range(1, 100)]
    + ['#100 ERROR: process "/bin/sh -c make" did not complete\r', "boom\x00\x07 <&>"]
)


def make_plan(*changed: str) -> BuildPlan:
    return compute_plan(
        REPO.graph,
        compute_affected(REPO.graph, changed),
        settings=REPO.settings,
        revision=Revision(sha=SHA, branch="main"),
        options=Options(),
    )


def make_report(results: Mapping[str, ImageResult], plan: BuildPlan | None = None) -> BuildReport:
    plan = plan or make_plan("base-images/base/Dockerfile")
    selection = Selection(
        repo=REPO,
        range=Range(base="e" * 40, head=SHA, base_label="HEAD~1", head_label="HEAD"),
        affected=compute_affected(REPO.graph, ["base-images/base/Dockerfile"]),
        warnings=(),
    )
    return BuildReport(
        selection=selection,
        plan=plan,
        revision=Revision(sha=SHA, branch="main"),
        results=mark_unchanged(plan, dict(results)),
    )


def every_outcome() -> BuildReport:
    base = make_plan("base-images/base/Dockerfile").get("base")
    return make_report(
        {
            "base": ImageResult(
                name="base",
                status="built",
                reason="Dockerfile changed: base-images/base/Dockerfile",
                repository=base.repository,
                digest=DIGEST,
                tags=base.tags,
                platforms=base.platforms,
                seconds=12.3456,
            ),
            "api": ImageResult(
                name="api",
                status="failed",
                reason="ERROR: a | b\nexit code: 1",
                repository="docker.io/acme/api",
                log=LOG,
                seconds=3.5,
            ),
            "worker": ImageResult(
                name="worker", status="skipped", reason="parent api failed", seconds=0.0
            ),
        }
    )


# -- JUnit, read as GitLab and Jenkins read it -----------------------------------------------


def read_junit(text: str) -> dict[str, dict[str, dict[str, object]]]:
    """suite -> case -> what a reader takes from it; asserts the structure on the way.

    The structure both readers accept (GitLab's lib/gitlab/ci/parsers/test/junit.rb, the
    Jenkins junit plugin's SuiteResult): `<testsuites>` holding `<testsuite>`s holding
    `<testcase name classname time>`, each with at most one of `<failure>` / `<skipped>`
    (with text: GitLab shows it as the case's output) and an optional `<system-out>`; the
    counts on every suite agree with its cases."""
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    root = ET.fromstring(text.encode("utf-8"))  # noqa: S314 (our own output)
    assert root.tag == "testsuites"
    suites: dict[str, dict[str, dict[str, object]]] = {}
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for suite in root:
        assert suite.tag == "testsuite"
        assert set(suite.attrib) == {"name", "tests", "failures", "errors", "skipped", "time"}
        cases: dict[str, dict[str, object]] = {}
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        for case in suite:
            assert case.tag == "testcase"
            assert (
                {"name", "classname", "time"}
                <= set(case.attrib)
                <= {
                    "name",
                    "classname",
                    "time",
                    "file",
                }
            )
            float(case.attrib["time"])
            children = [c.tag for c in case]
            assert set(children) <= {"failure", "skipped", "system-out"}
            assert len(children) == len(set(children))
            assert not {"failure", "skipped"} <= set(children)
            outcome, output = "passed", None
            for tag in ("failure", "skipped"):
                found = case.find(tag)
                if found is not None:
                    assert (found.text or "").strip(), f"<{tag}> without text"
                    assert "message" in found.attrib
                    outcome, output = tag, found.text
            counts["tests"] += 1
            counts["failures"] += outcome == "failure"
            counts["skipped"] += outcome == "skipped"
            out = case.find("system-out")
            cases[case.attrib["name"]] = {
                **case.attrib,
                "outcome": outcome,
                "output": output,
                "message": None if outcome == "passed" else case.find(outcome).get("message"),  # type: ignore[union-attr]
                "system_out": None if out is None else out.text,
            }
        assert {k: int(suite.attrib[k]) for k in counts} == counts
        for key, value in counts.items():
            totals[key] += value
        suites[suite.attrib["name"]] = cases
    assert {k: int(root.attrib[k]) for k in totals} == totals
    return suites


def test_junit_has_one_case_per_planned_image() -> None:
    text = render_report_junit(every_outcome())
    suites = read_junit(text)
    assert list(suites) == ["builder build"]
    cases = suites["builder build"]
    assert list(cases) == ["base", "api", "worker"], "build order; unchanged cli is no case"

    base = cases["base"]
    assert (base["outcome"], base["classname"], base["time"]) == (
        "passed",
        "builder.build",
        "12.346",
    )
    assert base["file"] == "base-images/base/Dockerfile"
    assert base["system_out"] == "\n".join(
        [
            "built: Dockerfile changed: base-images/base/Dockerfile",
            "platforms: linux/amd64, linux/arm64",
            "tag: docker.io/acme/base:git-0123456",
            "tag: docker.io/acme/base:main",
            "tag: docker.io/acme/base:latest",
            f"pinned: docker.io/acme/base@{DIGEST}",
        ]
    )

    api = cases["api"]
    assert (api["outcome"], api["message"], api["time"]) == ("failure", "ERROR: a | b", "3.500")
    output = str(api["output"])
    assert output.startswith("ERROR: a | b\nexit code: 1\n\n")
    tail = output.split("\n\n", 1)[1].splitlines()
    assert len(tail) == LOG_TAIL_LINES
    assert tail[-2:] == ['#100 ERROR: process "/bin/sh -c make" did not complete', "boom <&>"]
    assert "\x1b" not in output
    assert tail[0] == "#42 step 42 DONE"

    worker = cases["worker"]
    assert (worker["outcome"], worker["message"], worker["output"]) == (
        "skipped",
        "parent api failed",
        "parent api failed",
    )
    root = ET.fromstring(text)  # noqa: S314
    assert root.attrib == {
        "name": "builder",
        "tests": "3",
        "failures": "1",
        "errors": "0",
        "skipped": "1",
        "time": "15.846",
    }
    assert root.find("testsuite/testcase/failure").get("type") == "BuildFailed"  # type: ignore[union-attr]


def test_tagged_passes_and_a_dry_runs_planned_image_is_skipped() -> None:
    report = make_report(
        {
            "base": ImageResult(name="base", status="tagged", reason="key-1 already pushed"),
            "api": ImageResult(name="api", status="unchanged", reason="key in place"),
            "worker": ImageResult(name="worker", status="planned", reason="dry run"),
        }
    )
    cases = read_junit(render_report_junit(report))["builder build"]
    assert list(cases) == ["base", "worker"]
    assert cases["base"]["outcome"] == "passed"
    assert cases["base"]["system_out"] == "tagged: key-1 already pushed"
    assert cases["worker"]["outcome"] == "skipped"
    assert cases["worker"]["message"] == "dry run: planned, not built"


def test_nothing_planned_is_an_empty_suite() -> None:
    plan = make_plan()
    suites = read_junit(render_report_junit(make_report({}, plan)))
    assert suites == {"builder build": {}}


def test_image_tests_are_a_suite_of_their_own() -> None:
    """One case per image and platform tested, beside the build suite: a failure carries
    the command's output tail, a timeout is a failure of its own type, not run is skipped,
    and the case names the image.yaml that holds the test."""
    report = every_outcome()
    cli = ImageResult(
        name="cli",
        status="built",
        reason="test changed",
        tests=(
            TestResult(platform="linux/amd64", verdict="passed", seconds=1.5, commands=2),
            TestResult(
                platform="linux/arm64",
                verdict="failed",
                seconds=2.25,
                commands=1,
                detail="test failed on linux/arm64: `python -c 'import job'` exited 1",
                output=LOG,
            ),
        ),
    )
    base = replace(
        report.results["base"],
        tests=(
            TestResult(platform="linux/amd64", verdict="timed out", seconds=300.0, detail="t/o"),
            TestResult(platform="linux/arm64", verdict="not run", detail="--no-push: not loaded"),
        ),
    )
    report = replace(report, results={**report.results, "base": base, "cli": cli})
    text = render_report_junit(report)
    suites = read_junit(text)
    assert list(suites) == ["builder build", "builder test"]
    cases = suites["builder test"]
    assert list(cases) == [
        "base on linux/amd64",
        "base on linux/arm64",
        "cli on linux/amd64",
        "cli on linux/arm64",
    ]
    assert {c["classname"] for c in cases.values()} == {"builder.test"}
    assert [c["outcome"] for c in cases.values()] == ["failure", "skipped", "passed", "failure"]
    assert cases["base on linux/arm64"]["message"] == "--no-push: not loaded"
    failed = cases["cli on linux/arm64"]
    assert failed["file"] == "images/cli/image.yaml"
    assert "file" not in cases["base on linux/amd64"], "base has no image.yaml"
    assert failed["time"] == "2.250"
    assert failed["message"] == "test failed on linux/arm64: `python -c 'import job'` exited 1"
    output = str(failed["output"])
    assert output.startswith(str(failed["message"]) + "\n\n")
    assert output.splitlines()[-1] == "boom <&>"
    assert cases["cli on linux/amd64"]["system_out"] == "passed: 2 command(s)"
    root = ET.fromstring(text)  # noqa: S314
    types = [f.get("type") for f in root.iterfind("testsuite[@name='builder test']//failure")]
    assert types == ["TestTimedOut", "TestFailed"]


def test_no_tests_run_is_no_test_suite() -> None:
    assert [s.name for s in compute_suites(every_outcome())] == ["builder build"]


@pytest.mark.parametrize(
    "hostile",
    [
        "\x00\x01\x02\x08\x0b\x0c\x0e\x1f",
        "\ud800 lone surrogate",
        "\ufffe\uffff",
        "]]> <![CDATA[ & &amp; \" '",
        "\x1b[1;31mred\x1b[0m \x1b]0;title\x07",
        "newline\nin\nan attribute",
    ],
)
def test_any_text_makes_parsable_xml(hostile: str) -> None:
    case = Case(
        name=hostile,
        classname=hostile,
        outcome="failed",
        message=hostile,
        detail=hostile,
        file=hostile,
        output=hostile,
    )
    text = render_junit([Suite(name=hostile, cases=(case,))], name=hostile)
    (suite,) = read_junit(text).values()
    (only,) = suite.values()
    assert only["outcome"] == "failure"


def test_log_tail_keeps_the_end() -> None:
    assert log_tail("") == ""
    assert log_tail("a\nb\nc\n", lines=2) == "b\nc"
    long = log_tail("x" * 100, chars=10)
    assert long == "…" + "x" * 9


# -- dotenv, as GitLab's parser takes it -----------------------------------------------------


def read_dotenv(text: str) -> dict[str, str]:
    """GitLab's ParseDotenvArtifactService: every line KEY=VALUE, no blank lines, no
    comments, the value verbatim; the file under the size limit."""
    assert len(text.encode("utf-8")) < DOTENV_LIMIT
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        assert sep, line
        assert re.fullmatch(r"[A-Z_][A-Z0-9_]*", key), line
        values[key] = value
    assert text.endswith("\n")
    return values


def test_dotenv_holds_the_outputs() -> None:
    text = render_dotenv(compute_dotenv(every_outcome(), Path("out/builder-metadata.json")))
    assert text == (
        'BUILDER_BUILT=["base"]\n'
        'BUILDER_FAILED=["api"]\n'
        "BUILDER_TAGGED=[]\n"
        "BUILDER_METADATA=out/builder-metadata.json\n"
    )
    assert read_dotenv(text)["BUILDER_BUILT"] == '["base"]'
    assert compute_dotenv(every_outcome(), None)["BUILDER_METADATA"] == ""


def test_dotenv_stays_under_gitlabs_limit() -> None:
    names = [f"image-with-a-rather-long-name-{n:04d}" for n in range(400)]
    report = make_report({})
    results = {n: ImageResult(name=n, status="built", reason="x") for n in names}
    report = replace(report, results=results)
    values = compute_dotenv(report, Path("builder-metadata.json"))
    read = read_dotenv(render_dotenv(values))
    built = json.loads(read["BUILDER_BUILT"])
    assert read["BUILDER_TRUNCATED"] == "true"
    assert 0 < len(built) < len(names)
    assert built == names[: len(built)], "the first names, in build order"
    assert read["BUILDER_METADATA"] == "builder-metadata.json"


# -- publishing: which system gets which file ------------------------------------------------


def test_report_files_come_from_the_ci_unless_the_flags_say() -> None:
    github = CIFacts(system="github")
    gitlab = CIFacts(system="gitlab", junit=Path("builder-junit.xml"), dotenv=Path("builder.env"))
    assert report_files(github) == ReportFiles()
    assert report_files(CIFacts()) == ReportFiles()
    assert report_files(gitlab, metadata=Path("m.json")) == ReportFiles(
        metadata=Path("m.json"), junit=Path("builder-junit.xml"), dotenv=Path("builder.env")
    )
    flagged = report_files(github, junit=Path("j.xml"), dotenv=Path("o.env"))
    assert flagged == ReportFiles(junit=Path("j.xml"), dotenv=Path("o.env"))


def test_publish_writes_both_reports(tmp_path: Path) -> None:
    files = ReportFiles(
        metadata=Path("builder-metadata.json"),
        junit=tmp_path / "builder-junit.xml",
        dotenv=tmp_path / "builder.env",
    )
    publish(every_outcome(), CIFacts(system="jenkins"), files)
    assert list(read_junit((tmp_path / "builder-junit.xml").read_text(encoding="utf-8"))) == [
        "builder build"
    ]
    dotenv = read_dotenv((tmp_path / "builder.env").read_text(encoding="utf-8"))
    assert dotenv["BUILDER_METADATA"] == "builder-metadata.json"


# -- the child pipeline ----------------------------------------------------------------------


def test_child_pipeline_follows_the_image_graph() -> None:
    plan = make_plan("base-images/base/Dockerfile")
    child = compute_child_pipeline(plan)
    assert child == expected_child({"base": (), "api": ("base",), "worker": ("api",)})
    assert list(child)[:4] == [
        "stages",
        "build:base:linux-amd64",
        "build:base:linux-arm64",
        "merge:base",
    ]
    assert yaml.safe_load(render_child_pipeline(plan)) == child


def test_child_pipeline_jobs_per_platform_and_tag_only_images() -> None:
    plan = make_plan("base-images/base/Dockerfile", "images/cli/Dockerfile")
    base = replace(plan.get("base"), existing=DIGEST)  # its key is already pushed
    plan = replace(plan, images=tuple(base if b.name == "base" else b for b in plan.images))
    child = compute_child_pipeline(plan)
    assert sorted(j for j in child if j.startswith("build:")) == [
        "build:api:linux-amd64",
        "build:api:linux-arm64",
        "build:cli:linux-amd64",  # image.yaml: amd64 only
        "build:worker:linux-amd64",
        "build:worker:linux-arm64",
    ]
    assert child["merge:base"]["needs"] == []
    assert child["merge:base"]["script"] == [
        "mkdir -p digests",
        "builder merge --only base --digests-dir digests --metadata-file builder-metadata.json",
    ]
    assert child["build:api:linux-arm64"]["needs"] == [{"job": "merge:base", "artifacts": False}]
    assert child["merge:cli"]["needs"] == [{"job": "build:cli:linux-amd64", "artifacts": True}]


def test_an_empty_plan_still_gives_gitlab_a_job() -> None:
    assert compute_child_pipeline(make_plan()) == {
        "stages": ["build"],
        "builder:nothing-to-build": {
            "stage": "build",
            "script": ["echo 'builder: no image to build'"],
        },
    }


def test_child_pipelines_are_valid_for_gitlab(tmp_path: Path) -> None:
    """GitLab's own CI schema (vendored in check-jsonschema), for every shape."""
    plans = {
        "chain": make_plan("base-images/base/Dockerfile", "images/cli/Dockerfile"),
        "empty": make_plan(),
    }
    tag_only = plans["chain"]
    plans["tag-only"] = replace(
        tag_only, images=tuple(replace(b, existing=DIGEST) for b in tag_only.images)
    )
    paths = []
    for name, plan in plans.items():
        path = tmp_path / f"{name}.yml"
        path.write_text(render_child_pipeline(plan), encoding="utf-8")
        paths.append(str(path))
    checker = Path(sys.executable).parent / "check-jsonschema"
    done = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.gitlab-ci", *paths],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# -- through the CLI -------------------------------------------------------------------------

CLI_TREE = {
    "builder.yaml": "registry: 127.0.0.1:5999\nnamespace: acme\n",
    "images/alpha/Dockerfile": "FROM scratch\nCOPY a.txt /\n",
    "images/alpha/a.txt": "a\n",
    "images/omega/Dockerfile": "FROM 127.0.0.1:5999/acme/alpha\nCOPY o.txt /\n",
    "images/omega/o.txt": "o\n",
}


@pytest.fixture
def cli_repo(make_repo: MakeRepo, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    repo = make_repo(CLI_TREE)
    commit(repo, {"images/alpha/a.txt": "a2\n"})
    work = tmp_path / "job"
    work.mkdir()
    monkeypatch.chdir(work)  # where a CI job runs builder: the reports land here
    return repo


@pytest.mark.parametrize("environ", [GITLAB, JENKINS], ids=["gitlab", "jenkins"])
def test_a_dry_run_in_gitlab_or_jenkins_leaves_both_reports(
    cli_repo: Path, environ: dict[str, str]
) -> None:
    result = invoke(
        "build",
        "--repo",
        cli_repo,
        "--dry-run",
        "--no-reconcile",
        "--metadata-file",
        "m.json",
        env=environ,
    )
    assert result.exit_code == 0, result.stderr
    cases = read_junit(Path("builder-junit.xml").read_text(encoding="utf-8"))["builder build"]
    assert {n: c["outcome"] for n, c in cases.items()} == {"alpha": "skipped", "omega": "skipped"}
    dotenv = read_dotenv(Path("builder.env").read_text(encoding="utf-8"))
    assert dotenv == {
        "BUILDER_BUILT": "[]",
        "BUILDER_FAILED": "[]",
        "BUILDER_TAGGED": "[]",
        "BUILDER_METADATA": "m.json",
    }


def test_outside_gitlab_and_jenkins_only_the_flags_write_reports(
    cli_repo: Path, tmp_path: Path
) -> None:
    result = invoke("build", "--repo", cli_repo, "--dry-run", env={"CI": ""})
    assert result.exit_code == 0, result.stderr
    assert list(Path().iterdir()) == []
    junit, dotenv = tmp_path / "reports" / "j.xml", tmp_path / "reports" / "o.env"
    junit.parent.mkdir()
    flags = ("--junit-file", junit, "--dotenv-file", dotenv)
    result = invoke("build", "--repo", cli_repo, "--dry-run", *flags, env={"CI": ""})
    assert result.exit_code == 0, result.stderr
    assert list(read_junit(junit.read_text(encoding="utf-8"))["builder build"]) == [
        "alpha",
        "omega",
    ]
    assert read_dotenv(dotenv.read_text(encoding="utf-8"))["BUILDER_METADATA"] == ""


@pytest.mark.parametrize("command", [("build", "--dry-run"), ("refresh", "--dry-run")])
@pytest.mark.parametrize(
    ("flag", "path", "message"),
    [
        ("--junit-file", ".", "error: cannot write the JUnit report .: is a directory\n"),
        (
            "--dotenv-file",
            "nowhere/builder.env",
            (
                "error: cannot write the dotenv report nowhere/builder.env: directory nowhere "
                "does not exist (create it first)\n"
            ),
        ),
    ],
)
def test_an_unwritable_report_stops_the_run_before_work(
    cli_repo: Path, command: tuple[str, ...], flag: str, path: str, message: str
) -> None:
    result = invoke(*command, "--repo", cli_repo, flag, path, env=GITLAB)
    assert (result.exit_code, result.stderr) == (2, message)


def test_plan_prints_the_child_pipeline(cli_repo: Path) -> None:
    result = invoke(
        "plan", "--repo", cli_repo, "--base", "HEAD~1", "--format", "gitlab-ci", env={"CI": ""}
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("# The fan-out child pipeline")
    assert yaml.safe_load(result.stdout) == expected_child({"alpha": (), "omega": ("alpha",)})
