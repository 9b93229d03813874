"""Running a build plan: ready images in parallel, dependants of a failure skipped."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path

from builder.bake import (
    Outputs,
    Resolved,
    ancestors_in_plan,
    compute_base_digest,
    compute_definition,
)
from builder.buildx import BakeResult, Buildx
from builder.errors import BuilderError
from builder.keys import key_tag
from builder.plan import BuildPlan, ImageBuild
from builder.reports import ImageResult

_IMMUTABLE_TAG_RE = re.compile(r":git-[0-9a-f]{7}$")
# A parent in one of these states has a pushed digest its dependants can build on.
_USABLE = frozenset({"built", "tagged", "unchanged"})

BuildOne = Callable[[ImageBuild, Mapping[str, ImageResult]], ImageResult]


def run_schedule(
    plan: BuildPlan,
    build_one: BuildOne,
    *,
    jobs: int = 2,
    on_start: Callable[[ImageBuild], None] | None = None,
    on_finish: Callable[[ImageResult], None] | None = None,
) -> dict[str, ImageResult]:
    """Build every image once its in-plan parents are built; skip the dependants of a failure.

    Like nox's parallel runner: a failed image never stops independent images.
    """
    pending = {b.name: b for b in plan.images}
    results: dict[str, ImageResult] = {}
    running: dict[Future[ImageResult], str] = {}

    def finish(result: ImageResult) -> None:
        results[result.name] = result
        if on_finish is not None:
            on_finish(result)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        while pending or running:
            progressed = True
            while progressed:  # settle skips first: they can cascade
                progressed = False
                for name, build in list(pending.items()):
                    bad = [
                        p
                        for p in build.requires
                        if p in results and results[p].status not in _USABLE
                    ]
                    if bad:
                        cause = bad[0]
                        why = results[cause].status
                        del pending[name]
                        finish(
                            ImageResult(
                                name=name,
                                status="skipped",
                                reason=f"parent {cause} {why}",
                                repository=build.repository,
                            )
                        )
                        progressed = True
            for name, build in list(pending.items()):
                if len(running) >= max(1, jobs):
                    break
                if all(results.get(p) is not None for p in build.requires):
                    del pending[name]
                    if on_start is not None:
                        on_start(build)
                    parents = {p: results[p] for p in build.requires}
                    running[pool.submit(build_one, build, parents)] = name
            if not running:
                if pending:  # cannot happen with a valid plan; never spin
                    for name in list(pending):
                        finish(ImageResult(name=name, status="skipped", reason="unreachable"))
                    pending.clear()
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                name = running.pop(future)
                try:
                    result = future.result()
                except Exception as exc:  # noqa: BLE001 - one image's crash must not stop the rest
                    result = ImageResult(
                        name=name,
                        status="failed",
                        reason=f"internal error: {exc}",
                        repository=plan.get(name).repository,
                    )
                finish(result)
    return results


@dataclass(frozen=True, slots=True, kw_only=True)
class BakeRunner:
    """Builds one image of a plan with one bake invocation."""

    buildx: Buildx
    plan: BuildPlan
    root: Path
    retries: int = 3
    backoff: float = 1.0
    on_line: Callable[[str, str], None] | None = None
    sleep: Callable[[float], None] = time.sleep
    # Reads back the platforms the registry holds for a pushed reference.
    verify: Callable[[str], tuple[str, ...]] | None = None
    # Turns `repo:tag` into the digest it points at, for parents built by another run.
    resolve: Callable[[str], str] | None = None
    # buildx's docker driver cannot push by digest: push under a per-platform staging tag.
    staging_tags: bool = False
    # Not pushing on the docker driver: name each result in the engine's image store. People
    # can run what they built, and a dependant's bake, which re-exports its in-plan parents
    # under their tags to link them by `target:`, finds the names existing. Two dependants
    # creating a missing name at once race, and one fails with "already exists".
    load: bool = False
    # The builder can attach attestations (buildx.Driver.attestations): False disables them.
    attestations: bool = True

    def definition(
        self, build: ImageBuild, parents: Mapping[str, ImageResult]
    ) -> tuple[dict[str, object], list[str]]:
        """Resolve what the bake of `build` needs now, then compute it (see bake.py)."""
        pins = self.pin_parents(build)
        base_parent = parents.get(build.base_parent or "")
        base_digest = compute_base_digest(
            build,
            parent=base_parent.digest if base_parent is not None else None,
            pin=pins.get(build.base_parent or ""),
            push=self.plan.push,
            now=self._points_at,
        )
        all_pins = {build.name: pins}
        if not self.plan.push:
            all_pins.update(
                (b.name, self.pin_parents(b))
                for b in ancestors_in_plan(build, self.plan)
                if b is not build
            )
        resolved = Resolved(
            parents={
                p: f"docker-image://{r.pinned}" for p, r in parents.items() if r.pinned is not None
            },
            pins=all_pins,
            base_digest=base_digest,
        )
        return compute_definition(
            build,
            self.plan,
            root=self.root,
            resolved=resolved,
            outputs=Outputs(
                staging_tags=self.staging_tags, load=self.load, attestations=self.attestations
            ),
        )

    def pin_parents(self, build: ImageBuild) -> dict[str, str]:
        """Contexts for parents another run built: their `git-<sha>` tag, as a digest."""
        pins: dict[str, str] = {}
        for parent, reference in build.pinned_references:
            repository = reference.rsplit(":", 1)[0]
            if self.resolve is None:
                pins[parent] = f"docker-image://{reference}"
                continue
            try:
                digest = self.resolve(reference)
            except BuilderError as exc:
                raise BuilderError(
                    f"parent {parent} is affected by this change but {reference} cannot be "
                    f"resolved ({exc.message}); build it first, e.g. in an earlier wave",
                ) from None
            pins[parent] = f"docker-image://{repository}@{digest}"
        return pins

    def retag(self, build: ImageBuild, digest: str) -> ImageResult:
        """Point this run's tags at the image its key already names; move only those that
        point elsewhere (never a pushed `git-<sha7>`), so a rerun pushes nothing."""
        moving, held = [], []
        for tag in build.tags:
            now = self._points_at(tag)
            if now == digest:
                held.append(tag)
            elif not (now and _IMMUTABLE_TAG_RE.search(tag)):
                moving.append(tag)
        key = key_tag(build.key or "")
        result = ImageResult(
            name=build.name,
            status="unchanged",
            reason=f"{key} already pushed; its tags are in place",
            repository=build.repository,
            digest=digest,
            tags=tuple(t for t in build.tags if t in held or t in moving),
            platforms=build.platforms,
        )
        if not moving:
            return result
        started = time.monotonic()
        error = self.buildx.imagetools_create([f"{build.repository}@{digest}"], moving)
        if error is not None:
            return replace(result, status="failed", reason=f"tagging failed: {error}")
        short = ", ".join(t.rsplit(":", 1)[1] for t in moving)
        return replace(
            result,
            status="tagged",
            reason=f"{key} already pushed; tagged {short}",
            seconds=time.monotonic() - started,
        )

    def _points_at(self, reference: str) -> str | None:
        if self.resolve is None:
            return None
        try:
            return self.resolve(reference)
        except BuilderError:
            return None  # absent, or unreadable: tagging says which

    def keep_immutable(self, build: ImageBuild) -> ImageBuild:
        """A commit's `git-<sha7>` tag, once pushed, is never moved: a rebuild of the same
        commit (a nightly refresh, a rerun) only moves the other tags."""
        kept = tuple(
            t for t in build.tags if not (_IMMUTABLE_TAG_RE.search(t) and self._points_at(t))
        )
        return build if kept == build.tags else replace(build, tags=kept)

    def __call__(self, build: ImageBuild, parents: Mapping[str, ImageResult]) -> ImageResult:
        if build.existing is not None and self.plan.push:
            return self.retag(build, build.existing)
        if self.plan.push and build.tags:
            build = self.keep_immutable(build)
        try:
            definition, targets = self.definition(build, parents)
        except BuilderError as exc:
            return ImageResult(
                name=build.name, status="failed", reason=exc.message, repository=build.repository
            )
        started = time.monotonic()
        result: BakeResult | None = None
        attempts = 0
        logs: list[str] = []
        on_line = self.on_line
        for attempt in range(1, self.retries + 1):
            attempts = attempt
            result = self.buildx.bake(
                definition,
                targets,
                on_line=(lambda line: on_line(build.name, line)) if on_line else None,
            )
            logs.append(result.log)
            if result.ok or not result.transient or attempt == self.retries:
                break
            self.sleep(self.backoff * 2 ** (attempt - 1))
        if result is None:  # retries >= 1 always runs once; this keeps mypy honest
            raise RuntimeError("no bake attempt was made")
        seconds = time.monotonic() - started
        if not result.ok:
            return ImageResult(
                name=build.name,
                status="failed",
                reason=result.error,
                repository=build.repository,
                log="\n".join(logs),
                attempts=attempts,
                seconds=seconds,
            )
        meta = result.metadata.get(build.target, {})
        digest = meta.get("containerimage.digest") if isinstance(meta, dict) else None
        if self.plan.push and not digest:
            return ImageResult(
                name=build.name,
                status="failed",
                reason="buildx reported no digest for the push; nothing to pin",
                repository=build.repository,
                log="\n".join(logs),
                attempts=attempts,
                seconds=seconds,
            )
        if self.plan.push and self.verify is not None and digest:
            try:
                held = self.verify(f"{build.repository}@{digest}")
            except BuilderError as exc:
                held, error = (), exc.message
            else:
                error = ""
            missing = missing_platforms(build.platforms, held)
            if missing:
                return ImageResult(
                    name=build.name,
                    status="failed",
                    reason=error or f"the registry lacks {', '.join(missing)} for {digest}",
                    repository=build.repository,
                    log="\n".join(logs),
                    attempts=attempts,
                    seconds=seconds,
                )
        return ImageResult(
            name=build.name,
            status="built",
            reason=", ".join(r.render() for r in build.reasons[:1]) or "requested",
            repository=build.repository,
            digest=digest if self.plan.push else None,
            tags=build.tags if self.plan.push or self.load else (),  # loaded: local tags
            platforms=build.platforms,
            log="\n".join(logs),
            attempts=attempts,
            seconds=seconds,
        )


def missing_platforms(wanted: Sequence[str], held: Sequence[str]) -> list[str]:
    """The wanted platforms a registry index lacks; `linux/arm64` is met by `linux/arm64/v8`."""
    return [p for p in wanted if not any(h == p or h.startswith(f"{p}/") for h in held)]


def mark_unchanged(plan: BuildPlan, results: dict[str, ImageResult]) -> dict[str, ImageResult]:
    merged = dict(results)
    for name in plan.unchanged:
        merged[name] = ImageResult(name=name, status="unchanged", reason="not affected")
    return merged


def as_planned(plan: BuildPlan) -> dict[str, ImageResult]:
    return {
        b.name: replace(
            ImageResult(name=b.name, status="planned", reason="dry run"),
            repository=b.repository,
            tags=b.tags,
            platforms=b.platforms,
        )
        for b in plan.images
    }
