"""Text for people: tables, the graph as a tree, the explain view, build reports (pure)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from builder.changes import Reason, printable
from builder.ci import CIFacts
from builder.doctor import Finding
from builder.graph import ImageGraph
from builder.keys import key_tag, verdict_tag
from builder.model import TestSpec
from builder.render import clip, render_table
from builder.render.data import affected_json, affected_keys_json, graph_json
from builder.render.graphs import render_dot, render_mermaid
from builder.reports import BuildReport, ImageResult, KeyReport, Selection, TestResult

if TYPE_CHECKING:
    from builder.bake import Outputs
    from builder.commands.verify import VerifyReport
    from builder.plan import BuildPlan
    from builder.promotion import PromoteReport


def _summary(reasons: tuple[Reason, ...], most: int = 2) -> str:
    shown = "; ".join(r.render() for r in reasons[:most])
    return shown + (f"; +{len(reasons) - most} more" if len(reasons) > most else "")


def render_affected(selection: Selection, fmt: str, keys: KeyReport | None = None) -> str:
    if fmt == "names":
        return "\n".join(selection.affected.names)
    if fmt == "json":
        data = affected_json(selection)
        if keys is not None:
            data["keys"] = affected_keys_json(keys)
        return json.dumps(data, indent=2)
    rng = selection.range
    images = selection.affected.images
    header = (
        f"{len(images)} of {len(selection.repo.graph.images)} images affected "
        f"({rng.base_label} .. {rng.head_label})"
    )
    if not images and not selection.affected.removed:
        return header
    rows = [(i.name, printable(str(i.path)), _summary(i.reasons)) for i in images]
    rows += [(name, "-", "removed: will not be built") for name in selection.affected.removed]
    return header + "\n" + render_table(("IMAGE", "PATH", "WHY"), rows)


def render_explain(selection: Selection, keys: KeyReport | None) -> str:
    """Every image with the rule that decided it (git's diff, with the instruction that
    read each changed file; a parent; or its content key) and what its build reads from
    its context, or which instruction made builder count all of it."""
    affected = {i.name: i for i in selection.affected.images}
    graph = selection.repo.graph
    rows = []
    for name in graph.order:
        image = affected.get(name)
        rules = (
            [r.explain() for r in image.reasons if r.kind not in ("key", "test")] if image else []
        )
        if keys is not None and name in keys.keys:
            state = "built before" if name in keys.present else "missing"
            rules.append(f"{key_tag(keys.keys[name])} {state}")
            if name in keys.untested:
                verdict = verdict_tag(keys.keys[name], keys.test_hashes[name])
                rules.append(f"{verdict} missing: re-tested, not rebuilt")
        inputs = printable(graph.images[name].inputs.describe())
        rows.append((name, "yes" if image else "no", "; ".join(rules) or "no rule fired", inputs))
    rng = selection.range
    header = f"{rng.base_label} .. {rng.head_label}" + (
        f"; reconciled with {keys.requests} registry requests in {keys.seconds:.2f}s"
        if keys is not None
        else "; not reconciled (git diff only)"
    )
    return header + "\n" + render_table(("IMAGE", "AFFECTED", "RULES", "CONTEXT INPUTS"), rows)


def render_tree(graph: ImageGraph) -> str:
    lines: list[str] = []

    def walk(name: str, prefix: str, last: bool, depth: int) -> None:
        image = graph.images[name]
        connector = "" if depth == 0 else ("└── " if last else "├── ")
        extra = ""
        if depth == 0 and image.external_parents:
            extra = f"  (from {', '.join(image.external_parents)})"
        elif depth > 0 and len(image.parents) > 1:
            extra = f"  (also needs {', '.join(p for p in image.parents if p != parent_of[-1])})"
        lines.append(f"{prefix}{connector}{name}{extra}")
        children = graph.children(name)
        child_prefix = prefix if depth == 0 else prefix + ("    " if last else "│   ")
        for i, child in enumerate(children):
            parent_of.append(name)
            walk(child, child_prefix, i == len(children) - 1, depth + 1)
            parent_of.pop()

    parent_of: list[str] = []
    for name in graph.order:
        if not graph.images[name].parents:
            walk(name, "", True, 0)
    return "\n".join(lines)


def render_graph(graph: ImageGraph, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(graph_json(graph), indent=2)
    if fmt == "mermaid":
        return render_mermaid(graph)
    if fmt == "dot":
        return render_dot(graph)
    return render_tree(graph)


def short_platform(platform: str) -> str:
    """`linux/arm64` -> `arm64`, `linux/arm/v7` -> `arm/v7`: the table's narrow form."""
    return platform.removeprefix("linux/")


