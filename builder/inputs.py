"""What an image's build reads from its context, and which instruction made a file an input
(pure).

BuildKit transfers from the build context only the paths the Dockerfile reads: the
sources of COPY/ADD and of RUN --mount=type=bind in the stages the build runs
(`builder.dockerfiles.ContextRead`), as include patterns for the same walk the
.dockerignore drives (`builder.ignore.IncludeMatcher`). A file is an input when it passes
both. Whatever builder cannot resolve exactly counts the whole context instead: a read
with a `why`, an ONBUILD trigger of an in-repo parent (it runs in the child's context), a
source that is a symbolic link (BuildKit follows it, anywhere in the context), a pattern
BuildKit would refuse, an ONBUILD trigger in an external base's config (reconcile reads
those from the registry: `with_base_triggers`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from builder.dockerfiles import WHOLE_CONTEXT, ContextRead, DockerfileInfo, ImageReference
from builder.ignore import IncludeMatcher, literal_prefix, pattern_problem

if TYPE_CHECKING:
    from builder.graph import ImageGraph
    from builder.model import Image

NOT_COMPUTED = ContextRead(
    file="", line=0, path=WHOLE_CONTEXT, instruction="", why="inputs not computed"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Inputs:
    """An image's reads from its build context: none at all, some paths, or the whole
    context (a read of `.`, by `COPY . ...` or by a fallback)."""

    reads: tuple[ContextRead, ...] = (NOT_COMPUTED,)
    # The platforms read different paths: a platform the Dockerfile was not read for may
    # read others (see keys.compute_keys).
    platform_reads: bool = False
    # Submodules (context-relative) a read may reach into: the submodule's commit is what
    # git records for the files inside it.
    submodules: tuple[str, ...] = ()
    # The read that makes the whole context an input, if any (a fallback first): worked
    # out once, it is asked for every changed path.
    whole: ContextRead | None = field(init=False, default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        wholes = [r for r in self.reads if r.path == WHOLE_CONTEXT]
        whole = min(wholes, key=lambda r: r.why is None) if wholes else None
        object.__setattr__(self, "whole", whole)

    @property
    def patterns(self) -> tuple[str, ...]:
        """The include patterns, as BuildKit hands them to the context transfer."""
        return tuple(sorted({r.path for r in self.reads}))

    def includes(self, path: str) -> bool:
        """Whether the build transfers this context-relative file (.dockerignore aside)."""
        if self.whole is not None:
            return True
        if not self.reads:
            return False
        return path in self.submodules or _matcher(self.patterns).includes(path)

    def included(self, paths: Sequence[str], *, ordered: bool = False) -> list[str]:
        """The files among `paths` (context-relative) the build transfers, in order."""
        if self.whole is not None:
            return list(paths)
        if not self.reads:
            return []
        found = _matcher(self.patterns).included(paths, ordered=ordered)
        if self.submodules:
            wanted = set(found) | set(self.submodules)
            found = [p for p in paths if p in wanted]
        return found

    def source(self, path: str) -> ContextRead | None:
        """The read that makes `path` an input: a whole-context one, else the first whose
        own pattern lets it through; None when the build does not read it."""
        whole = self.whole
        if whole is not None:
            return whole
        for read in self.reads:
            if _matcher((read.path,)).includes(path):
                return read
            if path in self.submodules and _may_hold(path, read.path):
                return read
        return None

    def describe(self) -> str:
        """One line for --explain: what the build reads from its context."""
        whole = self.whole
        if whole is not None:
            return f"whole context: {whole.describe()}"
        if not self.reads:
            return "reads nothing from its context"
        return "reads " + ", ".join(self.patterns)


@functools.lru_cache(maxsize=4096)
def _matcher(patterns: tuple[str, ...]) -> IncludeMatcher:
    return IncludeMatcher(patterns)


# Many images read the same few names (`src`, `requirements.txt`): each is checked once.
_pattern_problem = functools.lru_cache(maxsize=4096)(pattern_problem)


def compute_inputs(info: DockerfileInfo) -> Inputs:
    """An image's inputs from its parsed Dockerfile: a pattern BuildKit would refuse (the
    build fails on it) counts the whole context."""
    reads = []
    for read in info.reads:
        problem = None
        if read.why is None and read.path != WHOLE_CONTEXT:
            problem = _pattern_problem(read.path)
        if problem is None:
            reads.append(read)
        else:
            why = f"{read.path!r} is no include pattern BuildKit takes: {problem}"
            reads.append(replace(read, path=WHOLE_CONTEXT, why=why))
    return Inputs(reads=tuple(reads), platform_reads=info.platform_reads)


def with_fallback(inputs: Inputs, read: ContextRead) -> Inputs:
    """The inputs with one more read that counts the whole context."""
    return replace(inputs, reads=(*inputs.reads, replace(read, path=WHOLE_CONTEXT)))


def trigger_read(dockerfile: str, onbuild: tuple[int, str], parent: str) -> ContextRead:
    """The read an in-repo parent's ONBUILD makes in its children's builds."""
    line, text = onbuild
    return ContextRead(
        file=dockerfile,
        line=line,
        path=WHOLE_CONTEXT,
        instruction=text,
        why=f"the trigger of in-repo parent {parent} runs in this image's context",
    )


# -- symbolic links and submodules on the way to a read --------------------------------------
# fsutil's FollowLinks resolves a link met on a FollowPath (each literal component, and the
# entries a first wildcard component matches) and includes what it names: anywhere in the
# context. builder counts the whole context instead. A submodule is one entry in git but a
# folder of files in a build: a read inside one depends on its commit.


_WILDCARD = re.compile(r"[*?\[\\]")


Way = tuple[ContextRead, tuple[str, ...], str | None]


def read_ways(context: str, inputs: Inputs) -> list[Way]:
    """Where a symbolic link would change what each read reaches: the repo paths on its way
    (its literal components) and the directory whose entries its first wildcard component
    matches (`.`: the repo root). Nothing for inputs that count the whole context."""
    if inputs.whole is not None:
        return []
    prefix = "" if context == "." else context + "/"
    ways = []
    for read in inputs.reads:
        paths = []
        directory = None
        current = prefix
        for component in read.path.split("/"):
            if _WILDCARD.search(component):
                directory = current.rstrip("/") or "."
                break
            current += component
            paths.append(current)
            current += "/"
        ways.append((read, tuple(paths), directory))
    return ways


def with_links(
    inputs: Inputs, ways: Sequence[Way], links: frozenset[str], linked_directories: frozenset[str]
) -> Inputs:
    """The inputs, with the whole context counted when a read meets a symbolic link
    (`links`: links among the ways' paths; `linked_directories`: the ways' directories
    that hold a link)."""
    for read, paths, directory in ways:
        link = next((p for p in paths if p in links), None)
        if link is not None:
            why = f"{link} is a symbolic link, which BuildKit follows"
            return with_fallback(inputs, replace(read, why=why))
        if directory is not None and directory in linked_directories:
            why = f"{directory} holds a symbolic link, which BuildKit would follow"
            return with_fallback(inputs, replace(read, why=why))
    return inputs


def parse_gitmodules(text: str) -> tuple[str, ...]:
    """The `path = ...` of each submodule in a .gitmodules (git config syntax, simply read)."""
    found = []
    for raw in text.splitlines():
        key, eq, value = raw.strip().partition("=")
        if eq and key.strip().lower() == "path":
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            found.append(value.strip("/"))
    return tuple(p for p in found if p)


def _may_hold(directory: str, pattern: str) -> bool:
    """Whether a read's pattern may match a file inside `directory` (read generously)."""
    if any(c in pattern for c in "|^{}"):
        return True
    literal = literal_prefix(pattern)
    if literal == pattern:
        return pattern.startswith(directory + "/")
    return literal.startswith(directory + "/") or (directory + "/").startswith(literal)


