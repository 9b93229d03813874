"""The steps every building command shares: prepare a plan, then execute it on the engine.

`prepare` selects the images, checks the user's input, reconciles content keys with the
registry and computes the plan: everything short of touching the engine. `execute` runs
the plan with buildx, records what the registry now holds, and reports each image. The
commands (builder/commands/) say what to plan with small values of their own: `Scope`
(which images), `Output` (what the plan produces), `KeyUse` (how content keys take part)
and `Guards` (the checks a run that pushes makes before any work).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from builder.buildx import Buildx
from builder.changes import Affected, AffectedImage, Reason, printable
from builder.ci import CIFacts
from builder.context import EngineOptions, RunContext, reconcile_policy
from builder.cosign import Cosign
from builder.errors import ConfigError, RegistryError, UserError
from builder.executor import BakeRunner, as_planned, mark_unchanged, run_schedule
from builder.git import Git
from builder.model import Settings
from builder.plan import BuildPlan, ImageBuild, Options, Revision, compute_plan
from builder.reconcile import (
    State,
    load_state,
    reconcile,
    save_state,
    state_tags,
    updated_state,
)
from builder.refs import is_docker_hub
from builder.registry import Login, Registry
from builder.render.text import render_result_lines, render_test_line
from builder.repo import Overrides
from builder.reports import BuildReport, ImageResult, KeyReport, Selection
from builder.revisions import warning_lines
from builder.supply import explain_failure, preflight, seal
from builder.workspace import select, with_strays_found, with_triggered_strays

_VERSION_TAG_RE = re.compile(r"v\d+\.\d+\.\d+", re.ASCII)
_USERINFO_RE = re.compile(r"//[^/@]+@")
# `git@github.com:org/repo.git`. The host is one run of [\w.-] with a dot inside; written
# as `[\w.-]+\.[\w.-]+` the regex retried every dot of a long remote (seconds at 32 KB).
_SCP_REMOTE_RE = re.compile(
    r"^(?:[\w.-]++@)?(?P<host>(?=[\w.-]+\.[\w.-])[\w.-]++):(?!//)(?P<path>.+)$"
)

Log = Callable[[str], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class Scope:
    """Which images: those the range affects, or every image, then `only` these."""

    base: str | None = None
    everything: str | None = None  # why every image counts ("--all"); None: compare a range
    only: tuple[str, ...] = ()
    overrides: Overrides = field(default_factory=Overrides)


@dataclass(frozen=True, slots=True, kw_only=True)
class Output:
    """What the plan produces."""

    push: bool = True
    push_by_digest: bool = False  # untagged pushes, joined later by `builder merge`
    platforms: tuple[str, ...] | None = None  # overrides every image's platforms
    cache: bool = True
    secrets: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyUse:
    """How content keys take part in choosing what to build."""

    reconcile: bool | None = None  # None: the policy (context.reconcile_policy)
    use_git: bool = True  # False: the keys alone decide (the nightly refresh)
    fresh_bases: bool = False  # ask for every external base, not the state's digests
    force: bool = False  # rebuild every image on an external base, and dependants


@dataclass(frozen=True, slots=True, kw_only=True)
class Guards:
    """The checks a run makes before any work. A plan or a dry run builds nothing, so it
    only reports what a real run would refuse."""

    real_run: bool
    allow_dirty: bool = False
    include_ignored: bool = False
    sends_contexts: bool = True  # False for `merge`, which only tags what others pushed


@dataclass(frozen=True, slots=True, kw_only=True)
class Prepared:
    selection: Selection
    revision: Revision
    plan: BuildPlan
    engine: EngineOptions  # the command line's builder, else builder.yaml's
    keys: KeyReport | None = None
    state: State | None = None  # what the registry's state artifact said


def compute_source(ci: CIFacts, remote: str | None) -> str | None:
    """The repository's web address for org.opencontainers.image.source, never with
    credentials: the CI's own, else the git remote made https; None for what no browser
    opens."""
    if ci.source_url:
        return ci.source_url
    if not remote:
        return None
    scp = _SCP_REMOTE_RE.match(remote)
    if scp is not None:
        remote = f"https://{scp.group('host')}/{scp.group('path')}"
    elif remote.startswith(("ssh://", "git://")):
        remote = "https://" + remote.split("://", 1)[1]
    if not remote.startswith(("https://", "http://")):
        return None  # a local path or something else no browser opens
    return _USERINFO_RE.sub("//", remote).removesuffix(".git").rstrip("/")


def compute_revision(ctx: RunContext, settings: Settings) -> Revision:
    """What the commit being built earns: its branch and version tags, labels' facts."""
    git, head, ci = ctx.git, ctx.head, ctx.ci
    sha = head.commit
    if sha is None:
        raise UserError("the repository has no commits to build", hint="commit first")
    branch = current_branch(ctx)
    version_tag = ci.tag if ci.tag and _VERSION_TAG_RE.fullmatch(ci.tag) else None
    if version_tag is None:
        version_tag = next((t for t in git.tags_at(sha) if _VERSION_TAG_RE.fullmatch(t)), None)
    created = git.commit_time(sha)
    return Revision(
        sha=sha,
        branch=branch,
        version_tag=version_tag,
        default_branch=settings.default_branch,
        source=compute_source(ci, git.remote_url()),
        created=created,
        epoch=int(datetime.fromisoformat(created).timestamp()),
        dirty=head.dirty_build,
    )


