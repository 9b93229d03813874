"""Mapping changed paths to the images they are build inputs of, plus dependants (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Literal

from builder.config import compile_watch, config_path
from builder.graph import ImageGraph
from builder.ignore import IgnoreMatcher
from builder.model import CONFIG_FILE, Image, identity_index, named_image

if TYPE_CHECKING:
    import pathspec

ReasonKind = Literal[
    "dockerfile",
    "config",
    "dockerignore",
    "context",
    "watch",
    "settings",
    "parent",
    "all",
    "key",
    "test",  # built under its key, but no passing test verdict: re-tested, not rebuilt
]


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class Reason:
    kind: ReasonKind
    path: str | None = None  # the changed file, for file reasons
    parent: str | None = None  # the affected parent, for "parent"
    note: str | None = None  # free text, for "all"
    # For "context": the instruction that made the file an input, and why it counts the
    # whole context when builder could not narrow it
    # (`images/api/Dockerfile:7 COPY src/ /app/src`).
    source: str | None = None

    def render(self) -> str:
        if self.kind == "parent":
            return f"parent {self.parent} is affected"
        if self.kind == "all":
            return self.note or "every image"
        if self.kind == "key":
            return f"content key not built: {self.note}"
        if self.kind == "test":
            return f"not tested: {self.note}"
        labels = {
            "dockerfile": "Dockerfile changed",
            "config": "image.yaml changed",
            "dockerignore": ".dockerignore changed",
            "context": "context file changed",
            "watch": "watched file changed",
            "settings": "resolved settings changed",
        }
        return f"{labels[self.kind]}: {printable(self.path or '')}"

    def explain(self) -> str:
        """render() with the instruction that read the file, for --explain."""
        text = self.render()
        return f"{text}, read by {printable(self.source)}" if self.source else text

    def to_json(self) -> dict[str, str]:
        data = {"kind": self.kind, "text": self.render()}
        for key in ("path", "parent", "note", "source"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        return data


def printable(path: str) -> str:
    """A path as one line of text: control characters and undecodable bytes escaped.

    git hands over any bytes; a newline in a file name would break a table row, and a
    byte that is not UTF-8 (kept by os.fsdecode as a lone surrogate) cannot be printed.
    """
    out = []
    for ch in path:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's stand-in for an undecodable byte
            out.append(f"\\x{code - 0xDC00:02x}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append(f"\\u{code:04x}")
        elif code < 0x20 or code == 0x7F:
            out.append(repr(ch)[1:-1])  # \n, \t, \x01
        else:
            out.append(ch)
    return "".join(out)


@dataclass(frozen=True, slots=True, kw_only=True)
class AffectedImage:
    name: str
    path: PurePosixPath
    reasons: tuple[Reason, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Affected:
    images: tuple[AffectedImage, ...]  # in build order
    removed: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(i.name for i in self.images))


class _Index:
    """Where a path can matter: exact files, contexts by directory, watch globs."""

    def __init__(self, graph: ImageGraph, same_config: frozenset[str] = frozenset()) -> None:
        # Images whose image.yaml changed around them: an edit to another entry of a list,
        # a comment, an order. Their definition is what it was, so the change is not theirs.
        self.same_config = same_config
        self.exact: dict[str, list[tuple[str, ReasonKind]]] = {}
        self.contexts: dict[str, list[Image]] = {}
        self.watchers: list[tuple[str, pathspec.GitIgnoreSpec]] = []
        self._matchers: dict[str, IgnoreMatcher] = {}
        for image in graph.images.values():
            config = image.config
            self.exact.setdefault(str(config.dockerfile), []).append((image.name, "dockerfile"))
            # Present or not: adding or deleting image.yaml changes the build as editing does.
            config_file = config_path(config.directory)
            self.exact.setdefault(config_file, []).append((image.name, "config"))
            for ignore in config.ignore_files:
                self.exact.setdefault(ignore, []).append((image.name, "dockerignore"))
            for path, target in image.links:
                kind: ReasonKind = (
                    "dockerfile" if path == str(config.dockerfile) else "dockerignore"
                )
                self.exact.setdefault(target, []).append((image.name, kind))
            self.contexts.setdefault(str(config.context), []).append(image)
            if config.watch:
                self.watchers.append((image.name, compile_watch(config.watch)))

    def matcher(self, image: Image) -> IgnoreMatcher:
        matcher = self._matchers.get(image.name)
        if matcher is None:
            matcher = self._matchers[image.name] = IgnoreMatcher.from_text(image.ignore_text)
        return matcher

    def hits(self, path: str) -> Iterable[tuple[str, Reason]]:
        exact = [
            (name, kind)
            for name, kind in self.exact.get(path, ())
            if kind != "config" or name not in self.same_config
        ]
        for name, kind in exact:
            yield name, Reason(kind=kind, path=path)
        named = {name for name, _ in exact}
        directory = path
        while True:
            directory = directory.rpartition("/")[0] or "."
            for image in self.contexts.get(directory, ()):
                relative = path if directory == "." else path[len(directory) + 1 :]
                if image.name in named or self.matcher(image).excludes(relative):
                    continue
                if image.inputs.includes(relative):  # the build transfers it
                    read = image.inputs.source(relative)
                    source = read.describe() if read is not None else None
                    yield image.name, Reason(kind="context", path=path, source=source)
            if directory == ".":
                break
        for name, spec in self.watchers:
            if spec.match_file(path):
                yield name, Reason(kind="watch", path=path)


def compute_affected(
    graph: ImageGraph,
    paths: Iterable[str],
    *,
    base_graph: ImageGraph | None = None,
    settings_changed: bool = False,
) -> Affected:
    """The images `paths` touch, then every transitive dependant, in build order.

    `base_graph` is the graph at the base revision when it was loaded (a config or image
    definition changed): it names removed images, tells which images an image.yaml change
    leaves as they were and, when builder.yaml changed (`settings_changed`), the images
    whose resolved definition differs.
    """
    same_config: frozenset[str] = frozenset()
    if base_graph is not None:
        before = base_graph.images
        same_config = frozenset(
            name
            for name, image in graph.images.items()
            if name in before and before[name].config == image.config
        )
    index = _Index(graph, same_config)
    direct: dict[str, set[Reason]] = {}
    for path in paths:
        for name, reason in index.hits(path):
            direct.setdefault(name, set()).add(reason)
    removed: tuple[str, ...] = ()
    if base_graph is not None:
        removed = tuple(sorted(set(base_graph.images) - set(graph.images)))
        if settings_changed:
            before = {name: _definition(image) for name, image in base_graph.images.items()}
            for name, image in graph.images.items():
                if before.get(name) != _definition(image):
                    direct.setdefault(name, set()).add(
                        Reason(kind="settings", path=str(CONFIG_FILE))
                    )
    return _close(graph, direct, removed)


def orphan_warnings(base_graph: ImageGraph, graph: ImageGraph, removed: Iterable[str]) -> list[str]:
    """Images that still name an image this change removed: they now build on whatever
    the registry last held under that name, which nothing will rebuild again."""
    # By repository and tag: the images left may still publish other tags of a repository.
    gone = identity_index(base_graph.images[n] for n in removed if n in base_graph.images)
    if not gone:
        return []
    here = identity_index(graph.images.values())
    warnings = []
    for name in graph.order:
        for reference in graph.images[name].references:
            was = named_image(reference, gone)
            if was is not None and named_image(reference, here) is None:
                warnings.append(
                    f"{name} still uses {reference.text}, but image {was} "
                    "was removed from the repo: it builds on the last pushed one"
                )
    return list(dict.fromkeys(warnings))


def _definition(image: Image) -> Image:
    """An image as builder.yaml can change it: of its build args, only the declared count.

    `config.build_args` holds every build arg builder.yaml sets; `image.build_args` only
    those the Dockerfile declares, which are the only ones that reach the build.
    """
    return replace(image, config=replace(image.config, build_args=()))


def compute_all(graph: ImageGraph, note: str) -> Affected:
    reason = Reason(kind="all", note=note)
    return _close(graph, {name: {reason} for name in graph.images}, ())


def _close(graph: ImageGraph, direct: dict[str, set[Reason]], removed: tuple[str, ...]) -> Affected:
    reasons: dict[str, list[Reason]] = {n: sorted(r) for n, r in direct.items()}
    for name in graph.order:
        for parent in graph.images[name].parents:
            if parent in reasons:
                reasons.setdefault(name, []).append(Reason(kind="parent", parent=parent))
    images = tuple(
        AffectedImage(name=n, path=graph.images[n].directory, reasons=tuple(reasons[n]))
        for n in graph.order
        if n in reasons
    )
    return Affected(images=images, removed=removed)


def _context_members(graph: ImageGraph, path: str) -> Iterable[tuple[Image, str]]:
    """Each image whose build context holds `path`, with the path relative to it."""
    for image in graph.images.values():
        context = str(image.config.context)
        if context == ".":
            yield image, path
        elif path.startswith(context + "/"):
            yield image, path[len(context) + 1 :]


def stray_directory_matters(graph: ImageGraph, directory: str) -> bool:
    """Whether a build could send something from an ignored `directory` (so it is worth a
    walk): some image's context holds it and its .dockerignore keeps part of it."""
    return any(
        not IgnoreMatcher.from_text(image.ignore_text).excludes_directory(relative)
        for image, relative in _context_members(graph, directory)
    )


def compute_strays(graph: ImageGraph, paths: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """image -> the files among `paths` (present on disk, ignored by git) that its build
    would send: in its context, kept by its .dockerignore and read by its Dockerfile."""
    strays: dict[str, list[str]] = {}
    matchers: dict[str, IgnoreMatcher] = {}
    for path in paths:
        for image, relative in _context_members(graph, path):
            matcher = matchers.get(image.name)
            if matcher is None:
                matcher = matchers[image.name] = IgnoreMatcher.from_text(image.ignore_text)
            if not matcher.excludes(relative) and image.inputs.includes(relative):
                strays.setdefault(image.name, []).append(path)
    return {name: tuple(sorted(found)) for name, found in sorted(strays.items())}


def describe_strays(strays: Mapping[str, tuple[str, ...]], *, most: int = 3) -> list[str]:
    """One line per image: which files a build from this disk would send that no commit has."""
    lines = []
    for name, paths in strays.items():
        shown = ", ".join(printable(p) for p in paths[:most])
        more = f" and {len(paths) - most} more" if len(paths) > most else ""
        lines.append(
            f"{name}: {len(paths)} file(s) git ignores are in its build context and a build "
            f"from this checkout sends them: {shown}{more}"
        )
    return lines
