"""What every command starts from: the git repo, the range to compare and the loaded repo."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import PurePosixPath

from builder.changes import (
    compute_affected,
    compute_all,
    compute_strays,
    describe_strays,
    orphan_warnings,
    stray_directory_matters,
)
from builder.context import RunContext
from builder.errors import GitError, UserError
from builder.git import Git, RevisionSnapshot, WorktreeSnapshot
from builder.graph import ImageGraph
from builder.inputs import with_base_triggers
from builder.model import CONFIG_FILE, IMAGE_FILE
from builder.parse_cache import ParseCache
from builder.repo import Overrides, Repo, Snapshot, load_repo, load_settings
from builder.reports import Range, Selection
from builder.revisions import resolve_range


def snapshot_of(git: Git, sha: str | None) -> Snapshot:
    return WorktreeSnapshot(git) if sha is None else RevisionSnapshot(git, sha)


def load_at(
    git: Git,
    sha: str | None,
    overrides: Overrides | None = None,
    *,
    errors: list[UserError] | None = None,
) -> Repo:
    """The repo at a commit (None: on disk), through the parse cache that `affected` keeps.
    With `errors`, every image's own error is collected before the first is raised."""
    cache = open_parse_cache(git)
    repo = load_repo(
        snapshot_of(git, sha), overrides, parse=cache.parse, warm=cache.warm, errors=errors
    )
    cache.save()
    return repo


def select(
    ctx: RunContext,
    *,
    base: str | None,
    overrides: Overrides,
    everything: str | None = None,
    strays: bool = False,
) -> Selection:
    """Load the head and work out which images the change affects; `everything` (the
    reason, e.g. "--all") counts every image instead of comparing with a base. With
    `strays`, files git ignores that a build from the disk would send are named too."""
    selection = _select(ctx, base=base, overrides=overrides, everything=everything)
    return with_strays(ctx.git, selection) if strays else selection


def _select(
    ctx: RunContext, *, base: str | None, overrides: Overrides, everything: str | None
) -> Selection:
    git, head = ctx.git, ctx.head
    if everything is not None:
        rng = Range(
            base=None,
            head=head.tree,
            base_label="(all)",
            head_label=head.label,
            all_reason=everything,
        )
    else:
        # default_branch lives in builder.yaml at head, which the range needs first.
        head_settings = load_settings(snapshot_of(git, head.tree), overrides)
        rng = resolve_range(
            git, base=base, head=head, ci=ctx.ci, default_branch=head_settings.default_branch
        )
    cache = open_parse_cache(git)
    repo = load_repo(snapshot_of(git, rng.head), overrides, parse=cache.parse, warm=cache.warm)
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


def with_strays(git: Git, selection: Selection) -> Selection:
    """The selection with the files git ignores that a build from the disk would send,
    each image's named in a warning: no diff, no commit and no key knows them."""
    return with_strays_found(selection, find_strays(git, selection.repo.graph))


def with_triggered_strays(git: Git, selection: Selection, triggered: frozenset[str]) -> Selection:
    """The strays once the `triggered` bases' ONBUILD triggers count. Reconcile learns of
    them from the registry, after the first look: the triggers run in the children's builds
    and may read the whole context, so a file git ignores and no Dockerfile reads is sent
    all the same."""
    if not triggered:
        return selection
    graph = with_base_triggers(selection.repo.graph, triggered)
    return with_strays_found(selection, find_strays(git, graph))


def with_strays_found(selection: Selection, strays: Mapping[str, tuple[str, ...]]) -> Selection:
    """The selection with `strays` in place of those it named, and warnings to match."""
    if strays == selection.strays:
        return selection
    said = set(describe_strays(selection.strays))
    warnings = (*(w for w in selection.warnings if w not in said), *describe_strays(strays))
    return replace(selection, strays=strays, warnings=warnings)


def find_strays(git: Git, graph: ImageGraph) -> dict[str, tuple[str, ...]]:
    contexts = sorted({str(i.config.context) for i in graph.images.values()})
    if "." in contexts:
        contexts = ["."]
    ignored = git.ignored(contexts, descend=lambda d: stray_directory_matters(graph, d))
    return compute_strays(graph, ignored)


def open_parse_cache(git: Git) -> ParseCache:
    try:
        return ParseCache(git.git_dir() / "builder" / "dockerfiles.json")
    except GitError:
        return ParseCache(None)
