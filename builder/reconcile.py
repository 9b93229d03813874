"""Reconcile: ask the registry which content keys exist, so no failed or lost build is
forgotten; the deciding is pure (`compute_reconciled`), the asking is batched here."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from builder.changes import Affected, AffectedImage, Reason
from builder.errors import RegistryError
from builder.git import Git
from builder.graph import ImageGraph
from builder.keys import compute_keys, key_tag
from builder.refs import InvalidReference, parse_reference
from builder.registry import RegistryHTTP
from builder.workspace import Selection


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyReport:
    keys: Mapping[str, str]  # image -> content key
    present: frozenset[str]  # images whose key tag the registry holds
    digests: Mapping[str, str] = field(default_factory=dict)  # those images -> key digest
    base_digests: Mapping[str, str]  # external reference -> digest now
    requests: int = 0
    seconds: float = 0.0


def compute_reconciled(
    graph: ImageGraph,
    git_affected: Affected,
    report: KeyReport,
    *,
    use_git: bool = True,
    force: Iterable[str] = (),
) -> Affected:
    """Affected = images whose key the registry lacks (git's reasons kept where git agrees),
    plus `force`d images and their dependants. A git-affected image whose exact inputs are
    already pushed is not rebuilt."""
    git_reasons = {i.name: i.reasons for i in git_affected.images} if use_git else {}
    forced = graph.closure(force)
    images = []
    for name in graph.order:
        missing = name not in report.present
        if not missing and name not in forced:
            continue
        reasons = list(git_reasons.get(name, ()))
        if missing:
            tag = key_tag(report.keys[name])
            reasons.append(Reason(kind="key", note=f"the registry has no {tag}"))
        if name in forced:
            reasons.append(Reason(kind="all", note="--force"))
        images.append(
            AffectedImage(name=name, path=graph.images[name].directory, reasons=tuple(reasons))
        )
    return Affected(images=tuple(images), removed=git_affected.removed)


def _split(reference: str) -> tuple[str, str, str] | None:
    try:
        ref = parse_reference(reference)
    except InvalidReference:
        return None
    return ref.domain, ref.path, ref.digest or ref.tag or "latest"


def fetch_key_report(
    git: Git,
    selection: Selection,
    client: RegistryHTTP,
    *,
    platforms: tuple[str, ...] | None = None,
    extra_ids: Mapping[str, str] | None = None,
    jobs: int = 16,
    clock: Callable[[], float] = time.monotonic,
) -> KeyReport:
    """Compute every key and look up base digests and key tags, concurrently."""
    started = clock()
    graph = selection.repo.graph
    externals = sorted({r for image in graph.images.values() for r in image.external_parents})
    with ThreadPoolExecutor(max_workers=jobs) as pool:

        def digest_of(reference: str) -> tuple[str, str | None]:
            parts = _split(reference)
            if parts is None:
                return reference, None
            domain, path, ref = parts
            if ref.startswith("sha256:"):
                return reference, ref
            return reference, client.head_manifest(domain, path, ref)

        base_digests = {r: d for r, d in pool.map(digest_of, externals) if d}
        keys = compute_keys(
            graph,
            {**git.file_ids(selection.range.head), **(extra_ids or {})},
            base_digests=base_digests,
            platforms=platforms,
        )

        def present(name: str) -> tuple[str, str | None]:
            parts = _split(graph.images[name].repository)
            if parts is None:
                return name, None
            domain, path, _ = parts
            return name, client.head_manifest(domain, path, key_tag(keys[name]))

        found = {n: d for n, d in pool.map(present, graph.order) if d is not None}
    return KeyReport(
        keys=keys,
        present=frozenset(found),
        # A registry that sends no digest header leaves the key known but not taggable.
        digests={n: d for n, d in found.items() if d},
        base_digests=base_digests,
        requests=client.requests,
        seconds=clock() - started,
    )


def reconcile(
    git: Git,
    selection: Selection,
    *,
    credentials: tuple[str, str] | None,
    platforms: tuple[str, ...] | None = None,
    use_git: bool = True,
    force: Iterable[str] = (),
    extra_ids: Mapping[str, str] | None = None,
) -> tuple[Selection, KeyReport | None]:
    """The selection with reconciled affected images; unchanged (and a loud warning) when
    the registry cannot be asked."""
    client = RegistryHTTP(credentials=credentials)
    try:
        report = fetch_key_report(git, selection, client, platforms=platforms, extra_ids=extra_ids)
    except RegistryError as exc:
        warning = f"reconcile skipped, falling back to the git diff: {exc.message}"
        return replace(selection, warnings=(*selection.warnings, warning)), None
    finally:
        client.close()
    affected = compute_reconciled(
        selection.repo.graph, selection.affected, report, use_git=use_git, force=force
    )
    return replace(selection, affected=affected), report
