"""`builder merge`: join per-platform pushes by digest into multi-arch tags, all or nothing."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from builder.buildx import Buildx
from builder.context import RunContext
from builder.errors import BuilderError, UserError
from builder.executor import BakeRunner, mark_unchanged, missing_platforms
from builder.keys import key_tag
from builder.pipeline import (
    Guards,
    KeyUse,
    Log,
    Output,
    Prepared,
    Scope,
    open_cosign,
    open_registry,
    prepare,
    record_state,
)
from builder.plan import ImageBuild
from builder.registry import Registry
from builder.repo import Overrides
from builder.reports import BuildReport, ImageResult, TestResult
from builder.supply import preflight, seal


@dataclass(frozen=True, slots=True, kw_only=True)
class MergeRequest:
    digests_dir: Path
    base: str | None = None
    everything: bool = False
    only: tuple[str, ...] = ()  # as given to the builds
    sign: bool = False  # cosign each merged index
    overrides: Overrides = field(default_factory=Overrides)


def load_digests(directory: Path) -> dict[str, dict[str, str]]:
    """image -> platform -> digest, from `<image>__<platforms>.digest` files (any depth)."""
    if not directory.is_dir():
        raise UserError(f"digests directory {directory} does not exist")
    found: dict[str, dict[str, str]] = {}
    for path in sorted(directory.rglob("*.digest")):
        image, sep, platforms = path.stem.rpartition("__")
        digest = path.read_text(encoding="utf-8").strip()
        if not sep or not digest.startswith("sha256:"):
            raise UserError("not a digest file builder wrote", file=str(path))
        for platform in platforms.split("+"):
            found.setdefault(image, {})[platform.replace("-", "/", 2)] = digest
    return found


def merge_one(
    build: ImageBuild, have: Mapping[str, str], buildx: Buildx, registry: Registry
) -> ImageResult:
    """Tag one image's per-platform digests as one index, or say why not: never a tag
    on an index with a platform missing. A build job writes its digest only when the
    image's tests passed on its platform, so a tested image gets its verdict tag too."""
    missing = [p for p in build.platforms if p not in have]
    tags = [*build.tags, *([build.verdict] if build.verdict else [])]
    if missing:
        why = " (its build failed, or its tests did)" if build.test is not None else ""
        error: str | None = f"refusing to tag: no digest for {', '.join(missing)}{why}"
    else:
        sources = sorted({f"{build.repository}@{have[p]}" for p in build.platforms})
        error = buildx.imagetools_create(sources, tags)
    digest = None
    if error is None:
        try:
            digest = registry.digest(build.tags[0])
            held = registry.platforms(f"{build.repository}@{digest}")
        except BuilderError as exc:
            error = exc.message
        else:
            lacking = missing_platforms(build.platforms, held)
            if lacking:
                error = f"the merged index lacks {', '.join(lacking)}"
    if error is not None:
        return ImageResult(
            name=build.name, status="failed", reason=error, repository=build.repository
        )
    return ImageResult(
        name=build.name,
        status="built",
        reason="merged " + ", ".join(build.platforms),
        repository=build.repository,
        digest=digest,
        tags=build.tags,
        platforms=build.platforms,
        tests=tuple(
            TestResult(platform=p, verdict="passed", detail="in its build job")
            for p in build.test_platforms
        ),
    )


def run_merge(
    ctx: RunContext,
    request: MergeRequest,
    *,
    log: Log,
    make_buildx: Callable[..., Buildx] = Buildx,
) -> BuildReport:
    with contextlib.ExitStack() as stack:
        registry = stack.enter_context(open_registry(ctx))
        prepared = prepare(
            ctx,
            registry,
            scope=Scope(
                base=request.base,
                everything="--all" if request.everything else None,
                only=request.only,
                overrides=request.overrides,
            ),
            output=Output(push=True),
            keys=KeyUse(),
            # Merging tags what the builds pushed: nothing of this checkout is sent.
            guards=Guards(real_run=True, sends_contexts=False),
            log=log,
        )
        report = merge_all(
            ctx, prepared, request.digests_dir, registry, log, make_buildx, sign=request.sign
        )
        record_state(registry, prepared, report, log)
        return report


def merge_all(
    ctx: RunContext,
    prepared: Prepared,
    digests_dir: Path,
    registry: Registry,
    log: Log,
    make_buildx: Callable[..., Buildx],
    *,
    sign: bool = False,
) -> BuildReport:
    plan = prepared.plan
    digests = load_digests(digests_dir)
    unknown = sorted(set(digests) - {b.name for b in plan.images})
    if unknown:
        raise UserError(
            f"digests for images this change does not build: {', '.join(unknown)}",
            hint="merge with the same --base/--head/--all/--only as the builds",
        )
    results: dict[str, ImageResult] = {}
    settings = prepared.selection.repo.settings
    credentials = ctx.credentials(settings.registry)
    with make_buildx(prepared.engine) as buildx:
        if credentials is not None:
            buildx.login(settings.registry, credentials.username, credentials.password)
        cosign = open_cosign(ctx, buildx) if sign else None
        # The per-platform builds attached the attestations; only cosign is checked here.
        supply = preflight(
            settings,
            plan,
            driver=None,
            registry=registry,
            cosign=cosign,
            ci=ctx.ci,
            root=ctx.git.root,
            log=log,
            signing=ctx.signing(),
        )
        tagger = BakeRunner(buildx=buildx, plan=plan, root=ctx.git.root, resolve=registry.digest)
        for build in plan.images:
            have = digests.get(build.name)
            if not have and build.existing is not None:
                # Its key is already pushed: no wave built it, this run tags it, unless its
                # tests never passed (the plan gives it build jobs, which test it).
                result = (
                    tagger.retag(build, build.existing)
                    if build.tag_only
                    else ImageResult(
                        name=build.name,
                        status="failed",
                        reason=f"{key_tag(build.key or '')} has no passing test verdict and "
                        "no build job tested it",
                        repository=build.repository,
                    )
                )
                results[build.name] = result
                log(f"{result.status} {build.name}: {result.reason}")
                continue
            if not have:
                continue  # built by another wave
            result = merge_one(build, have, buildx, registry)
            results[build.name] = result
            if result.status == "built":
                log(f"merged {build.name} -> {result.pinned}")
            else:
                log(f"FAILED {build.name}: {result.reason}")
        results = seal(plan, results, supply, registry=registry, cosign=cosign, log=log)
    return BuildReport(
        selection=prepared.selection,
        plan=plan,
        revision=prepared.revision,
        results=mark_unchanged(plan, results),
    )
