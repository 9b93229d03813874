"""`builder graph`: the dependency graph of the repo's images, at a revision or on disk."""

from __future__ import annotations

from builder.doctor import Finding, check_all
from builder.git import Git
from builder.graph import ImageGraph
from builder.repo import Overrides
from builder.workspace import load_at


def run_graph(
    git: Git, *, rev: str | None, overrides: Overrides
) -> tuple[ImageGraph, tuple[Finding, ...]]:
    """The graph, and what `builder doctor` would say of it."""
    sha = git.resolve(rev) if rev is not None else None
    repo = load_at(git, sha, overrides)
    findings = check_all(repo.graph, git.all_files(sha), repo.settings.not_images)
    return repo.graph, tuple(findings)
