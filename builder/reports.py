"""What a run found and did, as values the renderers turn into text (pure).

The range compared and the images it affects (`Selection`), what the registry knows of
content keys (`KeyReport`), and each image's outcome (`ImageResult`, `BuildReport`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from builder.changes import Affected
from builder.plan import BuildPlan, Revision
from builder.repo import Repo


@dataclass(frozen=True, slots=True, kw_only=True)
class Range:
    base: str | None  # a commit or tree id; None when there is no usable base
    head: str | None  # a commit id; None for the working tree
    base_label: str
    head_label: str
    all_reason: str | None = None  # set when every image must count as affected
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Selection:
    """The repo at head, the range compared and what it affects."""

    repo: Repo
    range: Range
    affected: Affected
    warnings: tuple[str, ...]
    # Files git ignores that a build from this disk would send, per image (working tree).
    strays: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyReport:
    keys: Mapping[str, str]  # image -> content key
    present: frozenset[str]  # images whose key tag the registry holds
    digests: Mapping[str, str] = field(default_factory=dict)  # those images -> key digest
    base_digests: Mapping[str, str]  # external reference -> digest now
    requests: int = 0
    seconds: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Attestation:
    """What the registry holds beside one platform of a pushed image."""

    platform: str
    manifest: str  # the attestation manifest's digest
    provenance: str | None = None  # the SLSA provenance statement's blob digest
    sboms: tuple[str, ...] = ()  # the SPDX statements' blob digests


@dataclass(frozen=True, slots=True, kw_only=True)
class Signature:
    """A cosign signature of a pushed image's index, and how to check it."""

    reference: str  # where cosign stored it: `repo:sha256-<hex>.sig`
    digest: str | None  # that signature manifest's digest, when the registry said
    signer: str  # "key cosign.pub", or the keyless identity and issuer
    verify: str  # the exact `cosign verify` command, for admission policies downstream


Status = Literal["built", "tagged", "failed", "skipped", "unchanged", "planned"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageResult:
    name: str
    status: Status
    reason: str
    repository: str = ""
    digest: str | None = None
    tags: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()
    log: str = ""
    attempts: int = 0
    seconds: float = 0.0
    attestations: tuple[Attestation, ...] = ()  # read back after the push, per platform
    signature: Signature | None = None  # set when the run signed it (--sign)

    @property
    def pinned(self) -> str | None:
        """`repo@sha256:...`: what Airflow and Argo should run."""
        return f"{self.repository}@{self.digest}" if self.digest else None


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildReport:
    selection: Selection
    plan: BuildPlan
    revision: Revision
    results: dict[str, ImageResult]  # every image of the repo, in build order

    @property
    def failed(self) -> tuple[str, ...]:
        return tuple(n for n, r in self.results.items() if r.status == "failed")
