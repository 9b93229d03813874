"""The values `builder pin` works with: consumer specs, pins, edits, findings (pure)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from builder.refs import Reference

Kind = Literal["argo", "kubernetes", "kustomize", "helm", "airflow", "lockfile"]
KINDS: tuple[Kind, ...] = ("argo", "kubernetes", "kustomize", "helm", "airflow", "lockfile")
LOCK_FILE = "images.lock.json"


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerSpec:
    """One entry of builder.yaml's `consumers:`: which files, read as which kind."""

    glob: str
    kind: Kind | None = None  # None: inferred from each file's name and content
    paths: tuple[str, ...] = ()  # helm: dotted key paths to image blocks, `*` any key
    line: int | None = None  # builder.yaml's line for this entry


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """The digest one image is pinned to by this run."""

    name: str
    repository: str  # as the metadata file writes it, e.g. 127.0.0.1:5000/demo/etl-orders
    digest: str  # sha256:...

    @property
    def pinned(self) -> str:
        return f"{self.repository}@{self.digest}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Held:
    """An image of the metadata file whose references keep their old pins, and why."""

    name: str
    status: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Pins:
    """What one metadata file (one commit) lets a pin run write."""

    revision: str
    targets: Mapping[str, Target]  # image name -> its new pin
    held: tuple[Held, ...] = ()  # failed images and their dependants (with --partial)
    repositories: Mapping[str, str] = field(default_factory=dict)  # normalised repo -> name
    # Repositories several images share (variants), told apart by their tags:
    # repo -> ((image, its tag, tag prefix, tag suffix), ...).
    variants: Mapping[str, tuple[tuple[str, str, str, str], ...]] = field(default_factory=dict)

    @property
    def names(self) -> set[str]:
        return set(self.repositories.values()) | {
            v[0] for group in self.variants.values() for v in group
        }

    def is_variant(self, name: str) -> bool:
        """Whether the image shares its repository with others (told apart by tags)."""
        return any(name == v[0] for group in self.variants.values() for v in group)

    def image_of(self, reference: Reference) -> str | None:
        """The in-repo image a reference names, or None for any other image. In a shared
        repository the tag tells: the variant's own tag, or one carrying its affixes. A
        digest without a tag there names no variant for sure (an older pin dropped the
        tag): it is left alone, never repointed at whichever image publishes `latest`."""
        group = self.variants.get(reference.repository)
        if group is None:
            return self.repositories.get(reference.repository)
        if reference.tag is None and reference.digest is not None:
            return None
        tag = reference.tag or "latest"
        for name, own, _, _ in group:
            if tag == own:
                return name
        affixed = [
            (len(prefix) + len(suffix), name)
            for name, _, prefix, suffix in group
            if (prefix or suffix) and tag.startswith(prefix) and tag.endswith(suffix)
        ]
        if affixed:
            return max(affixed)[1]
        plain = [name for name, _, prefix, suffix in group if not (prefix or suffix)]
        return plain[0] if len(plain) == 1 else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Edit:
    """One reference rewritten."""

    path: str  # relative to the consumers' root
    line: int
    image: str
    old: str
    new: str


Problem = Literal["mutable", "stale", "missing"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """For --check: a reference to an in-repo image that is not its current digest."""

    path: str
    line: int
    image: str
    problem: Problem
    written: str  # the reference as the file has it ("" when missing)
    current: str | None  # the pin this run would write; None when unknown (unchanged image)


@dataclass(frozen=True, slots=True, kw_only=True)
class FileOutcome:
    """One consumer file: the edits a pin makes, its new text, and what --check reports."""

    path: str
    kind: Kind
    text: str
    new_text: str
    edits: tuple[Edit, ...]
    findings: tuple[Finding, ...]

    @property
    def changed(self) -> bool:
        return self.new_text != self.text


@dataclass(frozen=True, slots=True, kw_only=True)
class PinOptions:
    """`builder pin`'s request."""

    check: bool = False  # report mutable or stale references; write nothing
    keep_tag: bool = False  # repo:tag@sha256:... rather than repo@sha256:...
    partial: bool = False  # with a failed image: pin the rest, keep its old pins
    commit_branch: str | None = None  # commit the edits on this branch
    repo_dir: Path | None = None  # the consumers live in this checkout, not in the repo
    push_branch: bool = False  # push commit_branch to its remote


@dataclass(frozen=True, slots=True, kw_only=True)
class FromMetadata:
    """Pin to the digests a build's metadata file records."""

    path: Path


@dataclass(frozen=True, slots=True, kw_only=True)
class FromTag:
    """Pin to the digests each in-repo image's `tag` names in the registry now."""

    tag: str  # as builder pushes it: the sanitised branch, or any tag
    resolve: Callable[[str], str | None]  # reference -> its digest; None: no such tag


PinSource = FromMetadata | FromTag


@dataclass(frozen=True, slots=True, kw_only=True)
class PinReport:
    revision: str
    root: Path  # where the consumer files are
    files: tuple[FileOutcome, ...]
    held: tuple[Held, ...]
    targets: tuple[Target, ...]
    checked: bool = False
    written: tuple[str, ...] = ()  # files rewritten
    commit: str | None = None  # the commit made on options.commit_branch
    branch: str | None = None
    pushed_to: str | None = None  # the remote the branch was pushed to

    @property
    def edits(self) -> tuple[Edit, ...]:
        return tuple(e for f in self.files for e in f.edits)

    @property
    def findings(self) -> tuple[Finding, ...]:
        return tuple(x for f in self.files for x in f.findings)
