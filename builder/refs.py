"""Docker image references: parsing and the normalisation that decides identity (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass

DOCKER_HUB = "docker.io"
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})

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
    if domain in _HUB_ALIASES:
        domain = DOCKER_HUB
        if "/" not in path:
            path = f"library/{path}"
    return Reference(domain=domain, path=path, tag=tag, digest=digest)


def repository_of(registry: str, namespace: str | None, name: str) -> str:
    """The normalised repository an in-repo image is pushed to."""
    text = "/".join(part for part in (registry, namespace, name) if part)
    return parse_reference(text).repository


def familiar_name(text: str) -> str:
    """The name BuildKit looks a named context up by: `docker.io/library/x:latest` -> `x`.

    BuildKit's dockerui NamedContext normalises a FROM / --from name this way before
    matching `context:<name>`, so bake `contexts` keys must be written the same way.
    """
    ref = parse_reference(text)
    path = ref.path
    if ref.domain == DOCKER_HUB:
        name = path.removeprefix("library/") if path.count("/") == 1 else path
    else:
        name = f"{ref.domain}/{path}"
    if ref.tag and not (ref.tag == "latest" and ref.digest is None):
        name += f":{ref.tag}"
    if ref.digest:
        name += f"@{ref.digest}"
    return name
