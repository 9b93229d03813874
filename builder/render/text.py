"""Text for people: tables, the graph as a tree, the explain view, build reports (pure)."""

from __future__ import annotations

import json
from pathlib import Path

from builder.bake import Outputs, compute_dry_run
from builder.changes import Reason, printable
from builder.ci import CIFacts
from builder.graph import ImageGraph
from builder.keys import key_tag
from builder.plan import BuildPlan
from builder.promotion import PromoteReport
from builder.render import clip, render_table
from builder.render.data import affected_json, affected_keys_json, graph_json
from builder.render.graphs import render_dot, render_mermaid
from builder.reports import BuildReport, ImageResult, KeyReport, Selection


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
        rules = [r.explain() for r in image.reasons if r.kind != "key"] if image else []
        if keys is not None and name in keys.keys:
            state = "built before" if name in keys.present else "missing"
            rules.append(f"{key_tag(keys.keys[name])} {state}")
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


def render_build_report(report: BuildReport) -> str:
    rows = []
    for name, result in report.results.items():
        if result.status == "unchanged":
            continue
        tags = ", ".join(t.rsplit(":", 1)[1] for t in result.tags)
        detail = tags if result.status == "built" else result.reason
        rows.append((name, result.status, result.pinned or "-", clip(detail or "-")))
    counts: dict[str, int] = {}
    for result in report.results.values():
        counts[result.status] = counts.get(result.status, 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    if not rows:
        return f"nothing to build ({summary or 'no images'})"
    table = render_table(("IMAGE", "STATUS", "PINNED", "TAGS / WHY"), rows)
    return f"{table}\n{summary}"


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
            lines.append(f"    already pushed as {build.existing}: tags only")
        lines.extend(f"    tag {tag}" for tag in build.tags)
    lines.append("bake definitions (one bake per image, as each starts):")
    definitions = compute_dry_run(plan, root=root, outputs=outputs)
    lines.append(json.dumps(definitions, indent=2))
    return "\n".join(lines) + "\n"


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
