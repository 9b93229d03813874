"""`builder pin`'s output: the edits, the --check findings, the commit message (pure)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from builder.consumers.model import Edit, Finding, Held, PinReport

_SHORT = 12
_SHA_RE = re.compile(r"^[0-9a-f]{40}(?:[0-9a-f]{24})?$")  # SHA-1 or SHA-256 git


def _short(revision: str) -> str:
    """A commit id shortened; a pin from tags (`tag main`) says so in full."""
    return revision[:_SHORT] if _SHA_RE.match(revision) else revision


def _digest_of(reference: str) -> str:
    """What a reference pins: its digest, else its tag (`latest` when it names none)."""
    if "@" in reference:
        return reference.rpartition("@")[2]
    last = reference.rpartition("/")[2]
    return f"tag {last.partition(':')[2] or 'latest'}" if reference else "(none)"


def render_finding(finding: Finding) -> str:
    where = f"{finding.path}:{finding.line}: {finding.image}:"
    current = f" (current: {finding.current})" if finding.current else ""
    if finding.problem == "missing":
        return f"{where} missing{current}"
    if finding.problem == "mutable":
        return f"{where} mutable reference {finding.written} (a tag without a digest){current}"
    return f"{where} pinned to {_digest_of(finding.written)}, not the current digest{current}"


def render_held(held: Held) -> str:
    why = f"{held.status}: {held.reason}" if held.reason else held.status
    return f"kept {held.name} ({why}): its references keep their old pins"


def render_check(report: PinReport) -> str:
    lines = [render_finding(f) for f in report.findings]
    lines.extend(render_held(h) for h in report.held)
    files = len(report.files)
    if report.findings:
        lines.append(
            f"{len(report.findings)} reference(s) to in-repo images are mutable or not the "
            f"digests of {_short(report.revision)} ({files} consumer file(s) read)"
        )
    else:
        lines.append(
            f"every reference to an in-repo image is pinned to {_short(report.revision)}'s "
            f"digest ({files} consumer file(s) read)"
        )
    return "\n".join(lines)


def render_edit(edit: Edit) -> str:
    old = edit.old or "(missing)"
    return f"{edit.path}:{edit.line}: {edit.image}: {old} -> {edit.new}"


def render_pin_report(report: PinReport) -> str:
    lines = [render_edit(e) for e in report.edits]
    lines.extend(render_held(h) for h in report.held)
    edits = report.edits
    revision = _short(report.revision)
    if edits:
        images = len({e.image for e in edits})
        lines.append(
            f"pinned {len(edits)} reference(s) to {images} image(s) in "
            f"{len(report.written)} file(s), from {revision}"
        )
    else:
        lines.append(
            f"nothing to change: {len(report.files)} consumer file(s) already pin {revision}'s "
            "digests"
        )
    if report.commit is not None:
        pushed = f"; pushed to {report.pushed_to}" if report.pushed_to else ""
        lines.append(f"committed {report.commit[:_SHORT]} on {report.branch}{pushed}")
    return "\n".join(lines)


def render_commit_message(revision: str, edits: Iterable[Edit]) -> str:
    """The subject, then one line per image and old pin: image, old and new digest."""
    moves: dict[tuple[str, str], str] = {}
    for edit in edits:
        moves.setdefault((edit.image, _digest_of(edit.old)), _digest_of(edit.new))
    images = sorted({image for image, _ in moves})
    if _SHA_RE.match(revision):
        subject = f"Pin {len(images)} image(s) to the digests built from {_short(revision)}"
        trailer = f"Built from {revision} (builder pin)."
    else:
        subject = f"Pin {len(images)} image(s) to the digests of {revision}"
        trailer = f"The digests of {revision} in the registry (builder pin)."
    body = [f"{image}: {old} -> {new}" for (image, old), new in sorted(moves.items())]
    return "\n".join([subject, "", *body, "", trailer]) + "\n"
