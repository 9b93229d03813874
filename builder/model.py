"""The domain values every layer shares: settings, images and the repo they form (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from builder.dockerfiles import ImageReference
from builder.inputs import Inputs

DEFAULT_PLATFORMS = ("linux/amd64", "linux/arm64")
CONFIG_FILE = PurePosixPath("builder.yaml")
IMAGE_FILE = "image.yaml"
# A build arg builder always supplies: `<registry>/<namespace>`, so a Dockerfile can write
# `ARG BUILDER_PREFIX=docker.io/acme` + `FROM ${BUILDER_PREFIX}/etl-base` and stay buildable
# by hand while builder points it at whichever registry this run pushes to.
PREFIX_ARG = "BUILDER_PREFIX"

BuildArgs = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """builder.yaml, with defaults."""

    registry: str = "docker.io"
    namespace: str | None = None
    image_roots: tuple[str, ...] = ("base-images", "images")
    platforms: tuple[str, ...] = DEFAULT_PLATFORMS
    default_branch: str = "main"
    build_args: BuildArgs = ()
    cache: bool = True
    builder: str | None = None  # the buildx builder to build on; None: buildx's current one
    # builder.yaml's `consumers:` as written, and its lines (the key's, then each item's):
    # only `builder pin` reads it, through builder.consumers.config.
    consumers: object = field(default=None, compare=False, repr=False)
    consumers_lines: tuple[int, ...] = field(default=(), compare=False, repr=False)
    # builder.yaml's line for each root it lists; empty when the roots are the defaults.
    root_lines: tuple[tuple[str, int], ...] = field(default=(), compare=False)

    @property
    def prefix(self) -> str:
        return "/".join(p for p in (self.registry, self.namespace) if p)


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageConfig:
    """One image's resolved configuration, before its Dockerfile is read."""

    name: str
    directory: PurePosixPath
    dockerfile: PurePosixPath
    context: PurePosixPath
    config_file: PurePosixPath | None = None
    build_args: BuildArgs = ()
    platforms: tuple[str, ...] = DEFAULT_PLATFORMS
    target: str | None = None
    watch: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()
    # image.yaml's line for each key it sets, so later checks can point at the value.
    lines: tuple[tuple[str, int], ...] = field(default=(), compare=False)

    def line_of(self, key: str) -> int | None:
        return dict(self.lines).get(key)

    @property
    def ignore_files(self) -> tuple[PurePosixPath, PurePosixPath]:
        """Per-Dockerfile ignore file first: BuildKit prefers it to the context's."""
        per_dockerfile = self.dockerfile.with_name(self.dockerfile.name + ".dockerignore")
        return per_dockerfile, self.context / ".dockerignore"


@dataclass(frozen=True, slots=True, kw_only=True)
class Image:
    """An image of the repo with its Dockerfile read and its parents resolved."""

    config: ImageConfig
    repository: str  # normalised push target, e.g. docker.io/acme/etl-base
    # Other repositories that name this image: where builder.yaml says it lives when the
    # command line or environment pushes elsewhere, so `FROM acme/base` keeps its edge.
    aliases: tuple[str, ...] = ()
    build_args: BuildArgs  # only the ones the Dockerfile declares, BUILDER_PREFIX included
    references: tuple[ImageReference, ...]
    parents: tuple[str, ...]  # in-repo parents, sorted: Dockerfile references + depends_on
    external_parents: tuple[str, ...]  # references outside the repo, as written
    base: ImageReference | None = None  # what the built stage starts from (None: scratch)
    ignore_file: PurePosixPath | None  # the .dockerignore in force
    ignore_text: str = field(default="", repr=False)
    # The Dockerfile or .dockerignore when read through a symbolic link: (path, the file it
    # names). buildx reads through the link, so a change to that file is a change to these.
    links: tuple[tuple[str, str], ...] = ()
    # What the build reads from its context (COPY/ADD and bind-mount sources), before the
    # .dockerignore: a context file is an input when both let it through.
    inputs: Inputs = Inputs()  # noqa: RUF009 - a frozen value, safe to share

    @property
    def identities(self) -> tuple[str, ...]:
        """Every repository a reference may use to name this image."""
        return (self.repository, *self.aliases)

    def input_path(self, path: str) -> str:
        """The file whose content `path` (the Dockerfile or .dockerignore) really is."""
        return dict(self.links).get(path, path)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def directory(self) -> PurePosixPath:
        return self.config.directory


def identity_index(images: Iterable[Image]) -> dict[str, str]:
    """Every repository that names an in-repo image -> that image's name."""
    index: dict[str, str] = {}
    for image in images:
        for identity in image.identities:
            index.setdefault(identity, image.name)
    return index


def named_image(reference: ImageReference, index: Mapping[str, str]) -> str | None:
    """The in-repo image a Dockerfile reference builds on, if any. A reference pinned by
    digest means that exact image, never this run's build of it: it is no edge."""
    if reference.digest is not None:
        return None
    return index.get(reference.repository)
