"""JUnit XML: the test report GitLab and Jenkins show for a run (pure).

A report is suites of cases, built in two steps so more kinds of result can join:
`compute_suites(report)` turns a `BuildReport` into `Suite` values, `render_junit` writes
any suites as XML. Today there is one suite, `builder build`: one case per planned image
(built and tagged pass, skipped is `<skipped>`, failed is `<failure>` with the build log's
tail; an unchanged image is no case, and a dry run's planned image is skipped). Image
tests are a suite of their own, `builder test`: one case per image and platform tested
(`<image> on <platform>`; failed and timed out are `<failure>` with the command's output
tail, not run is `<skipped>`), named after the image.yaml that holds the test.

Written for two readers: GitLab (testsuites > testsuite > testcase; a case's output is the
text of its `<failure>` or `<skipped>`, so those always hold text, never attributes alone)
and Jenkins' `junit` step. Build logs carry ANSI colours and control bytes XML 1.0 forbids:
both are removed, or the whole report would fail to parse.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from builder.reports import BuildReport, ImageResult, TestResult

Outcome = Literal["passed", "failed", "skipped"]

BUILD_SUITE = "builder build"
BUILD_CLASS = "builder.build"
TEST_SUITE = "builder test"
TEST_CLASS = "builder.test"
# What a failed case shows of its build log: enough for the error and its context, small
# enough that a report of many failures stays quick to load in the merge request widget.
LOG_TAIL_LINES = 60
LOG_TAIL_CHARS = 16_000

_ANSI_RE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
# Characters XML 1.0 does not allow, even escaped (https://www.w3.org/TR/xml/#charsets).
_NOT_XML_RE = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True, slots=True, kw_only=True)
class Case:
    """One `<testcase>`."""

    name: str
    classname: str
    outcome: Outcome = "passed"
    seconds: float = 0.0
    file: str | None = None  # repo-relative: GitLab links the case to it
    message: str = ""  # one line: why it failed or was skipped
    detail: str = ""  # the failure's or skip's text (a log tail); the message when empty
    output: str = ""  # `<system-out>`: what a case that passed has to say
    failure_type: str = "BuildFailed"  # a `<failure>`'s type


@dataclass(frozen=True, slots=True, kw_only=True)
class Suite:
    """One `<testsuite>`."""

    name: str
    cases: tuple[Case, ...]


def compute_suites(report: BuildReport) -> tuple[Suite, ...]:
    """Every suite of a run's report: the builds, and the image tests when any ran."""
    suites = [Suite(name=BUILD_SUITE, cases=compute_build_cases(report))]
    tests = compute_test_cases(report)
    if tests:
        suites.append(Suite(name=TEST_SUITE, cases=tests))
    return tuple(suites)


def compute_test_cases(report: BuildReport) -> tuple[Case, ...]:
    """One case per image and platform this run tested, in build and platform order."""
    images = report.selection.repo.graph.images
    cases = []
    for name, result in report.results.items():
        image = images.get(name)
        config_file = image.config.config_file if image is not None else None
        for test in result.tests:
            cases.append(_test_case(name, test, str(config_file) if config_file else None))
    return tuple(cases)


def _test_case(name: str, test: TestResult, config_file: str | None) -> Case:
    base = Case(
        name=f"{name} on {test.platform}",
        classname=TEST_CLASS,
        seconds=test.seconds,
        file=config_file,
    )
    if test.verdict == "not run":
        return replace(base, outcome="skipped", message=test.detail or "not run")
    if test.verdict != "passed":
        reason = test.detail or test.verdict
        tail = log_tail(test.output)
        detail = f"{reason}\n\n{tail}" if tail else reason
        return replace(
            base,
            outcome="failed",
            message=_first_line(reason),
            detail=detail,
            failure_type="TestTimedOut" if test.verdict == "timed out" else "TestFailed",
        )
    return replace(base, output=f"passed: {test.commands} command(s)")


def compute_build_cases(report: BuildReport) -> tuple[Case, ...]:
    """One case per image the run planned, in build order."""
    images = report.selection.repo.graph.images
    cases = []
    for name, result in report.results.items():
        if result.status == "unchanged":
            continue
        image = images.get(name)
        dockerfile = str(image.config.dockerfile) if image is not None else None
        cases.append(_build_case(result, dockerfile))
    return tuple(cases)


def _build_case(result: ImageResult, dockerfile: str | None) -> Case:
    base = Case(name=result.name, classname=BUILD_CLASS, seconds=result.seconds, file=dockerfile)
    if result.status == "failed":
        reason = result.reason or "failed"
        tail = log_tail(result.log)
        detail = f"{reason}\n\n{tail}" if tail else reason
        return replace(base, outcome="failed", message=_first_line(reason), detail=detail)
    if result.status == "skipped":
        return replace(base, outcome="skipped", message=result.reason or "skipped")
    if result.status == "planned":
        return replace(base, outcome="skipped", message="dry run: planned, not built")
    lines = [f"{result.status}: {result.reason}"]
    lines += [f"platforms: {', '.join(result.platforms)}"] if result.platforms else []
    lines += [f"tag: {tag}" for tag in result.tags]
    lines += [f"pinned: {result.pinned}"] if result.pinned else []
    return replace(base, output="\n".join(lines))


def _first_line(text: str, width: int = 200) -> str:
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), text.strip())
    return line if len(line) <= width else line[: width - 1] + "…"


def log_tail(log: str, lines: int = LOG_TAIL_LINES, chars: int = LOG_TAIL_CHARS) -> str:
    """The last lines of a build log, at most `chars` long, without terminal colours."""
    tail = "\n".join(clean_text(log).rstrip().splitlines()[-lines:])
    return tail if len(tail) <= chars else "…" + tail[-(chars - 1) :]


def clean_text(text: str) -> str:
    """Text XML 1.0 can hold: no ANSI escapes, no control characters but tab and newlines."""
    return _NOT_XML_RE.sub("", _ANSI_RE.sub("", text))


def _seconds(value: float) -> str:
    return f"{max(value, 0.0):.3f}"


def _counts(cases: Sequence[Case]) -> dict[str, str]:
    return {
        "tests": str(len(cases)),
        "failures": str(sum(c.outcome == "failed" for c in cases)),
        "errors": "0",
        "skipped": str(sum(c.outcome == "skipped" for c in cases)),
        "time": _seconds(sum(c.seconds for c in cases)),
    }


def render_junit(suites: Sequence[Suite], *, name: str = "builder") -> str:
    """The suites as one JUnit XML document (UTF-8), `<testsuites>` at its root."""
    every = [case for suite in suites for case in suite.cases]
    root = ET.Element("testsuites", {"name": clean_text(name), **_counts(every)})
    for suite in suites:
        node = ET.SubElement(
            root, "testsuite", {"name": clean_text(suite.name), **_counts(suite.cases)}
        )
        for case in suite.cases:
            attributes = {
                "name": clean_text(case.name),
                "classname": clean_text(case.classname),
                "time": _seconds(case.seconds),
            }
            if case.file:
                attributes["file"] = clean_text(case.file)
            element = ET.SubElement(node, "testcase", attributes)
            if case.outcome != "passed":
                tag = "failure" if case.outcome == "failed" else "skipped"
                message = clean_text(case.message)
                child = ET.SubElement(element, tag, {"message": message})
                if case.outcome == "failed":
                    child.set("type", case.failure_type)
                child.text = clean_text(case.detail) or message or case.outcome
            if case.output:
                ET.SubElement(element, "system-out").text = clean_text(case.output)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def render_report_junit(report: BuildReport) -> str:
    return render_junit(compute_suites(report))
