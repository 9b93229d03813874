"""`builder refresh`: the nightly job. Upstream base digests go into the content keys, and
exactly the images whose key changed are rebuilt: moved bases and their dependants."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from builder.buildx import Buildx
from builder.context import RunContext
from builder.errors import RegistryError
from builder.pipeline import (
    Guards,
    KeyUse,
    Log,
    Output,
    Run,
    Scope,
    exclusive,
    execute,
    open_registry,
    prepare,
)
from builder.plan import BASE_DIGEST_LABEL, BuildPlan
from builder.registry import Registry
from builder.repo import Overrides
from builder.reports import BuildReport


@dataclass(frozen=True, slots=True, kw_only=True)
class RefreshRequest:
    push: bool = True
    force: bool = False
    jobs: int = 2
    dry_run: bool = False
    secrets: tuple[str, ...] = ()
    sign: bool = False
    overrides: Overrides = field(default_factory=Overrides)


@dataclass(frozen=True, slots=True, kw_only=True)
class UpstreamMove:
    reference: str  # as the Dockerfile names it, e.g. python:3.12-slim
    old: str | None  # the digest the image's current `latest` was built on, when known
    new: str
    image: str


def compute_moves(
    plan: BuildPlan,
    base_digests: Mapping[str, str],
    previous_labels: Mapping[str, Mapping[str, str]],
) -> tuple[UpstreamMove, ...]:
    """For each planned image on an external base: from which digest to which it moves."""
    moves = []
    for build in plan.images:
        if build.base is None or build.base not in base_digests:
            continue
        new = base_digests[build.base]
        old = previous_labels.get(build.name, {}).get(BASE_DIGEST_LABEL)
        if old != new:
            moves.append(UpstreamMove(reference=build.base, old=old, new=new, image=build.name))
    return tuple(moves)


def describe_moves(moves: Sequence[UpstreamMove]) -> list[str]:
    """One line per upstream that moved, naming the images built on it."""
    images: dict[tuple[str, str | None, str], list[str]] = {}
    for move in moves:
        images.setdefault((move.reference, move.old or None, move.new), []).append(move.image)
    lines = []
    for (reference, old, new), names in images.items():
        on = f" (under {', '.join(names)})"
        if old:
            lines.append(f"upstream {reference} moved {old} -> {new}{on}")
        else:
            lines.append(f"upstream {reference} is at {new}; no earlier digest recorded{on}")
    return lines


def fetch_previous_labels(
    plan: BuildPlan, base_digests: Mapping[str, str], registry: Registry, tag: str
) -> dict[str, dict[str, str]]:
    labels: dict[str, dict[str, str]] = {}
    for build in plan.images:
        if build.base is None or build.base not in base_digests:
            continue
        try:
            labels[build.name] = registry.labels(f"{build.repository}:{tag}")
        except RegistryError:
            labels[build.name] = {}
    return labels


def run_refresh(
    ctx: RunContext,
    request: RefreshRequest,
    *,
    log: Log,
    make_buildx: Callable[..., Buildx] = Buildx,
) -> tuple[BuildReport, tuple[UpstreamMove, ...]]:
    """Build what HEAD holds, never the working tree's edits (the caller's context is for
    HEAD), on the external bases' digests as the registry has them now."""
    with exclusive(ctx.git), contextlib.ExitStack() as stack:
        registry = stack.enter_context(open_registry(ctx))
        prepared = prepare(
            ctx,
            registry,
            # No git range: the content keys alone decide.
            scope=Scope(everything="nightly refresh", overrides=request.overrides),
            output=Output(push=request.push, secrets=request.secrets),
            keys=KeyUse(use_git=False, fresh_bases=True, force=request.force),
            guards=Guards(real_run=not request.dry_run),
            log=log,
        )
        digests = prepared.keys.base_digests if prepared.keys else {}
        previous = fetch_previous_labels(prepared.plan, digests, registry, "latest")
        moves = compute_moves(prepared.plan, digests, previous)
        for line in describe_moves(moves):
            log(line)
        if not prepared.plan.images:
            log("no upstream base moved and every content key is built: nothing to do")
        run = Run(jobs=request.jobs, dry_run=request.dry_run, sign=request.sign)
        report = execute(ctx, prepared, registry, run, log=log, make_buildx=make_buildx)
        return report, moves