def with_submodules(context: str, inputs: Inputs, submodules: Iterable[str]) -> Inputs:
    """The inputs with the submodules (repo paths) a read may reach inside of."""
    if inputs.whole is not None or not inputs.reads:
        return inputs
    prefix = "" if context == "." else context + "/"
    inside = [s[len(prefix) :] for s in submodules if s.startswith(prefix)]
    reached = tuple(sorted(s for s in inside if any(_may_hold(s, r.path) for r in inputs.reads)))
    return replace(inputs, submodules=reached) if reached else inputs


def with_parent_triggers(
    images: Sequence[Image], triggers: Mapping[str, ContextRead]
) -> tuple[Image, ...]:
    """Each image built FROM an in-repo image with an ONBUILD (`triggers`: image name ->
    its trigger's read) counts its whole context: the trigger runs in its build."""
    if not triggers:
        return tuple(images)
    from builder.model import identity_index, named_image

    index = identity_index(images)
    out = []
    for image in images:
        parents = [named_image(r, index) for r in built_from(image)]
        trigger = next((triggers[p] for p in parents if p is not None and p in triggers), None)
        if trigger is None:
            out.append(image)
        else:
            out.append(replace(image, inputs=with_fallback(image.inputs, trigger)))
    return tuple(out)


def built_from(image: Image) -> tuple[ImageReference, ...]:
    """The images the stages its build runs start FROM: whose ONBUILD triggers run in it."""
    return tuple(r for r in image.references if r.kind == "from")


def with_base_triggers(graph: ImageGraph, triggered: frozenset[str]) -> ImageGraph:
    """The graph with every image built FROM an external base whose config carries ONBUILD
    triggers (`triggered`: those references, as the Dockerfiles write them) counting its
    whole context: the triggers run in its build, in its context, unseen by its Dockerfile."""
    if not triggered:
        return graph
    images = {}
    for name, image in graph.images.items():
        base = next((r for r in built_from(image) if r.text in triggered), None)
        if base is None or image.inputs.whole is not None:
            images[name] = image
            continue
        read = ContextRead(
            file=str(image.config.dockerfile),
            line=base.line,
            path=WHOLE_CONTEXT,
            instruction=f"FROM {base.text}",
            why=f"the ONBUILD triggers in {base.text}'s config run in this image's context",
        )
        images[name] = replace(image, inputs=with_fallback(image.inputs, read))
    return replace(graph, images=images)
