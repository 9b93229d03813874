"""The image dependency graph: the only module that imports networkx (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import networkx as nx

from builder.errors import GraphError
from builder.model import Image


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageGraph:
    """Images keyed by name, with edges parent -> child and a stable build order."""

    images: Mapping[str, Image]
    order: tuple[str, ...]  # topological; ties broken by name so plans are reproducible
    _digraph: nx.DiGraph = field(compare=False, repr=False)

    def edges(self) -> tuple[tuple[str, str], ...]:
        return tuple(sorted((str(a), str(b)) for a, b in self._digraph.edges))

    def children(self, name: str) -> tuple[str, ...]:
        return tuple(sorted(self._digraph.successors(name)))

    def closure(self, seeds: Iterable[str]) -> frozenset[str]:
        """The seeds and every transitive dependant."""
        result: set[str] = set()
        stack = [s for s in seeds if s in self.images]
        while stack:
            name = stack.pop()
            if name not in result:
                result.add(name)
                stack.extend(self._digraph.successors(name))
        return frozenset(result)

    def ancestors(self, name: str) -> frozenset[str]:
        return frozenset(nx.ancestors(self._digraph, name))

    def generations(self, names: Iterable[str]) -> tuple[tuple[str, ...], ...]:
        """`names` in waves: an image's in-set parents are all in earlier waves."""
        subgraph = self._digraph.subgraph(set(names))
        return tuple(tuple(sorted(wave)) for wave in nx.topological_generations(subgraph))


def compute_graph(images: Iterable[Image]) -> ImageGraph:
    by_name = {image.name: image for image in images}
    digraph: nx.DiGraph = nx.DiGraph()
    digraph.add_nodes_from(sorted(by_name))
    for image in by_name.values():
        for parent in image.parents:
            digraph.add_edge(parent, image.name)
    try:
        cycle = nx.find_cycle(digraph)
    except nx.NetworkXNoCycle:
        cycle = None
    if cycle:
        # Start at the smallest name so the same cycle always prints the same way.
        ring = [str(edge[0]) for edge in cycle]
        start = ring.index(min(ring))
        names = ring[start:] + ring[:start] + [min(ring)]
        file, line = _edge_source(by_name[names[0]], by_name[names[-2]])
        raise GraphError(
            "dependency cycle: " + " -> ".join(names),
            file=file,
            line=line,
            hint="an image cannot be built on itself, directly or through others",
        )
    order = tuple(str(n) for n in nx.lexicographical_topological_sort(digraph))
    return ImageGraph(images=by_name, order=order, _digraph=digraph)


def _edge_source(child: Image, parent: Image) -> tuple[PurePosixPath, int | None]:
    """Where `child` names `parent`: the Dockerfile line, else its image.yaml's depends_on."""
    for reference in child.references:
        if reference.repository == parent.repository:
            return child.config.dockerfile, reference.line
    if parent.name in child.config.depends_on and child.config.config_file is not None:
        return child.config.config_file, None
    return child.config.dockerfile, None


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
