"""`builder promote`: point one tag of every image of a set (`prod`) at the digests another
source names (a branch's tags, or a build's metadata file): verified first, all or nothing,
parents before dependants, by `imagetools create` (no rebuild, no pull)."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from builder.buildx import Buildx
from builder.consumers.metadata import compute_pins, parse_metadata
from builder.consumers.model import Target
from builder.context import RunContext
from builder.errors import BuilderError, RegistryError, UserError
from builder.executor import missing_platforms
from builder.graph import ImageGraph
from builder.pipeline import Log, login_for, open_registry
from builder.promotion import (
    BLOCKING,
    Observed,
    PromoteReport,
    Promotion,
    check_target_tag,
    compute_verdicts,
    source_tag,
)
from builder.registry import Registry
from builder.repo import Overrides
from builder.workspace import load_at

_LOOKUPS = 8  # registry look-ups at once: a few connections, not one per image


@dataclass(frozen=True, slots=True, kw_only=True)
class PromoteRequest:
    to: str  # the tag to move, e.g. prod
    from_tag: str | None = None  # a branch name or tag: each image's tag for it
    metadata_file: Path | None = None  # or the digests a build's metadata file pins
    only: tuple[str, ...] = ()
    dry_run: bool = False  # verify and report; move nothing
    overrides: Overrides = field(default_factory=Overrides)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Wanted:
    """One image of the set, before the registry is asked."""

    name: str
    repository: str
    source: str  # the reference promoted: repo:tag or repo@digest
    platforms: tuple[str, ...]  # what the image declares
    digest: str | None = None  # known from a metadata file
    why_missing: str = ""  # set when the source cannot name it at all


def run_promote(
    ctx: RunContext,
    request: PromoteRequest,
    *,
    log: Log,
    make_buildx: Callable[..., Buildx] = Buildx,
    make_registry: Callable[[RunContext], Registry] = open_registry,
) -> PromoteReport:
    to = check_target_tag(request.to)
    if (request.from_tag is None) == (request.metadata_file is None):
        raise UserError(
            "give one source: --from TAG or --metadata-file PATH",
            hint="e.g. builder promote --from main --to prod",
        )
    from_tag = None
    if request.from_tag is not None:
        from_tag = source_tag(request.from_tag, flag="--from")
        if from_tag == to:
            raise UserError(f"--from {request.from_tag} and --to {to} name the same tag")
    repo = load_at(ctx.git, ctx.head.tree, request.overrides)
    graph = repo.graph
    check_only(graph, request.only)
    if from_tag is not None:
        source, revision = f":{from_tag}", None
        wanted = from_tags(graph, from_tag, request.only)
    else:
        path = request.metadata_file or Path()
        source = str(path)
        revision, targets = read_metadata(path, graph)
        wanted = from_metadata(graph, targets, request.only, source)
    with make_registry(ctx) as registry:
        registry.use_login(login_for(ctx, repo.settings))
        observed = observe(registry, wanted, to)
        results = compute_verdicts(observed, to=to, dry_run=request.dry_run)
        report = PromoteReport(
            source=source,
            to=to,
            results=results,
            revision=revision,
            from_tag=from_tag,
            dry_run=request.dry_run,
        )
        if request.dry_run or any(r.status in BLOCKING for r in results):
            return report
        if not any(r.status == "would move" for r in results):
            return report
        engine = ctx.engine
        if engine.builder is None:
            engine = replace(engine, builder=repo.settings.builder)
        credentials = ctx.credentials(repo.settings.registry)
        with make_buildx(engine) as buildx:
            if credentials is not None:
                buildx.login(repo.settings.registry, credentials.username, credentials.password)
            return replace(report, results=move_all(buildx, registry, results, log))


def check_only(graph: ImageGraph, only: tuple[str, ...]) -> None:
    unknown = sorted(set(only) - set(graph.images))
    if unknown:
        raise UserError(
            f"--only names unknown image(s): {', '.join(unknown)}",
            hint="known: " + ", ".join(sorted(graph.images)),
        )


def read_metadata(path: Path, graph: ImageGraph) -> tuple[str, Mapping[str, Target]]:
    """The commit and the pushed digests a build's metadata file records. A build with a
    failed image is no set to promote: its dependants may have kept older parents."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise UserError(f"cannot read the metadata file: {why}", file=str(path)) from None
    data = parse_metadata(text, source=str(path))
    unknown = sorted(n for n in data["images"] if n not in graph.images)
    if unknown:
        raise UserError(
            f"names {unknown[0]!r}, not an image of this repository",
            file=str(path),
            hint="a metadata file from another repository? promote one this repo's build wrote",
        )
    failed = sorted(n for n, e in data["images"].items() if e["status"] == "failed")
    if failed:
        raise UserError(
            f"image {failed[0]!r} failed in that build; promote a build that pushed every image",
            file=str(path),
            hint="rebuild it first, or promote a branch's tags with --from",
        )
    pins = compute_pins(data, graph, source=str(path))
    if not pins.targets:
        raise UserError(
            "records no pushed image: nothing to promote",
            file=str(path),
            hint="promote a branch's tags with --from instead",
        )
    return pins.revision, pins.targets


