"""Choosing the base and head to compare: flags, then CI conventions, then defaults."""

from __future__ import annotations

import re

from builder.ci import NULL_SHA, CIFacts
from builder.context import Head
from builder.git import Git
from builder.reports import Range

_SHA_RE = re.compile(r"^[0-9a-f]{7,64}$")
# A full object id: what CI hands over, and plausibly missing after a force push. A shorter
# `--base` that names nothing is a typo and gets an error, not a rebuild of everything.
_FULL_SHA_RE = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")


def warning_lines(message: str, ci: CIFacts) -> tuple[str, ...]:
    """A warning for the log; where the CI understands it, also as an annotation."""
    plain = f"warning: {message}"
    return (f"::warning::{message}", plain) if ci.annotations else (plain,)


def resolve_range(
    git: Git,
    *,
    base: str | None,
    head: Head,
    ci: CIFacts,
    default_branch: str,
) -> Range:
    """The base to compare `head` with: `--base`, else what the CI says, else HEAD~1."""
    warnings: list[str] = []
    head_sha = head.tree
    tip = head.commit

    def everything(reason: str) -> Range:
        warnings.append(f"{reason}: treating every image as affected")
        return Range(
            base=None,
            head=head_sha,
            base_label="(none)",
            head_label=head.label,
            all_reason=reason,
            warnings=tuple(warnings),
        )

    def found(sha: str, label: str) -> Range:
        return Range(
            base=sha,
            head=head_sha,
            base_label=label,
            head_label=head.label,
            warnings=tuple(warnings),
        )

    source = "--base"
    if base is None and ci.base is not None:
        base, source = ci.base, ci.base_source
        if ci.base_is_branch and tip is not None:
            # A change request against a branch: compare with where the two meet.
            target = git.try_run("rev-parse", "--verify", "--quiet", f"{base}^{{commit}}")
            merge_base = git.merge_base(tip, base) if target.ok else None
            target_label = base[:12] if _FULL_SHA_RE.fullmatch(base) else base
            if merge_base is None:
                return everything(f"{source} names {target_label}, which this clone lacks")
            return found(merge_base, f"merge-base({target_label})")
    if base is None:
        if tip is None:
            return found(git.empty_tree(), "(empty repository)")
        parent = git.first_parent(tip)
        if parent is None and git.is_shallow():
            git.fetch_history(tip)
            parent = git.first_parent(tip)
            if parent is None:
                warnings.extend(ci.warnings)
                return everything("shallow clone: the commit before HEAD could not be fetched")
        if parent is None:
            return found(git.empty_tree(), "(first commit: empty tree)")
        label = "HEAD" if head.label in ("HEAD", "working tree") else head.label
        warnings.extend(ci.warnings)  # the CI said nothing usable: say so
        return found(parent, f"{label}~1")
    if base == NULL_SHA:
        if tip is None:
            return everything("new branch with no commits")
        branches = dict.fromkeys([default_branch, *(b for b in [ci.default_branch] if b)])
        for name in branches:
            for candidate in (f"origin/{name}", name):
                if git.try_run("rev-parse", "--verify", "--quiet", candidate).ok:
                    merge_base = git.merge_base(tip, candidate)
                    branch = ci.branch or git.branch()
                    if merge_base == tip and branch == name:
                        break  # the default branch's own first push: nothing to compare with
                    if merge_base:
                        # A branch created at the default branch's tip changed nothing yet.
                        warnings.append(
                            f"new branch: comparing with its merge base with {candidate}"
                        )
                        return found(merge_base, f"merge-base({candidate})")
        return everything(f"new branch with no merge base with {default_branch}")
    if not (_FULL_SHA_RE if source == "--base" else _SHA_RE).fullmatch(base):
        return found(git.resolve(base), base)
    if git.has_commit(base) or git.fetch_history(base):
        return found(git.resolve(base), base[:12])
    return everything(
        f"base {base[:12]} from {source} is not in this clone (force push or shallow clone)"
    )
