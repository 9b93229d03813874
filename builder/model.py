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
# The SBOM generator `sbom: true` means: Docker's syft scanner, what `docker buildx build
# --sbom=true` runs (BuildKit's SBOM generator protocol, moby/buildkit
# docs/attestations/sbom-protocol.md).
DEFAULT_SBOM_GENERATOR = "docker/buildkit-syft-scanner"
PROVENANCE_MODES = ("max", "min", "off")

BuildArgs = tuple[tuple[str, str], ...]
DEFAULT_TEST_TIMEOUT = 300  # seconds each test command may run before it is killed
TEST_NETWORKS = ("none", "default")


@dataclass(frozen=True, slots=True, kw_only=True)
class TestSpec:
    """What proves an image works: image.yaml's `test:`, or builder.yaml's smoke check.

    Each command runs in a fresh container of the built image, per platform, with the
    image's entrypoint replaced by `/bin/sh -c COMMAND`. A smoke check (`smoke`, from
    builder.yaml's `smoke_test`) runs the image's own default command (ENTRYPOINT + CMD)
    with those arguments appended instead, so it needs no shell in the image.
    """

    __test__ = False  # pytest: a domain value, not a test class

    commands: tuple[str, ...] = ()
    smoke: tuple[str, ...] | None = None  # arguments appended to the default command
    timeout: int = DEFAULT_TEST_TIMEOUT  # seconds, per command
    env: tuple[tuple[str, str], ...] = ()
    network: str = "none"  # "none" or "default" (docker's bridge network)
    platforms: tuple[str, ...] | None = None  # None: every platform the image is built for

    def platforms_for(self, built: tuple[str, ...]) -> tuple[str, ...]:
        """The platforms to test among those built (`--platform` may narrow a build)."""
        if self.platforms is None:
            return built
        return tuple(p for p in built if p in self.platforms)


@dataclass(frozen=True, slots=True, kw_only=True)
class Signing:
    """builder.yaml's `signing:`: who is expected to have signed what builder pushes.

    Key-based: `key` is the public key (repo-relative), the private half comes from
    COSIGN_KEY. Keyless: `identity` (a regular expression for the certificate's subject)
    and `issuer` (the OIDC issuer). `tlog`: upload to, and require, the transparency log;
    None: on, except for a loopback registry (nothing public can be reached from there)."""

    key: PurePosixPath | None = None
    identity: str | None = None
    issuer: str | None = None
    tlog: bool | None = None


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
    # Dockerfiles that are no image of this repo (gitignore-style globs): doctor does not
    # ask for an image root for them (build helpers, seed images, examples).
    not_images: tuple[str, ...] = ()
    # Arguments for a smoke check of every image without a `test:` (None: no check).
    smoke_test: tuple[str, ...] | None = None
    # BuildKit's SLSA provenance attestation per pushed platform: max, min or off. None: not
    # set, max where the builder's driver can attach attestations (a warning elsewhere).
    provenance: str | None = None
    sbom_generator: str | None = None  # the SBOM generator image; None: no SBOM attestation
    signing: Signing = field(default_factory=Signing)
    # builder.yaml's `consumers:` as written, and its lines (the key's, then each item's):
    # only `builder pin` reads it, through builder.consumers.config.
    consumers: object = field(default=None, compare=False, repr=False)
    consumers_lines: tuple[int, ...] = field(default=(), compare=False, repr=False)
    # builder.yaml's line for each root it lists; empty when the roots are the defaults.
    root_lines: tuple[tuple[str, int], ...] = field(default=(), compare=False)
    # builder.yaml's line for each top-level key it sets, for errors found later.
    key_lines: tuple[tuple[str, int], ...] = field(default=(), compare=False, repr=False)

    def line_of(self, key: str) -> int | None:
        return dict(self.key_lines).get(key)

    @property
    def provenance_mode(self) -> str:
        return self.provenance or "max"

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
    # The full repository this image is pushed to, when not <registry>/<namespace>/<name>.
    repository: str | None = None
    # The last part of the default repository, when not the name: the images an
    # image.yaml list defines share their folder's repository, told apart by tags.
    repository_name: str | None = None
    # The tag this image is addressed by (`buildpack-deps:bookworm-curl`); None: `latest`
    # with its affixes. Several images can share a repository, each with its own tag.
    tag: str | None = None
    # metadata-action's prefix/suffix: carried by every tag builder gives the image.
    tag_prefix: str = ""
    tag_suffix: str = ""
    test: TestSpec | None = None  # image.yaml's `test:`, else builder.yaml's smoke check
    # image.yaml's line for each key it sets, so later checks can point at the value.
    lines: tuple[tuple[str, int], ...] = field(default=(), compare=False)

    def line_of(self, key: str) -> int | None:
        return dict(self.lines).get(key)

    @property
    def identity_tag(self) -> str:
        """The tag a reference uses for this image; an untagged reference means `latest`."""
        return self.tag or f"{self.tag_prefix}latest{self.tag_suffix}"

    def affixed(self, tag: str) -> str:
        """One of builder's tags as this image carries it."""
        return f"{self.tag_prefix}{tag}{self.tag_suffix}"

    @property
    def ignore_files(self) -> tuple[str, str]:
        """Per-Dockerfile ignore file first: BuildKit prefers it to the context's. Strings:
        asked for several times per image, and a path object costs microseconds to make."""
        at = str(self.context)
        return (
            f"{self.dockerfile}.dockerignore",
            ".dockerignore" if at == "." else f"{at}/.dockerignore",
        )


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
    def identities(self) -> tuple[tuple[str, str], ...]:
        """Every (repository, tag) a reference may use to name this image."""
        tag = self.config.identity_tag
        return tuple((repository, tag) for repository in (self.repository, *self.aliases))

    def input_path(self, path: str) -> str:
        """The file whose content `path` (the Dockerfile or .dockerignore) really is."""
        return dict(self.links).get(path, path)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def directory(self) -> PurePosixPath:
        return self.config.directory


Identity = tuple[str, str]  # (normalised repository, tag)


def identity_index(images: Iterable[Image]) -> dict[Identity, str]:
    """Every (repository, tag) that names an in-repo image -> that image's name."""
    index: dict[Identity, str] = {}
    for image in images:
        for identity in image.identities:
            index.setdefault(identity, image.name)
    return index


def named_image(reference: ImageReference, index: Mapping[Identity, str]) -> str | None:
    """The in-repo image a Dockerfile reference builds on, if any: the one publishing that
    repository and tag (an untagged reference means `latest`). A reference pinned by
    digest means that exact image, never this run's build of it: it is no edge."""
    if reference.digest is not None:
        return None
    return index.get((reference.repository, reference.tag or "latest"))