@contextlib.contextmanager
def exclusive(git: Git) -> Iterator[None]:
    """One build per checkout at a time: a second run fails fast instead of racing."""
    path = git.git_dir() / "builder.lock"
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise UserError(
                f"another builder build is running in this checkout ({holder})",
                hint="wait for it to finish; builds in one checkout run one at a time",
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def open_registry(ctx: RunContext) -> Registry:
    """The run's one registry client; `prepare` gives it the run's login once builder.yaml
    said which registry that is for."""
    return Registry(docker_config=ctx.engine.docker_config)


def login_for(ctx: RunContext, settings: Settings) -> Login | None:
    credentials = ctx.credentials(settings.registry)
    if credentials is None:
        return None
    return Login(
        registry=settings.registry, username=credentials.username, password=credentials.password
    )


def current_branch(ctx: RunContext) -> str | None:
    """The branch being built: as the CI names it, else the checkout's when it is HEAD."""
    if ctx.ci.system in ("github", "gitlab", "jenkins"):
        return ctx.ci.branch
    return ctx.git.branch() if ctx.head.is_head else None


def _check_only(selection: Selection, only: tuple[str, ...]) -> None:
    unknown = sorted(set(only) - set(selection.repo.graph.images))
    if unknown:
        raise UserError(
            f"--only names unknown image(s): {', '.join(unknown)}",
            hint="known: " + ", ".join(sorted(selection.repo.graph.images)),
        )


def _narrow(affected: Affected, selection: Selection, only: tuple[str, ...]) -> Affected:
    """`affected` cut to `only` (names checked by `_check_only`), each named image kept."""
    wanted = {i.name: i for i in affected.images}
    images = tuple(
        wanted.get(n)
        or AffectedImage(
            name=n,
            path=selection.repo.graph.images[n].directory,
            reasons=(Reason(kind="all", note="--only"),),
        )
        for n in selection.repo.graph.order
        if n in only
    )
    return Affected(images=images, removed=affected.removed)


def _already_pushed(
    git_affected: Affected, rebuilt: Affected, keys: KeyReport, forced: frozenset[str]
) -> dict[str, str]:
    """Images whose exact inputs the registry already holds, which get this run's tags,
    not a rebuild: those git says changed (a branch built before its merge, a rerun), and
    those whose tests never passed for their key (tested first, then tagged)."""
    untested = keys.untested - forced
    built = {i.name for i in rebuilt.images if i.name not in untested}
    candidates = [*(i.name for i in git_affected.images), *sorted(untested)]
    return {
        name: keys.digests[name]
        for name in dict.fromkeys(candidates)
        if name not in built and name in keys.digests
    }


def _with(
    affected: Affected, git_affected: Affected, existing: Mapping[str, str], order: Sequence[str]
) -> Affected:
    """`affected` plus the `existing` images, with git's reasons, in graph order."""
    if not existing:
        return affected
    by_name = {i.name: i for i in git_affected.images if i.name in existing}
    by_name.update((i.name, i) for i in affected.images)
    return replace(affected, images=tuple(by_name[n] for n in order if n in by_name))


def _check_strays(selection: Selection) -> None:
    files = [p for paths in selection.strays.values() for p in paths]
    shown = ", ".join(printable(p) for p in files[:5])
    more = f" and {len(files) - 5} more" if len(files) > 5 else ""
    raise UserError(
        f"{len(files)} file(s) git ignores are in the build contexts of "
        f"{', '.join(selection.strays)}: {shown}{more}; refusing to push images that "
        "no commit describes",
        hint="delete them, or pass --include-ignored to send them (their content then "
        "counts in the content key, so CI's clean checkout never mistakes it for its own)",
    )


def prepare(
    ctx: RunContext,
    registry: Registry,
    *,
    scope: Scope,
    output: Output,
    keys: KeyUse,
    guards: Guards,
    log: Log,
    before_registry: Callable[[EngineOptions], None] | None = None,
) -> Prepared:
    """Select, check the preconditions and plan: everything short of touching the engine.

    `before_registry` runs once the user's input passed its checks, before the registry
    is asked about content keys (real runs only)."""
    git = ctx.git
    selection = select(
        ctx,
        base=scope.base,
        overrides=scope.overrides,
        everything=scope.everything,
        strays=guards.sends_contexts and ctx.head.from_disk,
    )
    settings = selection.repo.settings
    registry.use_login(login_for(ctx, settings))
    engine = ctx.engine if ctx.engine.builder else replace(ctx.engine, builder=settings.builder)
    pushing = output.push or output.push_by_digest
    # The cheap checks of the user's input first, before asking any registry.
    if guards.real_run:
        ctx.check_secret_sources(output.secrets)
    _check_only(selection, scope.only)
    revision = compute_revision(ctx, settings)
    if guards.real_run and pushing:
        if selection.strays and guards.sends_contexts and not guards.include_ignored:
            _check_strays(selection)
        if ctx.head.dirty_build and not guards.allow_dirty:
            raise UserError(
                "the working tree has uncommitted changes; refusing to push images "
                "that no commit describes",
                hint="commit first, or pass --allow-dirty to push -dirty tags",
            )
    if pushing and settings.namespace is None and is_docker_hub(settings.registry):
        raise ConfigError(
            "pushing to Docker Hub needs a namespace",
            file="builder.yaml",
            hint="set 'namespace: <your Docker Hub user or org>'",
        )
    report = None
    state = None
    existing: dict[str, str] = {}
    reconciling = not keys.use_git or reconcile_policy(
        keys.reconcile, ci=ctx.ci.active, pushing=pushing and guards.real_run
    )
    if reconciling:
        if before_registry is not None and guards.real_run:
            before_registry(engine)
        graph = selection.repo.graph
        state = load_state(
            registry, settings.prefix, state_tags(revision.branch, settings.default_branch)
        )
        forced = [n for n in graph.order if graph.images[n].external_parents]

        def reconcile_with(
            strays: Mapping[str, tuple[str, ...]],
        ) -> tuple[Selection, KeyReport | None]:
            sent = [p for ps in strays.values() for p in ps]
            return reconcile(
                git,
                selection,
                registry,
                # A by-digest push is one platform's slice of the multi-arch image the key
                # names.
                platforms=None if output.push_by_digest else output.platforms,
                use_git=keys.use_git,
                force=forced if keys.force else (),
                extra_ids=git.disk_ids(sent) if sent and guards.include_ignored else None,
                state=state,
                fresh_bases=keys.fresh_bases,
            )

        reconciled, report = reconcile_with(selection.strays)
        if report is not None and guards.sends_contexts and ctx.head.from_disk:
            widened = with_triggered_strays(git, reconciled, report.triggered)
            if widened.strays != reconciled.strays:
                if guards.real_run and pushing and not guards.include_ignored:
                    _check_strays(widened)
                if guards.include_ignored:  # the keys must count what the triggers send
                    first = report
                    reconciled, report = reconcile_with(widened.strays)
                    if report is not None and report.triggered != first.triggered:
                        # The strays were looked for with the first answer, the keys
                        # computed with this one: they would describe different builds.
                        raise RegistryError(
                            "the registry changed its answer about which bases have "
                            "ONBUILD triggers during the run",
                            hint="run again",
                        )
                    if report is not None:
                        report = replace(
                            report,
                            requests=first.requests + report.requests,
                            seconds=first.seconds + report.seconds,
                        )
                reconciled = with_strays_found(reconciled, widened.strays)
        if not keys.use_git and report is None:
            raise UserError(
                "refresh needs the registry and it could not be asked",
                hint="check the registry address and credentials",
            )
        if not keys.use_git or scope.everything is None:
            if report is not None and output.push and not output.push_by_digest:
                existing = _already_pushed(
                    selection.affected if keys.use_git else Affected(images=()),
                    reconciled.affected,
                    report,
                    graph.closure(forced) if keys.force else frozenset(),
                )
            selection = replace(
                reconciled,
                affected=_with(reconciled.affected, selection.affected, existing, graph.order),
            )
        else:
            selection = replace(selection, strays=reconciled.strays, warnings=reconciled.warnings)
    for warning in selection.warnings:
        for line in warning_lines(warning, ctx.ci):
            log(line)
    affected = selection.affected
    if scope.only:
        affected = _narrow(affected, selection, scope.only)
    plan = compute_plan(
        selection.repo.graph,
        affected,
        settings=settings,
        revision=revision,
        options=Options(
            push=pushing,
            push_by_digest=output.push_by_digest,
            platforms=output.platforms,
            cache=output.cache,
            secrets=output.secrets,
        ),
        everything_affected=selection.affected,
        keys=report.keys if report is not None else None,
        base_digests=report.base_digests if report is not None else None,
        existing=existing,
        tested=report.tested if report is not None else frozenset(),
        untested=report.untested if report is not None else frozenset(),
    )
    return Prepared(
        selection=selection,
        revision=revision,
        plan=plan,
        engine=engine,
        keys=report,
        state=state,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Run:
    """How a prepared plan runs."""

    jobs: int = 2
    verbose: bool = False  # stream every build line as it comes, prefixed by the image
    dry_run: bool = False
    digests_dir: Path | None = None
    sign: bool = False  # sign each pushed index with cosign once it is pushed (supply.py)


def execute(
    ctx: RunContext,
    prepared: Prepared,
    registry: Registry,
    run: Run,
    *,
    log: Log,
    buildx: Buildx | None = None,
    make_buildx: Callable[..., Buildx] = Buildx,
) -> BuildReport:
    """Run a prepared plan on the engine (or just report it for a dry run), on `buildx`
    when the caller already opened one."""
    selection, revision, plan = prepared.selection, prepared.revision, prepared.plan
    if run.dry_run or not plan.images:
        results = mark_unchanged(plan, as_planned(plan) if run.dry_run else {})
        report = BuildReport(selection=selection, plan=plan, revision=revision, results=results)
        if not run.dry_run:
            record_state(registry, prepared, report, log)
        return report
    settings = selection.repo.settings
    platforms = tuple(sorted({p for b in plan.images for p in b.platforms}))
    opened = contextlib.nullcontext(buildx) if buildx is not None else make_buildx(prepared.engine)
    with opened as engine:
        version = engine.check(platforms)
        log(f"engine: {version}")
        credentials = ctx.credentials(settings.registry) if plan.push else None
        if credentials is not None:
            engine.login(settings.registry, credentials.username, credentials.password)
            log(f"logged in to {settings.registry} as {credentials.username}")
        driver = engine.driver
        cosign = open_cosign(ctx, engine) if run.sign else None
        supply = preflight(
            settings,
            plan,
            driver=driver,
            registry=registry,
            cosign=cosign,
            ci=ctx.ci,
            root=ctx.git.root,
            log=log,
            signing=ctx.signing(),
        )
        with contextlib.ExitStack() as stack:
            root = (
                ctx.git.root
                if ctx.head.from_disk
                else stack.enter_context(ctx.git.checkout(revision.sha))
            )
            runner = BakeRunner(
                buildx=engine,
                plan=plan,
                root=root,
                verify=registry.platforms if plan.push else None,
                resolve=registry.digest if plan.push else None,
                staging_tags=driver is not None and not driver.pushes_by_digest,
                load=driver is not None and driver.loads and not plan.push,
                attestations=supply.attestations,
                on_line=(lambda name, line: log(f"{name} | {line}")) if run.verbose else None,
                on_test=lambda name, test: log(render_test_line(name, test)),
            )
            if not plan.push and driver is not None and not driver.loads:
                untested = [b.name for b in plan.images if b.test is not None]
                if untested:
                    log(
                        f"warning: the {driver.name} buildx driver keeps --no-push results in "
                        f"its build cache, out of the engine's reach: the tests of "
                        f"{', '.join(untested)} do not run (use a docker-driver builder)"
                    )
            results = run_schedule(
                plan,
                runner,
                jobs=run.jobs,
                on_start=lambda b: log(f"{_doing(b)} {b.name} ({', '.join(b.platforms)})"),
                on_finish=lambda r: log(
                    "\n".join(render_result_lines(explain_failure(r, supply), ctx.ci))
                ),
            )
        # Attestations read back and signatures made after the pushes, still logged in.
        results = seal(
            plan, results, supply, registry=registry, cosign=cosign, log=log, jobs=run.jobs
        )
    ordered = {b.name: results[b.name] for b in plan.images}
    if run.digests_dir is not None:
        write_digests(plan, ordered, run.digests_dir)
    report = BuildReport(
        selection=selection, plan=plan, revision=revision, results=mark_unchanged(plan, ordered)
    )
    record_state(registry, prepared, report, log)
    return report


def _doing(build: ImageBuild) -> str:
    if build.existing is None:
        return "building"
    return "tagging" if build.tag_only else "testing"


def open_cosign(ctx: RunContext, engine: Buildx) -> Cosign:
    """cosign with the run's signing environment and the engine's registry logins."""
    signing = ctx.signing()
    return Cosign(
        environ=signing.environ,
        docker_config=engine.docker_config,
        cwd=ctx.git.root,
        secrets=tuple(s for s in (signing.key, signing.password) if s),
    )


def record_state(registry: Registry, prepared: Prepared, report: BuildReport, log: Log) -> None:
    """After a push, the state artifact learns every key now in the registry, so the next
    run asks only about what changed. Best effort: without it reconcile asks per image."""
    plan, keys = prepared.plan, prepared.keys
    if not plan.push or plan.push_by_digest or keys is None:
        return
    pushed = dict(keys.digests)
    pushed.update(
        (name, result.digest)
        for name, result in report.results.items()
        if result.status in ("built", "tagged") and result.digest
    )
    passed = frozenset(
        name
        for name, result in report.results.items()
        if result.status in ("built", "tagged")
        and result.tests
        and all(t.passed for t in result.tests)
    )
    state = updated_state(
        prepared.state,
        keys,
        pushed,
        passed,
        revision=prepared.revision.sha,
        # A push past refused strays sent them (--include-ignored): its keys count them.
        describes_revision=not prepared.revision.dirty and not prepared.selection.strays,
    )
    if state == prepared.state:
        return
    settings = prepared.selection.repo.settings
    tag = state_tags(prepared.revision.branch, settings.default_branch)[0]
    try:
        save_state(registry, settings.prefix, tag, state)
    except UserError as exc:
        log(f"warning: could not record the reconcile state ({exc.message}); next run asks more")


def digest_file_name(image: str, platforms: tuple[str, ...]) -> str:
    return f"{image}__{'+'.join(p.replace('/', '-') for p in platforms)}.digest"


def write_digests(plan: BuildPlan, results: Mapping[str, ImageResult], directory: Path) -> None:
    """One file per built image: what `builder merge` joins into multi-arch tags."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for build in plan.images:
            result = results.get(build.name)
            if result is not None and result.status == "built" and result.digest:
                path = directory / digest_file_name(build.name, build.platforms)
                path.write_text(result.digest + "\n", encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write digests: {exc.strerror}", file=str(directory)) from None