def from_metadata(
    graph: ImageGraph, targets: Mapping[str, Target], only: tuple[str, ...], source: str
) -> list[_Wanted]:
    """The images the file pins (or `only` these), in graph order, each by its digest."""
    names = only or tuple(targets)
    wanted = []
    for name in graph.order:
        if name not in names:
            continue
        platforms = graph.images[name].config.platforms
        target = targets.get(name)
        if target is None:
            repository = graph.images[name].repository
            why = f"{source} records no pushed digest for it"
            wanted.append(
                _Wanted(
                    name=name,
                    repository=repository,
                    source=repository,
                    platforms=platforms,
                    why_missing=why,
                )
            )
            continue
        wanted.append(
            _Wanted(
                name=name,
                repository=target.repository,
                source=target.pinned,
                platforms=platforms,
                digest=target.digest,
            )
        )
    return wanted


def from_tags(graph: ImageGraph, tag: str, only: tuple[str, ...]) -> list[_Wanted]:
    """Every image of the repo (or `only` these), in graph order, each by its tag."""
    return [
        _Wanted(
            name=name,
            repository=graph.images[name].repository,
            source=f"{graph.images[name].repository}:{tag}",
            platforms=graph.images[name].config.platforms,
        )
        for name in graph.order
        if not only or name in only
    ]


def observe(registry: Registry, wanted: list[_Wanted], to: str) -> tuple[Observed, ...]:
    """Ask the registry about every image before anything moves (a few at a time)."""
    if not wanted:
        return ()
    workers = min(_LOOKUPS, len(wanted))
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        return tuple(pool.map(lambda w: observe_one(registry, w, to), wanted))


def observe_one(registry: Registry, wanted: _Wanted, to: str) -> Observed:
    """What the source names, which platforms it holds, and what the target tag names."""
    missing = Observed(
        name=wanted.name,
        repository=wanted.repository,
        source=wanted.source,
        digest=None,
        why_missing=wanted.why_missing,
    )
    if wanted.why_missing:
        return missing
    digest = registry.head(wanted.source)
    if digest is None:
        return missing
    if not digest:
        raise RegistryError(f"the registry did not say which digest {wanted.source} names")
    if wanted.digest is not None:
        digest = wanted.digest  # asked by digest: the answer is the same digest
    platforms = registry.platforms(f"{wanted.repository}@{digest}")
    return Observed(
        name=wanted.name,
        repository=wanted.repository,
        source=wanted.source,
        digest=digest,
        platforms=platforms,
        lacking=tuple(missing_platforms(wanted.platforms, platforms)),
        current=registry.head(f"{wanted.repository}:{to}") or None,
    )


def move_all(
    buildx: Buildx, registry: Registry, verdicts: tuple[Promotion, ...], log: Log
) -> tuple[Promotion, ...]:
    """Point each target tag at its digest, parents first; stop at the first failure (a
    rerun finishes the job: what moved is then `already there`)."""
    done: list[Promotion] = []
    failed: str | None = None
    for verdict in verdicts:
        if verdict.status != "would move":
            done.append(verdict)
            continue
        if failed is not None:
            done.append(replace(verdict, status="not moved", reason=f"stopped: {failed} failed"))
            continue
        source = f"{verdict.repository}@{verdict.digest}"
        error = buildx.imagetools_create([source], [verdict.target])
        if error is None:
            try:
                now = registry.head(verdict.target)
            except BuilderError as exc:
                now, error = None, exc.message
            if error is None and now != verdict.digest:
                error = f"the registry says {verdict.target} names {now or 'nothing'}"
        if error is not None:
            failed = verdict.name
            done.append(replace(verdict, status="failed", reason=f"tagging failed: {error}"))
            log(f"FAILED {verdict.name}: {error}")
            continue
        done.append(replace(verdict, status="moved"))
        log(f"moved {verdict.target}: {verdict.previous or '(new)'} -> {verdict.digest}")
    return tuple(done)
