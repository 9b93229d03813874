"""What every command starts from: the git repo, the range to compare and the loaded repo."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from builder.changes import Affected, compute_affected, compute_all, orphan_warnings
from builder.errors import GitError, UserError
from builder.git import Git, RevisionSnapshot, WorktreeSnapshot
from builder.model import CONFIG_FILE, IMAGE_FILE
from builder.parse_cache import ParseCache
from builder.repo import Overrides, Repo, Snapshot, load_repo, load_settings
from builder.revisions import Range, is_ci, resolve_range


@dataclass(frozen=True, slots=True, kw_only=True)
class Selection:
    """The repo at head, the range compared and what it affects."""

    repo: Repo
    range: Range
    affected: Affected
    warnings: tuple[str, ...]


def snapshot_of(git: Git, sha: str | None) -> Snapshot:
    return WorktreeSnapshot(git) if sha is None else RevisionSnapshot(git, sha)


def select(
    git: Git,
    *,
    base: str | None,
    head: str | None,
    environ: Mapping[str, str],
    overrides: Overrides,
    everything: bool = False,
) -> Selection:
    """Load the head revision and work out which images the change affects."""
    head_sha = git.resolve(head) if head is not None else None
    if head is None and is_ci(environ):
        head_sha = git.head()
    # default_branch lives in builder.yaml at head, which the range needs first.
    head_settings = load_settings(snapshot_of(git, head_sha), overrides)
    if everything:
        rng = Range(
            base=None,
            head=head_sha,
            base_label="(all)",
            head_label=head or ("HEAD" if head_sha else "working tree"),
            all_reason="--all",
        )
    else:
        rng = resolve_range(
            git, base=base, head=head, environ=environ, default_branch=head_settings.default_branch
        )
    cache = open_parse_cache(git)
    repo = load_repo(snapshot_of(git, rng.head), overrides, parse=cache.parse)
    cache.save()
    warnings = list(rng.warnings)
    if rng.all_reason is not None or rng.base is None:
        affected = compute_all(repo.graph, rng.all_reason or "no base")
        return Selection(repo=repo, range=rng, affected=affected, warnings=tuple(warnings))
    changes = git.changed_paths(rng.base, rng.head)
    paths = [c.path for c in changes]
    settings_changed = str(CONFIG_FILE) in paths
    redefined = any(
        PurePosixPath(c.path).name == IMAGE_FILE
        or (c.status == "D" and PurePosixPath(c.path).name == "Dockerfile")
        for c in changes
    )
    base_graph = None
    if settings_changed or redefined:
        try:
            base_snapshot = RevisionSnapshot(git, rng.base)
            base_graph = load_repo(
                base_snapshot, overrides, parse=cache.parse, require_images=False
            ).graph
            cache.save()
        except UserError as exc:
            if settings_changed:
                warnings.append(f"cannot read the base revision ({exc}); every image counts")
                affected = compute_all(
                    repo.graph, "builder.yaml changed and the base is unreadable"
                )
                return Selection(repo=repo, range=rng, affected=affected, warnings=tuple(warnings))
            warnings.append(f"cannot read the base revision ({exc}); removed images unknown")
    affected = compute_affected(
        repo.graph, paths, base_graph=base_graph, settings_changed=settings_changed
    )
    if base_graph is not None:
        warnings.extend(orphan_warnings(base_graph, repo.graph, affected.removed))
    return Selection(repo=repo, range=rng, affected=affected, warnings=tuple(warnings))


def open_parse_cache(git: Git) -> ParseCache:
    try:
        return ParseCache(git.git_dir() / "builder" / "dockerfiles.json")
    except GitError:
        return ParseCache(None)


def open_git(cwd: Path, environ: Mapping[str, str]) -> Git:
    return Git.discover(cwd, environ=environ)
