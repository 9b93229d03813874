"""`builder affected`: the images a change affects, and why."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from builder.context import RunContext, reconcile_policy
from builder.doctor import check_references
from builder.repo import Overrides
from builder.reports import KeyReport, Selection
from builder.workspace import select, with_triggered_strays


@dataclass(frozen=True, slots=True, kw_only=True)
class AffectedRequest:
    base: str | None = None
    reconcile: bool | None = None  # None: in CI
    overrides: Overrides = field(default_factory=Overrides)


def run_affected(ctx: RunContext, request: AffectedRequest) -> tuple[Selection, KeyReport | None]:
    # The preview of the working tree names files git ignores that a build would send.
    selection = select(
        ctx, base=request.base, overrides=request.overrides, strays=ctx.head.tree is None
    )
    # The cheap half of `builder doctor`: references that miss the repo's own images.
    findings = tuple(f.render() for f in check_references(selection.repo.graph))
    if findings:
        selection = replace(selection, warnings=(*selection.warnings, *findings))
    if not reconcile_policy(request.reconcile, ci=ctx.ci.active, pushing=False):
        return selection, None
    # Imported here: the registry client (requests, the docker SDK) is slow to import, and
    # a preview that does not reconcile never needs it.
    from builder.pipeline import current_branch, login_for, open_registry
    from builder.reconcile import load_state, reconcile, state_tags

    settings = selection.repo.settings
    with open_registry(ctx) as registry:
        registry.use_login(login_for(ctx, settings))
        state = load_state(
            registry, settings.prefix, state_tags(current_branch(ctx), settings.default_branch)
        )
        reconciled, report = reconcile(ctx.git, selection, registry, state=state)
    if report is not None and ctx.head.tree is None:
        reconciled = with_triggered_strays(ctx.git, reconciled, report.triggered)
    return reconciled, report
