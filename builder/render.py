"""Turning core values into text for people and JSON for machines (pure)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from builder.changes import Reason, printable
from builder.graph import ImageGraph, render_dot, render_mermaid
from builder.keys import key_tag
from builder.workspace import Selection

if TYPE_CHECKING:
    from builder.build import BuildReport
    from builder.reconcile import KeyReport


def render_table(headers: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def affected_json(selection: Selection) -> dict[str, Any]:
    rng = selection.range
    return {
        "base": rng.base,
        "head": rng.head,
        "base_label": rng.base_label,
        "head_label": rng.head_label,
        "affected": [
            {
                "name": image.name,
                "path": str(image.path),
                "reasons": [r.to_json() for r in image.reasons],
            }
            for image in selection.affected.images
        ],
        "removed": list(selection.affected.removed),
        "warnings": list(selection.warnings),
    }


def _summary(reasons: tuple[Reason, ...], most: int = 2) -> str:
    shown = "; ".join(r.render() for r in reasons[:most])
    return shown + (f"; +{len(reasons) - most} more" if len(reasons) > most else "")


def render_affected(selection: Selection, fmt: str, keys: KeyReport | None = None) -> str:
    if fmt == "names":
        return "\n".join(selection.affected.names)
    if fmt == "json":
        data = affected_json(selection)
        if keys is not None:
            data["keys"] = {
                name: {"key": key, "present": name in keys.present}
                for name, key in keys.keys.items()
            }
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
    """Every image with the rule that decided it: git's diff, a parent, or its content key."""
    affected = {i.name: i for i in selection.affected.images}
    rows = []
    for name in selection.repo.graph.order:
        image = affected.get(name)
        rules = [r.render() for r in image.reasons if r.kind != "key"] if image else []
        if keys is not None and name in keys.keys:
            state = "built before" if name in keys.present else "missing"
            rules.append(f"{key_tag(keys.keys[name])} {state}")
        rows.append((name, "yes" if image else "no", "; ".join(rules) or "no rule fired"))
    rng = selection.range
    header = f"{rng.base_label} .. {rng.head_label}" + (
        f"; reconciled with {keys.requests} registry requests in {keys.seconds:.2f}s"
        if keys is not None
        else "; not reconciled (git diff only)"
    )
    return header + "\n" + render_table(("IMAGE", "AFFECTED", "RULES"), rows)


def graph_json(graph: ImageGraph) -> dict[str, Any]:
    return {
        "nodes": [
            {
                "name": name,
                "path": str(graph.images[name].directory),
                "repository": graph.images[name].repository,
                "external_parents": list(graph.images[name].external_parents),
            }
            for name in graph.order
        ],
        "edges": [{"from": a, "to": b} for a, b in graph.edges()],
    }


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


def _clip(text: str, width: int = 90) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def render_build_report(report: BuildReport) -> str:
    rows = []
    for name, result in report.results.items():
        if result.status == "unchanged":
            continue
        tags = ", ".join(t.rsplit(":", 1)[1] for t in result.tags)
        detail = tags if result.status == "built" else result.reason
        rows.append((name, result.status, result.pinned or "-", _clip(detail or "-")))
    counts: dict[str, int] = {}
    for result in report.results.values():
        counts[result.status] = counts.get(result.status, 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    if not rows:
        return f"nothing to build ({summary or 'no images'})"
    table = render_table(("IMAGE", "STATUS", "PINNED", "TAGS / WHY"), rows)
    return f"{table}\n{summary}"
