"""`builder build`: plan the affected images, build them with buildx, push, report."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from builder.buildx import Buildx
from builder.context import EngineOptions, RunContext
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
from builder.repo import Overrides
from builder.reports import BuildReport


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildRequest:
    base: str | None = None
    everything: bool = False
    only: tuple[str, ...] = ()
    push: bool = True
    platforms: tuple[str, ...] | None = None
    cache: bool = True
    secrets: tuple[str, ...] = ()
    dry_run: bool = False
    jobs: int = 2
    allow_dirty: bool = False
    # Send files git ignores that a build context keeps (generated artifacts): refused for a
    # push otherwise, since the key and tags would describe a commit that lacks them.
    include_ignored: bool = False
    push_by_digest: bool = False
    digests_dir: Path | None = None
    reconcile: bool | None = None  # None: in CI and for every real push
    verbose: bool = False
    sign: bool = False  # cosign each pushed index (COSIGN_KEY, or keyless in CI)
    overrides: Overrides = field(default_factory=Overrides)


def run_build(
    ctx: RunContext,
    request: BuildRequest,
    *,
    log: Log,
    make_buildx: Callable[..., Buildx] = Buildx,
) -> BuildReport:
    with exclusive(ctx.git), contextlib.ExitStack() as stack:
        registry = stack.enter_context(open_registry(ctx))
        buildx: Buildx | None = None

        def engine_first(engine: EngineOptions) -> None:
            # Reconciling asks the registry; a daemon that is down is said before that.
            nonlocal buildx
            buildx = stack.enter_context(make_buildx(engine))
            buildx.connect()

        prepared = prepare(
            ctx,
            registry,
            scope=Scope(
                base=request.base,
                everything="--all" if request.everything else None,
                only=request.only,
                overrides=request.overrides,
            ),
            output=Output(
                push=request.push,
                push_by_digest=request.push_by_digest,
                platforms=request.platforms,
                cache=request.cache,
                secrets=request.secrets,
            ),
            keys=KeyUse(reconcile=request.reconcile),
            guards=Guards(
                real_run=not request.dry_run,
                allow_dirty=request.allow_dirty,
                include_ignored=request.include_ignored,
            ),
            log=log,
            before_registry=engine_first,
        )
        return execute(
            ctx,
            prepared,
            registry,
            Run(
                jobs=request.jobs,
                verbose=request.verbose,
                dry_run=request.dry_run,
                digests_dir=request.digests_dir,
                sign=request.sign,
            ),
            log=log,
            buildx=buildx,
            make_buildx=make_buildx,
        )
