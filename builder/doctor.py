"""Where builder.yaml and the Dockerfiles disagree: the checks `builder doctor` runs and
`graph` and `affected` print as warnings (pure).

A repo adopted as it is can be read without an error and still be read wrong: its
Dockerfiles name their own images under another registry, a Dockerfile lies outside every
image root, a parent resolves only through a build arg CI sets. Each finding names the
file and line; errors are what would make a build wrong, warnings what might.
"""

from __future__ import annotations

import difflib
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from builder.config import compile_watch
from builder.dockerfiles import ImageReference
from builder.graph import ImageGraph
from builder.ignore import IgnoreMatcher, literal_prefix
from builder.model import Image, identity_index, named_image

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class Finding:
    file: str
    line: int | None
    severity: Severity
    message: str
    hint: str | None = None

    def render(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        hint = f" ({self.hint})" if self.hint else ""
        return f"{where}: {self.message}{hint}"


def _registry_and_namespace(repository: str) -> tuple[str, str]:
    domain, _, path = repository.partition("/")
    namespace = path.rpartition("/")[0]
    return domain, namespace


def _unpublished_tag(reference: ImageReference, publishers: list[Image], file: str) -> Finding:
    """A tag of a repository several images share, none of them publishing it: say the
    nearest tag they do publish (often a typo of it)."""
    tags = sorted(image.config.identity_tag for image in publishers)
    wanted = reference.tag or "latest"
    nearest = difflib.get_close_matches(wanted, tags, n=1)
    shown = ", ".join(tags[:5]) + (f" and {len(tags) - 5} more" if len(tags) > 5 else "")
    written = reference.text  # the repository as the Dockerfile spells it
    if reference.tag is not None and written.endswith(f":{reference.tag}"):
        written = written[: -len(reference.tag) - 1]
    hint = (
        f"did you mean {written}:{nearest[0]}?"
        if nearest
        else "write one of the tags they publish to build on this repo's image, or pin a "
        "digest to mean that exact one"
    )
    return Finding(
        file=file,
        line=reference.line,
        severity="warning",
        message=f"{reference.text} names a repository {len(publishers)} images of this repo "
        f"publish, with a tag none of them publishes ({shown}): it is pulled from the "
        "registry, never rebuilt first",
        hint=hint,
    )


def check_references(graph: ImageGraph) -> list[Finding]:
    """References that look like the repo's own images but resolve to none of them."""
    index = identity_index(graph.images.values())
    repositories: dict[str, list[Image]] = {}
    for image in graph.images.values():
        repositories.setdefault(image.repository, []).append(image)
    by_last: dict[str, list[Image]] = {}
    for image in graph.images.values():
        by_last.setdefault(image.repository.rpartition("/")[2], []).append(image)
    findings = []
    for image in graph.images.values():
        dockerfile = str(image.config.dockerfile)
        for reference in image.references:
            if reference.unset_args and named_image(reference, index) is not None:
                unset = ", ".join(reference.unset_args)
                findings.append(
                    Finding(
                        file=dockerfile,
                        line=reference.line,
                        severity="warning",
                        message=f"{reference.text} resolves to an image of this repo only "
                        f"because {unset} has no value here",
                        hint="a CI that passes it builds on another image; give the ARG "
                        "a default or set it in build_args",
                    )
                )
            if reference.digest is not None or named_image(reference, index) is not None:
                continue
            publishers = repositories.get(reference.repository, [])
            if len(publishers) > 1:
                findings.append(_unpublished_tag(reference, publishers, dockerfile))
                continue
            own = publishers[0] if publishers else None
            if own is not None:
                findings.append(
                    Finding(
                        file=dockerfile,
                        line=reference.line,
                        severity="warning",
                        message=f"{reference.text} names {own.name}'s repository with a tag "
                        f"it does not publish (it publishes {own.config.identity_tag}): "
                        "it is pulled from the registry, never rebuilt first",
                        hint=f"write {own.repository}:{own.config.identity_tag} to build on "
                        "this repo's image, or pin a digest to mean that exact one",
                    )
                )
                continue
            last = reference.repository.rpartition("/")[2]
            candidates = by_last.get(last, [])
            if len(candidates) == 1:
                registry, namespace = _registry_and_namespace(reference.repository)
                target = candidates[0]
                hint = (
                    f"did you mean `registry: {registry}`, `namespace: {namespace}` in "
                    "builder.yaml?"
                    if target.config.repository is None
                    else f"did you mean `repository: {reference.repository}` in "
                    f"{target.config.directory}/image.yaml?"
                )
                findings.append(
                    Finding(
                        file=dockerfile,
                        line=reference.line,
                        severity="warning",
                        message=f"{reference.text} looks like in-repo image {target.name} "
                        f"({target.repository}) under another registry or namespace: no edge",
                        hint=hint,
                    )
                )
    return findings


def check_dockerfiles(
    graph: ImageGraph, dockerfiles: Iterable[str], not_images: Sequence[str] = ()
) -> list[Finding]:
    """Dockerfiles in the repo that no image builds: an image root probably misses them
    (unless builder.yaml's `not_images` says they are no image)."""
    built = {str(image.config.dockerfile) for image in graph.images.values()}
    built |= {target for image in graph.images.values() for _, target in image.links}
    if not_images:
        spec = compile_watch(not_images)
        dockerfiles = [path for path in dockerfiles if not spec.match_file(path)]
    return [
        Finding(
            file=path,
            line=None,
            severity="warning",
            message="no image builds this Dockerfile",
            hint="add its folder to image_roots (globs like debian/*/* name image folders), "
            "or name it in an image.yaml's 'dockerfile'",
        )
        for path in sorted(dockerfiles)
        if path not in built
    ]


def check_inputs(graph: ImageGraph, files: Sequence[str]) -> list[Finding]:
    """A context with no file to send, a watch glob that matches nothing."""
    findings = []
    ordered = sorted(files)
    for image in graph.images.values():
        config = image.config
        where = str(config.config_file or config.dockerfile)
        context = str(config.context)
        if context != ".":
            start = bisect_left(ordered, context + "/")
            members = [
                p[len(context) + 1 :]
                for p in ordered[start : bisect_left(ordered, context + "0", start)]
            ]
            if not members:
                findings.append(
                    Finding(
                        file=where,
                        line=config.line_of("context"),
                        severity="error",
                        message=f"the build context {context} holds no file",
                        hint="check 'context' in image.yaml",
                    )
                )
            elif not IgnoreMatcher.from_text(image.ignore_text).kept(members):
                findings.append(
                    Finding(
                        file=str(image.ignore_file or where),
                        line=None,
                        severity="warning",
                        message=f"the .dockerignore leaves nothing of {context} to send",
                    )
                )
        for glob in config.watch:
            spec = compile_watch([glob])
            prefix = literal_prefix(glob.removeprefix("!").lstrip("/"))
            anchored = "/" in glob.rstrip("/") and not prefix.startswith("*")
            start = bisect_left(ordered, prefix) if anchored else 0
            stop = bisect_left(ordered, prefix + "\U0010ffff") if anchored else len(ordered)
            if not any(spec.match_file(p) for p in ordered[start:stop]):
                findings.append(
                    Finding(
                        file=where,
                        line=config.line_of("watch"),
                        severity="warning",
                        message=f"watch glob {glob!r} matches no file",
                        hint="globs are gitignore-style and relative to the repository root",
                    )
                )
    return findings


def is_dockerfile(path: str) -> bool:
    """`Dockerfile`, `Dockerfile.gpu`, `Dockerfile-alpine`, `api.Dockerfile`: what people
    name Dockerfiles (a template among them is named too, and `not_images` quiets it)."""
    name = path.rpartition("/")[2]
    lowered = name.lower()
    return (
        name == "Dockerfile"
        or name.startswith(("Dockerfile.", "Dockerfile-", "Dockerfile_"))
        or lowered.endswith(".dockerfile")
    ) and not lowered.endswith(".dockerignore")


def check_all(
    graph: ImageGraph, files: Sequence[str], not_images: Sequence[str] = ()
) -> list[Finding]:
    """Every check, in file and line order."""
    findings = [
        *check_references(graph),
        *check_dockerfiles(graph, (f for f in files if is_dockerfile(f)), not_images),
        *check_inputs(graph, files),
    ]
    return sorted(findings, key=lambda f: (f.file, f.line or 0, f.message))
