"""`builder plan`: the build plan in dependency waves, for people or a CI fan-out."""

from __future__ import annotations

from dataclasses import dataclass, field

from builder.context import RunContext
from builder.errors import UserError
from builder.pipeline import Guards, KeyUse, Log, Output, Prepared, Scope, open_registry, prepare
from builder.repo import Overrides


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanRequest:
    base: str | None = None
    everything: bool = False
    only: tuple[str, ...] = ()
    platforms: tuple[str, ...] | None = None
    max_generations: int | None = None
    overrides: Overrides = field(default_factory=Overrides)


def run_plan(ctx: RunContext, request: PlanRequest, *, log: Log) -> Prepared:
    """The plan a push would run, computed without building: a dirty tree is fine."""
    with open_registry(ctx) as registry:
        prepared = prepare(
            ctx,
            registry,
            scope=Scope(
                base=request.base,
                everything="--all" if request.everything else None,
                only=request.only,
                overrides=request.overrides,
            ),
            output=Output(push=True, platforms=request.platforms),
            keys=KeyUse(),
            # A plan sends nothing: files on the disk are the build's business.
            guards=Guards(real_run=False, sends_contexts=False),
            log=log,
        )
    waves = len(prepared.plan.waves)
    if request.max_generations is not None and waves > request.max_generations:
        raise UserError(
            f"the plan has {waves} dependency waves, more than "
            f"--max-generations {request.max_generations}",
            hint="add wave jobs to the workflow",
        )
    return prepared
