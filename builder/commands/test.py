"""`builder test`: run the tests of images already built, without building, for debugging.

Each selected image with a test is tested as its content key names it (the image this
commit builds, pushed whether or not its tests passed), else as its `git-<sha7>` tag,
or as `--ref TAG|DIGEST` says. Nothing is built, tagged or recorded: a passing run here
moves no tag (the next `builder build` re-tests and tags the image).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from builder.buildx import Buildx
from builder.context import RunContext
from builder.errors import BuilderError, UserError
from builder.executor import ImageTester, judge
from builder.keys import key_tag
from builder.pipeline import (
    Guards,
    KeyUse,
    Log,
    Output,
    Prepared,
    Scope,
    login_for,
    open_registry,
    prepare,
)
from builder.plan import ImageBuild, compute_tags
from builder.refs import TAG_RE
from builder.registry import Registry
from builder.render.text import render_test_line
from builder.repo import Overrides
from builder.reports import ImageResult


@dataclass(frozen=True, slots=True, kw_only=True)
class TestRequest:
    __test__ = False  # pytest: a request, not a test class

    only: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()  # narrows each image's tested platforms
    ref: str | None = None  # a tag or `sha256:` digest in every image's repository
    local: bool = False  # the images are in the engine's store (a --no-push build)
    overrides: Overrides = field(default_factory=Overrides)


_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


def parse_ref(text: str) -> str:
    """`--ref`: a tag, or a digest, that every selected image's repository holds."""
    if not (TAG_RE.fullmatch(text) or _DIGEST_RE.fullmatch(text)):
        raise UserError(
            f"--ref {text!r} is neither a tag nor a digest",
            hint="e.g. --ref git-0123abc or --ref sha256:<64 hex>",
        )
    return text


def compute_reference(
    build: ImageBuild, ref: str | None, key_digest: str | None, revision_tag: str
) -> tuple[str, str]:
    """The image to test and the tag it is resolved from: `--ref`, else the digest this
    commit's content key names, else the commit's `git-<sha7>` tag."""
    if ref is not None:
        separator = "@" if ref.startswith("sha256:") else ":"
        return f"{build.repository}{separator}{ref}", ref
    if key_digest:
        return f"{build.repository}@{key_digest}", key_tag(build.key or "")
    return f"{build.repository}:{revision_tag}", revision_tag


def run_test(
    ctx: RunContext,
    request: TestRequest,
    *,
    log: Log,
    make_buildx: Callable[..., Buildx] = Buildx,
) -> dict[str, ImageResult]:
    """Each selected image's test result, in build order; images without a test (on the
    requested platforms) are left out."""
    with contextlib.ExitStack() as stack:
        registry = stack.enter_context(open_registry(ctx))

        def prepared_with(keys: bool, log: Log) -> Prepared:
            return prepare(
                ctx,
                registry,
                scope=Scope(
                    everything="builder test", only=request.only, overrides=request.overrides
                ),
                output=Output(push=True),
                keys=KeyUse(reconcile=keys),
                guards=Guards(real_run=False, sends_contexts=False),
                log=log,
            )

        # What to test is known without the registry: a selection with nothing to test
        # fails before any request. The keys (which image this commit builds) come next;
        # --ref and --local need none.
        keyed = request.ref is None and not request.local
        prepared = prepared_with(keys=False, log=(lambda _line: None) if keyed else log)
        builds = _tested_builds(prepared, request)
        if not builds:
            return {}
        if keyed:  # the same selection again, its warnings said once
            prepared = prepared_with(keys=True, log=log)
            builds = _tested_builds(prepared, request)
        buildx = stack.enter_context(make_buildx(prepared.engine))
        log(f"engine: {buildx.check(tuple(sorted({p for b in builds for p in b.test_platforms})))}")
        settings = prepared.selection.repo.settings
        login = login_for(ctx, settings)
        if login is not None and not request.local:
            buildx.login(login.registry, login.username, login.password)
        tester = ImageTester(buildx=buildx, on_test=lambda name, t: log(render_test_line(name, t)))
        results = {}
        for build in builds:
            results[build.name] = _test_one(build, prepared, registry, tester, request, log)
        return results


def _tested_builds(prepared: Prepared, request: TestRequest) -> list[ImageBuild]:
    builds = []
    for build in prepared.plan.images:
        if build.test is None:
            continue
        platforms = build.test_platforms
        if request.platforms:
            platforms = tuple(p for p in platforms if p in request.platforms)
        if platforms:
            builds.append(replace(build, test_platforms=platforms))
    if request.only and not builds:
        raise UserError(
            f"{', '.join(request.only)}: no test to run"
            + (f" on {', '.join(request.platforms)}" if request.platforms else ""),
            hint="add test: to the image's image.yaml, or smoke_test: to builder.yaml",
        )
    return builds


def _test_one(
    build: ImageBuild,
    prepared: Prepared,
    registry: Registry,
    tester: ImageTester,
    request: TestRequest,
    log: Log,
) -> ImageResult:
    keys = prepared.keys
    digest = keys.digests.get(build.name) if keys is not None else None
    revision_tag = compute_tags(prepared.revision)[0]
    reference, source = compute_reference(build, request.ref, digest, revision_tag)
    result = ImageResult(
        name=build.name,
        status="unchanged",  # nothing built or moved
        reason=f"tested {source}",
        repository=build.repository,
        digest=digest,
        platforms=build.platforms,
    )
    if not request.local and "@" not in reference:
        try:
            result = replace(result, digest=registry.digest(reference))
        except BuilderError as exc:
            return replace(result, status="failed", reason=f"nothing to test: {exc.message}")
    log(f"testing {build.name}: {reference}")
    return judge(result, tester.run_tests(build, reference, pull=not request.local))
