"""The image dependency graph (pure). The only module that imports networkx, and only to
name a cycle: its 140 ms import was a seventh of the planning budget (benchmarks/), while
the orderings a build needs are a few lines of Kahn's algorithm."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from builder.errors import GraphError
from builder.model import Image, identity_index, named_image


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageGraph:
    """Images keyed by name, with edges parent -> child and a stable build order."""

    images: Mapping[str, Image]
    order: tuple[str, ...]  # topological; ties broken by name so plans are reproducible
    _children: Mapping[str, tuple[str, ...]] = field(compare=False, repr=False)

    def edges(self) -> tuple[tuple[str, str], ...]:
        return tuple(sorted((p, c) for p, children in self._children.items() for c in children))

    def children(self, name: str) -> tuple[str, ...]:
        return self._children.get(name, ())

    def closure(self, seeds: Iterable[str]) -> frozenset[str]:
        """The seeds and every transitive dependant."""
        result: set[str] = set()
        stack = [s for s in seeds if s in self.images]
        while stack:
            name = stack.pop()
            if name not in result:
                result.add(name)
                stack.extend(self.children(name))
        return frozenset(result)

    def ancestors(self, name: str) -> frozenset[str]:
        result: set[str] = set()
        stack = list(self.images[name].parents)
        while stack:
            parent = stack.pop()
            if parent not in result and parent in self.images:
                result.add(parent)
                stack.extend(self.images[parent].parents)
        return frozenset(result)

    def generations(self, names: Iterable[str]) -> tuple[tuple[str, ...], ...]:
        """`names` in waves: an image's in-set parents are all in earlier waves."""
        members = set(names)
        wave_of: dict[str, int] = {}
        for name in self.order:  # parents come first in order, so their waves are known
            if name in members:
                parents = [wave_of[p] for p in self.images[name].parents if p in wave_of]
                wave_of[name] = max(parents, default=-1) + 1
        waves: list[list[str]] = [[] for _ in range(max(wave_of.values(), default=-1) + 1)]
        for name, wave in wave_of.items():
            waves[wave].append(name)
        return tuple(tuple(sorted(wave)) for wave in waves)


def compute_graph(images: Iterable[Image]) -> ImageGraph:
    by_name = {image.name: image for image in images}
    children: dict[str, list[str]] = {name: [] for name in by_name}
    pending = {name: len(set(image.parents)) for name, image in by_name.items()}
    for name, image in by_name.items():
        for parent in set(image.parents):
            children[parent].append(name)
    # Kahn's algorithm, always taking the smallest ready name: one order for one graph.
    ready = [name for name, count in pending.items() if count == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        name = heapq.heappop(ready)
        order.append(name)
        for child in children[name]:
            pending[child] -= 1
            if pending[child] == 0:
                heapq.heappush(ready, child)
    if len(order) < len(by_name):
        _raise_cycle(by_name)
    return ImageGraph(
        images=by_name,
        order=tuple(order),
        _children={name: tuple(sorted(c)) for name, c in children.items()},
    )


def _raise_cycle(by_name: Mapping[str, Image]) -> None:
    import networkx as nx  # the error path only; see the module docstring

    digraph: nx.DiGraph = nx.DiGraph()
    digraph.add_nodes_from(sorted(by_name))
    for image in by_name.values():
        for parent in image.parents:
            digraph.add_edge(parent, image.name)
    cycle = nx.find_cycle(digraph)
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


def _edge_source(child: Image, parent: Image) -> tuple[PurePosixPath, int | None]:
    """Where `child` names `parent`: the Dockerfile line, else its image.yaml's depends_on."""
    for reference in child.references:
        if named_image(reference, identity_index([parent])) is not None:
            return child.config.dockerfile, reference.line
    if parent.name in child.config.depends_on and child.config.config_file is not None:
        return child.config.config_file, child.config.line_of("depends_on")
    return child.config.dockerfile, None
