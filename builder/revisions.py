"""Choosing the base and head to compare: flags, then CI conventions, then defaults."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.errors import GitError
from builder.git import NULL_SHA, Git

_SHA_RE = re.compile(r"^[0-9a-f]{7,64}$")
# A full object id: what CI hands over, and plausibly missing after a force push. A shorter
# `--base` that names nothing is a typo and gets an error, not a rebuild of everything.
_FULL_SHA_RE = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Range:
    base: str | None  # a commit or tree id; None when there is no usable base
    head: str | None  # a commit id; None for the working tree
    base_label: str
    head_label: str
    all_reason: str | None = None  # set when every image must count as affected
    warnings: tuple[str, ...] = ()


def is_ci(environ: Mapping[str, str]) -> bool:
    return environ.get("CI", "").lower() in ("true", "1") or in_github_actions(environ)


def in_github_actions(environ: Mapping[str, str]) -> bool:
    return environ.get("GITHUB_ACTIONS") == "true"


def warning_lines(message: str, environ: Mapping[str, str]) -> tuple[str, ...]:
    """A warning for the log; inside GitHub Actions also as an annotation."""
    plain = f"warning: {message}"
    return (f"::warning::{message}", plain) if in_github_actions(environ) else (plain,)


def load_event(environ: Mapping[str, str]) -> dict[str, Any]:
    """The GitHub Actions event payload, or {} outside Actions or when unreadable."""
    path = environ.get("GITHUB_EVENT_PATH")
    if not in_github_actions(environ) or not path:
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def event_base(environ: Mapping[str, str], event: Mapping[str, Any]) -> str | None:
    """The base a GitHub event implies: a push's `before`, a pull request's base SHA."""
    name = environ.get("GITHUB_EVENT_NAME", "")
    if name in ("pull_request", "pull_request_target"):
        pull = event.get("pull_request")
        base = pull.get("base") if isinstance(pull, dict) else None
        sha = base.get("sha") if isinstance(base, dict) else None
        return sha if isinstance(sha, str) else None
    if name == "push":
        before = event.get("before")
        return before if isinstance(before, str) else None
    return None


def resolve_range(
    git: Git,
    *,
    base: str | None,
    head: str | None,
    environ: Mapping[str, str],
    default_branch: str,
) -> Range:
    warnings: list[str] = []
    if head is not None:
        head_sha: str | None = git.resolve(head)
        head_label = head
    elif is_ci(environ):
        head_sha = git.head()
        if head_sha is None:
            raise GitError("the repository has no commits", hint="commit something first")
        head_label = "HEAD"
    else:
        head_sha, head_label = None, "working tree"
    tip = head_sha or git.head()

    def everything(reason: str) -> Range:
        warnings.append(f"{reason}: treating every image as affected")
        return Range(
            base=None,
            head=head_sha,
            base_label="(none)",
            head_label=head_label,
            all_reason=reason,
            warnings=tuple(warnings),
        )

    def found(sha: str, label: str) -> Range:
        return Range(
            base=sha,
            head=head_sha,
            base_label=label,
            head_label=head_label,
            warnings=tuple(warnings),
        )

    source = "--base"
    if base is None:
        event = load_event(environ)
        base = event_base(environ, event)
        source = f"the {environ.get('GITHUB_EVENT_NAME', '')} event"
    if base is None:
        if tip is None:
            return found(git.empty_tree(), "(empty repository)")
        parent = git.first_parent(tip)
        if parent is None and git.is_shallow():
            git.fetch_history(tip)
            parent = git.first_parent(tip)
            if parent is None:
                return everything("shallow clone: the commit before HEAD could not be fetched")
        if parent is None:
            return found(git.empty_tree(), "(first commit: empty tree)")
        return found(parent, "HEAD~1" if head_sha is None or head is None else f"{head}~1")
    if base == NULL_SHA:
        if tip is None:
            return everything("new branch with no commits")
        for candidate in (f"origin/{default_branch}", default_branch):
            if git.try_run("rev-parse", "--verify", "--quiet", candidate).ok:
                merge_base = git.merge_base(tip, candidate)
                branch = environ.get("GITHUB_REF_NAME") or git.branch()
                if merge_base == tip and branch == default_branch:
                    break  # the default branch's own first push: nothing to compare with
                if merge_base:
                    # A branch created at the default branch's tip changed nothing yet.
                    warnings.append(f"new branch: comparing with its merge base with {candidate}")
                    return found(merge_base, f"merge-base({candidate})")
        return everything(f"new branch with no merge base with {default_branch}")
    if not (_FULL_SHA_RE if source == "--base" else _SHA_RE).fullmatch(base):
        return found(git.resolve(base), base)
    if git.has_commit(base) or git.fetch_history(base):
        return found(git.resolve(base), base[:12])
    return everything(
        f"base {base[:12]} from {source} is not in this clone (force push or shallow clone)"
    )
