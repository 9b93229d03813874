"""`builder graph`: the dependency graph of the repo's images, at a revision or on disk."""

from __future__ import annotations

from builder.git import Git
from builder.graph import ImageGraph
from builder.repo import Overrides, load_repo
from builder.workspace import snapshot_of


def run_graph(git: Git, *, rev: str | None, overrides: Overrides) -> ImageGraph:
    sha = git.resolve(rev) if rev is not None else None
    return load_repo(snapshot_of(git, sha), overrides).graph
