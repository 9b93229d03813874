"""Promotion (`builder promote`): which tags may move, and what each image's verdict is (pure).

A promotion points one tag (`prod`) of every image of a set at the digest another source
names (the `main` tag, or a build's metadata file), all or nothing: the registry is asked
first (`commands/promote.py`), and when any image of the set is missing or lacks one of
the platforms it declares, nothing moves. Moves run parents before dependants.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from builder.errors import UserError
from builder.plan import is_reserved_tag, sanitize_tag
from builder.refs import TAG_RE

PromoteStatus = Literal[
    "moved", "already there", "would move", "missing", "incomplete", "failed", "not moved"
]
# The statuses that stop a promotion before anything moves.
BLOCKING: frozenset[str] = frozenset({"missing", "incomplete"})
PROBLEMS: frozenset[str] = frozenset({"missing", "incomplete", "failed"})
_OWN_TAG = "promote to a tag of your own, e.g. prod or staging"


def check_target_tag(tag: str) -> str:
    """`--to`: a valid tag that builder itself neither moves nor keeps fixed.

    `latest`, the branch tags and version tags are moved by builds, so a promotion there
    would be undone by the next push; `git-*` and `key-*` each name one build for good."""
    if not TAG_RE.fullmatch(tag):
        raise UserError(
            f"--to {tag!r} is not a valid tag",
            hint="up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'",
        )
    if tag.startswith(("git-", "key-")):
        raise UserError(
            f"--to {tag}: builder's {tag[:4]}* tags each name one build and never move",
            hint=_OWN_TAG,
        )
    if tag == "latest":
        raise UserError(
            "--to latest: builder moves latest with every build of the default branch",
            hint=_OWN_TAG,
        )
    if is_reserved_tag(tag):
        raise UserError(
            f"--to {tag}: builder gives this tag its own meaning (the build cache, or a "
            "vX.Y.Z release's version tags)",
            hint=_OWN_TAG,
        )
    return tag


def source_tag(text: str, *, flag: str) -> str:
    """A branch name as the tag builder pushes for it (`feature/ETL-12` -> `feature-etl-12`);
    a tag (`git-1a2b3c4`, `1.2`) stays as it is."""
    tag = sanitize_tag(text)
    if not tag:
        raise UserError(f"{flag} {text!r} names no tag", hint="give a branch name or a tag")
    return tag


@dataclass(frozen=True, slots=True, kw_only=True)
class Observed:
    """What the registry holds for one image of the set, asked before anything moves."""

    name: str
    repository: str  # where its tags live, e.g. 127.0.0.1:5000/demo/etl-orders
    source: str  # what is promoted: `repo:main`, or `repo@sha256:...` from a metadata file
    digest: str | None  # what the source names now; None: the registry does not have it
    platforms: tuple[str, ...] = ()  # the source's platforms, attestation manifests left out
    lacking: tuple[str, ...] = ()  # platforms the image declares that the source lacks
    current: str | None = None  # what the target tag names now; None: no such tag yet
    why_missing: str = ""  # when the source itself is not there (the registry's or a file's)


@dataclass(frozen=True, slots=True, kw_only=True)
class Promotion:
    """One image's outcome: the target tag, what it named before and what it names now."""

    name: str
    status: PromoteStatus
    reason: str
    repository: str
    target: str  # `repo:prod`
    digest: str | None = None  # the digest the target tag is (to be) pointed at
    previous: str | None = None  # what the target tag named before; None: it did not exist
    platforms: tuple[str, ...] = ()

    @property
    def pinned(self) -> str | None:
        return f"{self.repository}@{self.digest}" if self.digest else None


@dataclass(frozen=True, slots=True, kw_only=True)
class PromoteReport:
    """A promotion, whole: where from, to which tag, and every image's outcome in order."""

    source: str  # for people: `:main`, or the metadata file's path
    to: str
    results: tuple[Promotion, ...]  # graph order: parents before dependants
    revision: str | None = None  # the commit a metadata file records; None for a tag
    from_tag: str | None = None
    dry_run: bool = False

    @property
    def problems(self) -> tuple[Promotion, ...]:
        return tuple(r for r in self.results if r.status in PROBLEMS)

    @property
    def moved(self) -> tuple[Promotion, ...]:
        return tuple(r for r in self.results if r.status == "moved")


def compute_verdicts(
    observed: Sequence[Observed], *, to: str, dry_run: bool = False
) -> tuple[Promotion, ...]:
    """Each image's verdict before anything moves: when one image is missing or lacks a
    platform, every other image is `not moved`, so the target tag never names a mix."""
    blocking = tuple(o.name for o in observed if o.digest is None or o.lacking)
    return tuple(
        Promotion(
            name=seen.name,
            status=status,
            reason=reason,
            repository=seen.repository,
            target=f"{seen.repository}:{to}",
            digest=seen.digest,
            previous=seen.current,
            platforms=seen.platforms,
        )
        for seen in observed
        for status, reason in (_verdict(seen, to=to, blocking=blocking, dry_run=dry_run),)
    )


def _verdict(
    seen: Observed, *, to: str, blocking: tuple[str, ...], dry_run: bool
) -> tuple[PromoteStatus, str]:
    if seen.digest is None:
        return "missing", seen.why_missing or f"{seen.source} is not in the registry"
    if seen.lacking:
        # A single-platform manifest (no index) lists no platforms: say so, not "none".
        held = f"it holds {', '.join(seen.platforms)}" if seen.platforms else "no index"
        return "incomplete", f"{seen.source} lacks {', '.join(seen.lacking)} ({held})"
    if blocking:
        return "not moved", f"nothing moves while {', '.join(blocking)} cannot"
    if seen.current == seen.digest:
        return "already there", f":{to} already names this digest"
    return "would move", "dry run" if dry_run else f"{seen.source} -> :{to}"


def describe_failure(report: PromoteReport) -> str | None:
    """The error line a promotion that did not finish ends with (exit 1); None when it did."""
    blocking = [r for r in report.results if r.status in BLOCKING]
    if blocking:
        shown = "; ".join(f"{r.name} {r.status}: {r.reason}" for r in blocking[:3])
        more = f"; and {len(blocking) - 3} more" if len(blocking) > 3 else ""
        return f"nothing moved to :{report.to}: {shown}{more}"
    failed = [r for r in report.results if r.status == "failed"]
    if not failed:
        return None
    moved = ", ".join(r.name for r in report.moved) or "none"
    return (
        f"{failed[0].name} could not be moved to :{report.to} ({failed[0].reason}); "
        f"moved before it: {moved}; rerun to finish"
    )
