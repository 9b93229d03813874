"""Running a build plan: ready images in parallel, dependants of a failure skipped."""

from __future__ import annotations

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
from builder.reports import ImageResult, TestResult

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
class ImageTester:
    """Runs an image's test on each platform it names, through the docker door."""

    buildx: Buildx
    # Told each platform's test result as it comes: image, result.
    on_test: Callable[[str, TestResult], None] | None = None
    clock: Callable[[], float] = time.monotonic

    def run_tests(self, build: ImageBuild, reference: str, *, pull: bool) -> tuple[TestResult, ...]:
        """Every tested platform in turn, each to its first failing command: a failure on
        one platform still shows whether the others pass."""
        results = []
        for platform in build.test_platforms:
            result = self.test_platform(build, reference, platform, pull=pull)
            if self.on_test is not None:
                self.on_test(build.name, result)
            results.append(result)
        return tuple(results)

    def test_platform(
        self, build: ImageBuild, reference: str, platform: str, *, pull: bool
    ) -> TestResult:
        spec = build.test
        if spec is None:  # the caller checked; this keeps mypy honest
            raise RuntimeError(f"{build.name} has no test")
        started = self.clock()

        def failed(detail: str, output: str = "", commands: int = 0) -> TestResult:
            return TestResult(
                platform=platform,
                verdict="failed",
                seconds=self.clock() - started,
                commands=commands,
                detail=detail,
                output=output,
            )

        if pull:
            error = self.buildx.pull(reference, platform)
            if error is not None:
                return failed(f"cannot pull the image: {error}")
        if spec.smoke is not None:
            try:
                default = self.buildx.default_command(reference)
            except BuilderError as exc:
                return failed(exc.message)
            if not default:
                return failed("the image has no default command (ENTRYPOINT or CMD) to smoke-test")
            runs = [(" ".join((*default, *spec.smoke)), (*default, *spec.smoke))]
        else:
            runs = [(command, ("/bin/sh", "-c", command)) for command in spec.commands]
        for number, (shown, argv) in enumerate(runs, 1):
            outcome = self.buildx.run_test(
                reference,
                platform,
                argv,
                env=spec.env,
                network=spec.network,
                timeout=spec.timeout,
            )
            if outcome.passed:
                continue
            if outcome.timed_out:
                return TestResult(
                    platform=platform,
                    verdict="timed out",
                    seconds=self.clock() - started,
                    commands=number,
                    detail=f"`{shown}` was killed after {spec.timeout}s",
                    output=outcome.output,
                )
            if outcome.error:
                return failed(f"`{shown}` could not run: {outcome.error}", outcome.output, number)
            return failed(f"`{shown}` exited {outcome.exit_code}", outcome.output, number)
        return TestResult(
            platform=platform,
            verdict="passed",
            seconds=self.clock() - started,
            commands=len(runs),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class BakeRunner:
    """Builds one image of a plan with one bake invocation."""

    buildx: Buildx
    plan: BuildPlan
    root: Path
    # Five tries, 15 s of waiting at most: Debian's registry (distribution 2.8, filesystem
    # storage) answers a HEAD with 500 while dockerd writes the same tag from another
    # connection, and an attested, multi-platform push met that three times in a row.
    retries: int = 5
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
    # Told each platform's test result as it comes: image, result.
    on_test: Callable[[str, TestResult], None] | None = None
    clock: Callable[[], float] = time.monotonic
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
            elif not (now and tag == build.immutable):
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
        kept = tuple(t for t in build.tags if not (t == build.immutable and self._points_at(t)))
        return build if kept == build.tags else replace(build, tags=kept)

    def __call__(self, build: ImageBuild, parents: Mapping[str, ImageResult]) -> ImageResult:
        if build.existing is not None and self.plan.push:
            if build.test is not None and not build.tested:
                return self.test_existing(build, build.existing)
            return self.retag(build, build.existing)
        if build.untested_parents:
            parent = build.untested_parents[0]
            return ImageResult(
                name=build.name,
                status="failed",
                reason=f"parent {parent} is pushed under its key but its tests never passed; "
                f"not built on it (build {parent} first: its tests run then)",
                repository=build.repository,
            )
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
        built = ImageResult(
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
        if build.test is None:
            return built
        if self.plan.push and digest:
            return self.test_pushed(build, built, digest)
        if self.load and build.tags:
            # Loaded into the engine's store under its tags: tested there, nothing pulled.
            tests = self.run_tests(build, build.tags[0], pull=False)
            return judge(built, tests)
        why = "not pushed and not loaded: this buildx driver keeps --no-push results in its cache"
        tests = tuple(
            TestResult(platform=p, verdict="not run", detail=why) for p in build.test_platforms
        )
        return replace(built, tests=tests)

    # -- tests -----------------------------------------------------------------------------

    def run_tests(self, build: ImageBuild, reference: str, *, pull: bool) -> tuple[TestResult, ...]:
        tester = ImageTester(buildx=self.buildx, on_test=self.on_test, clock=self.clock)
        return tester.run_tests(build, reference, pull=pull)

    def test_pushed(self, build: ImageBuild, result: ImageResult, digest: str) -> ImageResult:
        """Test what the bake pushed under its key tag alone, then move the held tags
        (and record the verdict) only when every platform passed."""
        started = self.clock()
        tests = self.run_tests(build, f"{build.repository}@{digest}", pull=True)
        judged = judge(result, tests)
        if judged.status == "failed" or self.plan.push_by_digest:
            # The key tag keeps a failed image addressable; no other tag names it.
            return replace(
                judged, tags=build.bake_tags, seconds=result.seconds + self.clock() - started
            )
        # The bake pushed the key tag; the held tags and the verdict are what move now.
        tagged = self.retag(self.with_verdict(replace(build, tags=build.held)), digest)
        seconds = result.seconds + self.clock() - started
        if tagged.status == "failed":
            return replace(judged, status="failed", reason=tagged.reason, seconds=seconds)
        return replace(judged, tags=build.tags, seconds=seconds)

    def test_existing(self, build: ImageBuild, digest: str) -> ImageResult:
        """An image its key already names, whose tests never passed for this test: test
        it and tag it on success, never rebuild it."""
        started = self.clock()
        key = key_tag(build.key or "")
        result = ImageResult(
            name=build.name,
            status="tagged",
            reason=f"{key} already pushed",
            repository=build.repository,
            digest=digest,
            tags=tuple(t for t in build.tags if t not in build.held),
            platforms=build.platforms,
        )
        judged = judge(result, self.run_tests(build, f"{build.repository}@{digest}", pull=True))
        if judged.status == "failed":
            return replace(judged, seconds=self.clock() - started)
        tagged = self.retag(self.with_verdict(build), digest)
        reason = tagged.reason.replace("already pushed", "already pushed; tests passed", 1)
        return replace(
            tagged,
            status="failed" if tagged.status == "failed" else "tagged",
            reason=reason,
            tests=judged.tests,
            tags=build.tags,
            seconds=self.clock() - started,
        )

    @staticmethod
    def with_verdict(build: ImageBuild) -> ImageBuild:
        """The tags to move once the tests passed: the held ones and the verdict."""
        if build.verdict is None:
            return build
        return replace(build, tags=(*build.tags, build.verdict))


def judge(result: ImageResult, tests: tuple[TestResult, ...]) -> ImageResult:
    """The result with its tests: failed, with the first failure's reason and output
    at the end of the log, when one platform's did not pass."""
    bad = [t for t in tests if not t.passed]
    if not bad:
        return replace(result, tests=tests)
    first = bad[0]
    word = "timed out" if first.verdict == "timed out" else "failed"
    more = f" (and on {', '.join(t.platform for t in bad[1:])})" if len(bad) > 1 else ""
    log = "\n".join(
        [result.log, *(f"--- test on {t.platform}: {t.detail}\n{t.output}" for t in bad)]
    ).strip("\n")
    return replace(
        result,
        status="failed",
        reason=f"test {word} on {first.platform}: {first.detail}{more}",
        tests=tests,
        log=log,
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
