"""A branch's tags in the registry -> the pins one `builder pin --from-tag` run may write
(pure: the digests are asked by the edge, `pin.py`).

The tags are one moment of a branch, not one commit: each image's tag names the digest
its last build (or the tagging of an unchanged image) left there. An image without the
tag keeps its pins, and the report says so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from builder.consumers.metadata import identity_tables
from builder.consumers.model import Held, Pins, Target
from builder.errors import RegistryError
from builder.graph import ImageGraph

_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


def tag_revision(tag: str) -> str:
    """What a pin from tags says it pins from (a metadata file says its commit)."""
    return f"tag {tag}"


def compute_tag_pins(graph: ImageGraph, tag: str, digests: Mapping[str, str | None]) -> Pins:
    """`digests`: image name -> what its `tag` names (None: the registry has no such tag)."""
    targets: dict[str, Target] = {}
    held: list[Held] = []
    repositories, variants = identity_tables(graph)
    for name in graph.order:
        repository = graph.images[name].repository
        digest = digests.get(name)
        if digest is None:
            reason = f"the registry has no {repository}:{tag}"
            held.append(Held(name=name, status="untagged", reason=reason))
            continue
        if not _DIGEST_RE.match(digest):
            raise RegistryError(f"the registry says {repository}:{tag} is {digest!r}, no digest")
        targets[name] = Target(name=name, repository=repository, digest=digest)
    return Pins(
        revision=tag_revision(tag),
        targets=targets,
        held=tuple(held),
        repositories=repositories,
        variants=variants,
    )
