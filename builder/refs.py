"""Docker image references: parsing and the normalisation that decides identity (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass

DOCKER_HUB = "docker.io"
# Every name Docker Hub answers to. For identity they are one registry; BuildKit's named
# contexts are another matter (see `context_key`), so this is the only list of them.
DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
# The host that speaks the registry API for Docker Hub, and the server `docker login` takes.
DOCKER_HUB_ENDPOINT = "registry-1.docker.io"
DOCKER_HUB_LOGIN_SERVER = "https://index.docker.io/v1/"

# The grammar of github.com/distribution/reference (reference.go), reduced to what we use.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
COMPONENT_RE = re.compile(rf"^{_COMPONENT}$")
_PATH_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_DOMAIN_RE = re.compile(
    r"^(?:localhost|(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)"
    r"(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*"
    r"|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$"
)
TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$", re.ASCII)
_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}$")


class InvalidReference(ValueError):
    """A string that is not a Docker image reference; the message says why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Reference:
    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def repository(self) -> str:
        """The identity of the image, tag and digest dropped: `docker.io/library/python`."""
        return f"{self.domain}/{self.path}"


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return DOCKER_HUB, name


def parse_reference(text: str) -> Reference:
    """Parse and normalise as Docker does: `python` is `docker.io/library/python`."""
    if not text or text != text.strip():
        raise InvalidReference(f"invalid image reference {text!r}")
    remainder, digest = text, None
    if "@" in text:
        remainder, _, digest = text.partition("@")
        if not _DIGEST_RE.fullmatch(digest):
            raise InvalidReference(f"invalid digest in image reference {text!r}")
    domain, path = _split_domain(remainder)
    tag = None
    # A colon after the last slash is a tag; one before it belongs to a registry port.
    if ":" in path.rsplit("/", 1)[-1]:
        path, _, tag = path.rpartition(":")
        if not TAG_RE.fullmatch(tag):
            raise InvalidReference(f"invalid tag {tag!r} in image reference {text!r}")
    if not _DOMAIN_RE.fullmatch(domain):
        raise InvalidReference(f"invalid registry {domain!r} in image reference {text!r}")
    if not _PATH_RE.fullmatch(path):
        hint = " (repository names must be lowercase)" if path.lower() != path else ""
        raise InvalidReference(f"invalid image reference {text!r}{hint}")
    if domain in DOCKER_HUB_ALIASES:
        domain = DOCKER_HUB
        if "/" not in path:
            path = f"library/{path}"
    return Reference(domain=domain, path=path, tag=tag, digest=digest)


def repository_of(registry: str, namespace: str | None, name: str) -> str:
    """The normalised repository an in-repo image is pushed to."""
    text = "/".join(part for part in (registry, namespace, name) if part)
    return parse_reference(text).repository


def is_loopback(registry: str) -> bool:
    """A registry on this machine: spoken to over plain HTTP, and nothing public (a
    transparency log, an OIDC issuer) can vouch for what it holds."""
    return registry.startswith(("localhost", "127.", "[::1]"))


def is_docker_hub(registry: str) -> bool:
    return registry in DOCKER_HUB_ALIASES


def canonical_registry(registry: str) -> str:
    """`index.docker.io` and `registry-1.docker.io` are Docker Hub: one name for it."""
    return DOCKER_HUB if is_docker_hub(registry) else registry


def context_key(text: str) -> str:
    """The name BuildKit looks a named context up by, for a FROM / --from reference.

    BuildKit's dockerui `NamedContext` runs the name through distribution/reference's
    ParseNormalizedNamed and FamiliarString and trims `:latest`, and buildx bake passes
    `contexts` keys through as written, so a key must be spelled exactly so. That
    normalisation folds `index.docker.io` into Docker Hub but NOT `registry-1.docker.io`,
    so `FROM registry-1.docker.io/acme/base` is looked up under that whole name, while
    `FROM docker.io/acme/base:latest` is looked up as `acme/base` (checked against the
    engine in tests/integration/test_references.py).
    """
    ref = parse_reference(text)  # validates, and splits off the tag and digest
    first, sep, rest = text.partition("/")
    written = first if sep and ("." in first or ":" in first or first == "localhost") else ""
    if written and written not in (DOCKER_HUB, "index.docker.io"):
        # Another registry, registry-1.docker.io included: no `library/` is implied.
        name = f"{written}/{rest.partition('@')[0]}"
        if ref.tag:
            name = name.removesuffix(f":{ref.tag}")
    elif ref.path.startswith("library/") and ref.path.count("/") == 1:
        name = ref.path.removeprefix("library/")
    else:
        name = ref.path
    if ref.tag:
        name += f":{ref.tag}"
    if ref.digest:
        name += f"@{ref.digest}"
    return name.removesuffix(":latest")