def render_tests(tests: tuple[TestResult, ...]) -> str:
    """Per platform, the verdict and how long it took: `amd64 passed 1.2s, arm64 FAILED`."""
    words = {"passed": "passed", "failed": "FAILED", "timed out": "TIMED OUT", "not run": "not run"}
    return ", ".join(
        f"{short_platform(t.platform)} {words[t.verdict]}"
        + (f" {t.seconds:.1f}s" if t.verdict != "not run" else "")
        for t in tests
    )


def render_build_report(report: BuildReport) -> str:
    rows = []
    tested = any(r.tests for r in report.results.values())
    for name, result in report.results.items():
        if result.status == "unchanged" and not result.tests:
            continue
        tags = ", ".join(t.rsplit(":", 1)[1] for t in result.tags)
        detail = tags if result.status == "built" else result.reason
        status = "failed (test)" if result.test_failed else result.status
        row = (name, status, result.pinned or "-", clip(detail or "-"))
        rows.append((*row, render_tests(result.tests) or "-") if tested else row)
    counts: dict[str, int] = {}
    for result in report.results.values():
        counts[result.status] = counts.get(result.status, 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    if not rows:
        return f"nothing to build ({summary or 'no images'})"
    headers = ("IMAGE", "STATUS", "PINNED", "TAGS / WHY")
    table = render_table((*headers, "TESTS") if tested else headers, rows)
    return f"{table}\n{summary}"


def render_test_report(results: Mapping[str, ImageResult]) -> str:
    """`builder test`: each image, what was tested, and each platform's verdict."""
    if not results:
        return "no image has a test to run (image.yaml test:, builder.yaml smoke_test:)"
    rows = [
        (
            name,
            "failed" if r.status == "failed" else "passed",
            r.pinned or "-",
            render_tests(r.tests) or "-",
            clip(r.reason if r.status == "failed" else r.reason.removeprefix("tested ")),
        )
        for name, r in results.items()
    ]
    return render_table(("IMAGE", "RESULT", "TESTED", "TESTS", "FROM / WHY"), rows)


def render_test_line(name: str, test: TestResult) -> str:
    """One platform's test result, for the log as it comes."""
    line = f"tested {name} on {test.platform}: {test.verdict}"
    if test.verdict != "not run":
        line += f" in {test.seconds:.1f}s"
    return f"{line}: {test.detail}" if test.detail else line


def render_plan_table(plan: BuildPlan) -> str:
    rows = [
        (str(i), b.name, ", ".join(b.platforms), ", ".join(b.requires) or "-")
        for i, wave in enumerate(plan.waves, 1)
        for b in (plan.get(n) for n in wave)
    ]
    return render_table(("WAVE", "IMAGE", "PLATFORMS", "AFTER"), rows)


def render_dry_run(report: BuildReport, root: Path, outputs: Outputs) -> str:
    """The waves, tags and the bake definition of each image, as the run would bake it."""
    plan = report.plan
    lines = [f"plan: {len(plan.images)} image(s), push={'yes' if plan.push else 'no'}"]
    for number, wave in enumerate(plan.waves, 1):
        lines.append(f"wave {number}: {', '.join(wave)}")
    for build in plan.images:
        lines.append(f"  {build.name}: {', '.join(build.platforms)}")
        if build.existing is not None and plan.push:
            if build.test is not None and not build.tested:
                lines.append(f"    already pushed as {build.existing}: tested, then tagged")
            else:
                lines.append(f"    already pushed as {build.existing}: tags only")
        lines.extend(
            f"    tag {tag}" + (" (once the tests pass)" if tag in build.held else "")
            for tag in build.tags
        )
        if build.test is not None:
            lines.extend(_test_plan_lines(build.test, build.test_platforms))
        if build.verdict is not None:
            lines.append(f"    tag {build.verdict} (records that the tests passed)")
    lines.append("bake definitions (one bake per image, as each starts):")
    from builder.bake import compute_dry_run  # the bake layer: only --dry-run needs it

    definitions = compute_dry_run(plan, root=root, outputs=outputs)
    lines.append(json.dumps(definitions, indent=2))
    return "\n".join(lines) + "\n"


def _test_plan_lines(test: TestSpec, platforms: tuple[str, ...]) -> list[str]:
    where = ", ".join(platforms)
    options = f"timeout {test.timeout}s, network {test.network}"
    if test.smoke is not None:
        return [f"    test on {where} ({options}): the default command + {' '.join(test.smoke)}"]
    return [f"    test on {where} ({options}):", *(f"      $ {c}" for c in test.commands)]


def render_result_lines(result: ImageResult, ci: CIFacts) -> list[str]:
    """An image's outcome for the log; in GitHub Actions its build log folds under it."""
    if result.status == "built":
        where = f" -> {result.pinned}" if result.pinned else ""
        headline = f"built {result.name} in {result.seconds:.1f}s{where}"
    elif result.status == "failed":
        headline = f"FAILED {result.name}: {result.reason}"
    elif result.status in ("tagged", "unchanged"):
        headline = f"{result.status} {result.name}: {result.reason}"
    else:
        headline = f"skipped {result.name}: {result.reason}"
    if result.tests and result.status != "failed":
        headline += f" (tests: {render_tests(result.tests)})"
    if ci.annotations and result.log:
        lines = [f"::group::{headline}", *result.log.splitlines(), "::endgroup::"]
        if result.status == "failed":
            lines.append(f"::error title=builder: {result.name} failed::{result.reason}")
        return lines
    lines = [headline]
    if result.status == "failed":
        lines.extend(f"  {result.name} | {line}" for line in result.log.splitlines()[-25:])
    return lines


def _short_digest(digest: str | None) -> str:
    return digest[: len("sha256:") + 12] if digest else "(none)"


def render_promote_report(report: PromoteReport) -> str:
    """One row per image of the set: what the target tag named, what it names now."""
    rows = []
    for result in report.results:
        if result.status in ("moved", "would move"):
            change = f"{_short_digest(result.previous)} -> {_short_digest(result.digest)}"
        elif result.status == "already there":
            change = _short_digest(result.digest)
        else:
            change = "-"
        detail = "" if result.status in ("moved", "already there") else result.reason
        rows.append((result.name, result.status, change, clip(detail or "-")))
    counts: dict[str, int] = {}
    for result in report.results:
        counts[result.status] = counts.get(result.status, 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in counts.items()) or "no images"
    head = f"{report.source} -> :{report.to}"
    if report.dry_run:
        summary = f"dry run, {head}: {summary}; nothing moved"
    elif any(r.status in ("missing", "incomplete") for r in report.results):
        summary = f"{head}: {summary}; nothing moved"
    else:
        summary = f"{head}: {summary}"
    table = render_table(("IMAGE", "STATUS", f":{report.to} WAS -> NOW", "WHY"), rows)
    return f"{table}\n{summary}"


def render_findings(findings: Sequence[Finding], graph: ImageGraph | None) -> str:
    """builder doctor's report: one line per finding, then a count."""
    lines = [f"{f.severity}: {f.render()}" for f in findings]
    errors = sum(1 for f in findings if f.severity == "error")
    warnings = len(findings) - errors
    images = f"{len(graph.images)} images, " if graph is not None else ""
    lines.append(f"{images}{errors} error(s), {warnings} warning(s)")
    return "\n".join(lines)


def render_verify(report: VerifyReport) -> str:
    """One line per image: what held, or what is missing."""
    source = report.source or "no repository address"
    lines = [f"verifying commit {report.commit} ({source}), signed by {report.expected.describe()}"]
    for verdict in report.verdicts:
        if verdict.ok:
            lines.append(f"ok      {verdict.name}: {', '.join(verdict.checked)}")
        else:
            lines.append(f"FAILED  {verdict.name}: {'; '.join(verdict.problems)}")
    return "\n".join(lines)
