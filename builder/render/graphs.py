"""Pictures of the image graph: mermaid and graphviz dot (pure)."""

from __future__ import annotations

from collections.abc import Mapping

from builder.graph import ImageGraph


def render_mermaid(graph: ImageGraph, highlight: Mapping[str, str] | None = None) -> str:
    """A mermaid flowchart; `highlight` maps image names to a CSS class to apply."""
    ids = {name: f"n{i}" for i, name in enumerate(graph.order)}
    lines = ["graph TD"]
    for name in graph.order:
        lines.append(f'  {ids[name]}["{name}"]')
    for parent, child in graph.edges():
        lines.append(f"  {ids[parent]} --> {ids[child]}")
    for name, css in sorted((highlight or {}).items()):
        if name in ids:
            lines.append(f"  class {ids[name]} {css}")
    return "\n".join(lines)


def render_dot(graph: ImageGraph) -> str:
    lines = ["digraph images {"]
    for name in graph.order:
        lines.append(f'  "{name}";')
    for parent, child in graph.edges():
        lines.append(f'  "{parent}" -> "{child}";')
    lines.append("}")
    return "\n".join(lines)
