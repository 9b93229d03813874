"""`builder build`: select, plan, check the engine, log in, run, report."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from builder.buildx import Buildx
from builder.changes import Affected, AffectedImage, Reason
from builder.errors import ConfigError, UserError
from builder.executor import BakeRunner, ImageResult, as_planned, mark_unchanged, run_schedule
from builder.git import Git
from builder.model import Settings
from builder.plan import BuildPlan, Options, Revision, compute_plan, render_bake_file
from builder.reconcile import KeyReport, reconcile
from builder.registry import Registry
from builder.repo import Overrides
from builder.revisions import in_github_actions, is_ci, warning_lines
from builder.workspace import Selection, select

_VERSION_TAG_RE = re.compile(r"^v\d+\.\d+\.\d+$", re.ASCII)
_USERINFO_RE = re.compile(r"//[^/@]+@")
_SCP_REMOTE_RE = re.compile(r"^(?:[\w.-]+@)?(?P<host>[\w.-]+\.[\w.-]+):(?!//)(?P<path>.+)$")


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildRequest:
    base: str | None = None
    head: str | None = None
    everything: bool = False
    only: tuple[str, ...] = ()
    push: bool = True
    platforms: tuple[str, ...] | None = None
    cache: bool = True
    secrets: tuple[str, ...] = ()
    dry_run: bool = False
    jobs: int = 2
    allow_dirty: bool = False
    push_by_digest: bool = False
    digests_dir: Path | None = None
    reconcile: bool | None = None  # None: on in CI, off locally
    refresh: bool = False  # keys alone decide (the nightly job): git's diff is not asked
    force: bool = False  # with refresh: rebuild every image on an external base
    verbose: bool = False  # stream every build line as it comes, prefixed by the image
    overrides: Overrides = field(default_factory=Overrides)


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildReport:
    selection: Selection
    plan: BuildPlan
    revision: Revision
    results: dict[str, ImageResult]  # every image of the repo, in build order

    @property
    def failed(self) -> tuple[str, ...]:
        return tuple(n for n, r in self.results.items() if r.status == "failed")


def credentials_for(registry: str, environ: Mapping[str, str]) -> tuple[str, str] | None:
    """Registry credentials from the environment, never from argv."""
    pairs = [("BUILDER_REGISTRY_USER", "BUILDER_REGISTRY_PASSWORD")]
    if registry in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        pairs.insert(0, ("DOCKERHUB_USERNAME", "DOCKERHUB_TOKEN"))
    for user_key, secret_key in pairs:
        user, secret = environ.get(user_key), environ.get(secret_key)
        if user and secret:
            return user, secret
        if bool(user) != bool(secret):
            missing = secret_key if user else user_key
            raise ConfigError(f"{missing} is not set but {user_key if user else secret_key} is")
    return None


def check_secrets(secrets: tuple[str, ...], environ: Mapping[str, str]) -> None:
    """A secret whose source is missing must stop the run: BuildKit would silently mount
    nothing, and a cached step would even succeed on stale inputs."""
    for spec in secrets:
        fields = dict(field.split("=", 1) for field in spec.split(","))
        if "env" in fields and not environ.get(fields["env"]):
            raise UserError(
                f"--secret {spec}: environment variable {fields['env']} is not set or empty"
            )
        if "src" in fields and not Path(fields["src"]).is_file():
            raise UserError(f"--secret {spec}: file {fields['src']} does not exist")


def compute_source(environ: Mapping[str, str], remote: str | None) -> str | None:
    """The repository's web address for org.opencontainers.image.source, never with
    credentials: GitHub's own variables first, else the git remote made https."""
    server, repository = environ.get("GITHUB_SERVER_URL"), environ.get("GITHUB_REPOSITORY")
    if server and repository:
        return f"{server}/{repository}"
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


def compute_revision(
    git: Git,
    sha: str,
    *,
    environ: Mapping[str, str],
    settings: Settings,
    dirty: bool,
    is_head: bool,
) -> Revision:
    branch: str | None = None
    version_tag: str | None = None
    if in_github_actions(environ):
        ref_type, ref_name = environ.get("GITHUB_REF_TYPE"), environ.get("GITHUB_REF_NAME")
        if ref_type == "branch" and environ.get("GITHUB_EVENT_NAME") != "pull_request":
            branch = ref_name
        if ref_type == "tag" and ref_name and _VERSION_TAG_RE.fullmatch(ref_name):
            version_tag = ref_name
    elif is_head:
        branch = git.branch()
    if version_tag is None:
        version_tag = next((t for t in git.tags_at(sha) if _VERSION_TAG_RE.fullmatch(t)), None)
    created = git.commit_time(sha)
    return Revision(
        sha=sha,
        branch=branch,
        version_tag=version_tag,
        default_branch=settings.default_branch,
        source=compute_source(environ, git.remote_url()),
        created=created,
        epoch=int(datetime.fromisoformat(created).timestamp()),
        dirty=dirty,
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


def reconciles(request: BuildRequest, environ: Mapping[str, str]) -> bool:
    """On in CI, and for every real push: a push without content keys would leave the
    next CI run nothing to recognise, so it would build everything again."""
    if request.reconcile is not None:
        return request.reconcile
    pushing = request.push or request.push_by_digest
    return is_ci(environ) or (pushing and not request.dry_run)


def _already_pushed(git_affected: Affected, rebuilt: Affected, keys: KeyReport) -> dict[str, str]:
    """Images git says changed whose exact inputs the registry already holds (a branch
    built before its merge, a rerun): they get this run's tags, not a rebuild."""
    built = {i.name for i in rebuilt.images}
    return {
        i.name: keys.digests[i.name]
        for i in git_affected.images
        if i.name not in built and i.name in keys.digests
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


@dataclass(frozen=True, slots=True, kw_only=True)
class Prepared:
    selection: Selection
    revision: Revision
    plan: BuildPlan
    from_disk: bool  # the working tree holds exactly the head being built
    keys: KeyReport | None = None


def prepare(
    git: Git,
    request: BuildRequest,
    *,
    environ: Mapping[str, str],
    log: Callable[[str], None],
    before_registry: Callable[[], None] | None = None,
) -> Prepared:
    """Select, check the preconditions and plan: everything short of touching the engine.

    `before_registry` runs once the user's input passed its checks, before the registry
    is asked about content keys (not for --dry-run)."""
    selection = select(
        git,
        base=request.base,
        head=request.head,
        environ=environ,
        overrides=request.overrides,
        everything=request.everything,
    )
    settings = selection.repo.settings
    # The cheap checks of the user's input first, before asking any registry.
    if not request.dry_run:
        check_secrets(request.secrets, environ)
    _check_only(selection, request.only)
    head_now = git.head()
    head_sha = selection.range.head or head_now
    if head_sha is None:
        raise UserError("the repository has no commits to build", hint="commit first")
    tree_dirty = git.is_dirty()
    dirty = selection.range.head is None and tree_dirty
    is_head = selection.range.head in (None, head_now)
    # Build from the disk only when it holds exactly what we build; otherwise from a
    # throwaway worktree of the head commit, so tags never describe other files.
    from_disk = selection.range.head is None or (is_head and not tree_dirty)
    pushing = request.push or request.push_by_digest
    if dirty and pushing and not request.dry_run and not request.allow_dirty:
        raise UserError(
            "the working tree has uncommitted changes; refusing to push images "
            "that no commit describes",
            hint="commit first, or pass --allow-dirty to push -dirty tags",
        )
    if pushing and settings.namespace is None and settings.registry == "docker.io":
        raise ConfigError(
            "pushing to Docker Hub needs a namespace",
            file="builder.yaml",
            hint="set 'namespace: <your Docker Hub user or org>'",
        )
    keys = None
    existing: dict[str, str] = {}
    if request.refresh or reconciles(request, environ):
        if before_registry is not None and not request.dry_run:
            before_registry()
        graph = selection.repo.graph
        forced = (n for n in graph.order if graph.images[n].external_parents)
        reconciled, keys = reconcile(
            git,
            selection,
            credentials=credentials_for(settings.registry, environ),
            # A by-digest push is one platform's slice of the multi-arch image the key names.
            platforms=None if request.push_by_digest else request.platforms,
            use_git=not request.refresh,
            force=forced if request.force else (),
        )
        if request.refresh and keys is None:
            raise UserError(
                "refresh needs the registry and it could not be asked",
                hint="check the registry address and credentials",
            )
        if request.refresh or not request.everything:
            if (
                keys is not None
                and request.push
                and not (request.push_by_digest or request.refresh)
            ):
                existing = _already_pushed(selection.affected, reconciled.affected, keys)
            selection = replace(
                reconciled,
                affected=_with(reconciled.affected, selection.affected, existing, graph.order),
            )
        else:
            selection = replace(selection, warnings=reconciled.warnings)
    for warning in selection.warnings:
        for line in warning_lines(warning, environ):
            log(line)
    affected = selection.affected
    if request.only:
        affected = _narrow(affected, selection, request.only)
    revision = compute_revision(
        git, head_sha, environ=environ, settings=settings, dirty=dirty, is_head=is_head
    )
    plan = compute_plan(
        selection.repo.graph,
        affected,
        settings=settings,
        revision=revision,
        options=Options(
            push=pushing,
            push_by_digest=request.push_by_digest,
            platforms=request.platforms,
            cache=request.cache,
            secrets=request.secrets,
        ),
        everything_affected=selection.affected,
        keys=keys.keys if keys is not None else None,
        base_digests=keys.base_digests if keys is not None else None,
        existing=existing,
    )
    return Prepared(
        selection=selection, revision=revision, plan=plan, from_disk=from_disk, keys=keys
    )


def run_build(
    git: Git,
    request: BuildRequest,
    *,
    environ: Mapping[str, str],
    log: Callable[[str], None],
    make_buildx: Callable[[Mapping[str, str]], Buildx] = Buildx,
) -> BuildReport:
    with exclusive(git), contextlib.ExitStack() as stack:
        buildx: Buildx | None = None

        def engine_first() -> None:
            # Reconciling asks the registry; a daemon that is down is said before that.
            nonlocal buildx
            buildx = stack.enter_context(make_buildx(environ))
            buildx.connect()

        prepared = prepare(git, request, environ=environ, log=log, before_registry=engine_first)
        return execute(
            git,
            prepared,
            request,
            environ=environ,
            log=log,
            make_buildx=make_buildx,
            buildx=buildx,
        )


def execute(
    git: Git,
    prepared: Prepared,
    request: BuildRequest,
    *,
    environ: Mapping[str, str],
    log: Callable[[str], None],
    make_buildx: Callable[[Mapping[str, str]], Buildx] = Buildx,
    buildx: Buildx | None = None,
) -> BuildReport:
    """Run a prepared plan on the engine (or just report it for --dry-run), on `buildx`
    when the caller already opened one."""
    selection, revision, plan = prepared.selection, prepared.revision, prepared.plan
    if request.dry_run or not plan.images:
        results = mark_unchanged(plan, as_planned(plan) if request.dry_run else {})
        return BuildReport(selection=selection, plan=plan, revision=revision, results=results)
    settings = selection.repo.settings
    platforms = tuple(sorted({p for b in plan.images for p in b.platforms}))
    opened = contextlib.nullcontext(buildx) if buildx is not None else make_buildx(environ)
    with opened as engine:
        version = engine.check(platforms)
        log(f"engine: {version}")
        credentials = credentials_for(settings.registry, environ) if plan.push else None
        if credentials is not None:
            engine.login(settings.registry, *credentials)
            log(f"logged in to {settings.registry} as {credentials[0]}")
        with contextlib.ExitStack() as stack:
            root = (
                git.root if prepared.from_disk else stack.enter_context(git.checkout(revision.sha))
            )
            registry = Registry(environ, credentials=credentials) if plan.push else None
            if registry is not None:
                stack.callback(registry.close)
            runner = BakeRunner(
                buildx=engine,
                plan=plan,
                root=root,
                verify=registry.platforms if registry is not None else None,
                resolve=registry.digest if registry is not None else None,
                staging_tags=engine.driver == "docker",
                load=engine.driver == "docker" and not plan.push,
                on_line=(lambda name, line: log(f"{name} | {line}")) if request.verbose else None,
            )
            results = run_schedule(
                plan,
                runner,
                jobs=request.jobs,
                on_start=lambda b: log(
                    f"{'tagging' if b.existing else 'building'} {b.name} ({', '.join(b.platforms)})"
                ),
                on_finish=lambda r: _log_result(r, log, grouped=in_github_actions(environ)),
            )
    ordered = {b.name: results[b.name] for b in plan.images}
    if request.digests_dir is not None:
        write_digests(plan, ordered, request.digests_dir)
    return BuildReport(
        selection=selection,
        plan=plan,
        revision=revision,
        results=mark_unchanged(plan, ordered),
    )


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


def _log_result(result: ImageResult, log: Callable[[str], None], *, grouped: bool) -> None:
    if result.status == "built":
        where = f" -> {result.pinned}" if result.pinned else ""
        headline = f"built {result.name} in {result.seconds:.1f}s{where}"
    elif result.status == "failed":
        headline = f"FAILED {result.name}: {result.reason}"
    elif result.status in ("tagged", "unchanged"):
        headline = f"{result.status} {result.name}: {result.reason}"
    else:
        headline = f"skipped {result.name}: {result.reason}"
    if grouped and result.log:
        # GitHub Actions folds each image's whole build log under its result line.
        log(f"::group::{headline}")
        for line in result.log.splitlines():
            log(line)
        log("::endgroup::")
        if result.status == "failed":
            log(f"::error title=builder: {result.name} failed::{result.reason}")
        return
    log(headline)
    if result.status == "failed":
        for line in result.log.splitlines()[-25:]:
            log(f"  {result.name} | {line}")


def metadata_json(report: BuildReport) -> dict[str, Any]:
    images: dict[str, Any] = {}
    for name, result in report.results.items():
        images[name] = {
            "status": result.status,
            "reason": result.reason,
            "repository": result.repository or None,
            "tags": list(result.tags),
            "digest": result.digest,
            "pinned": result.pinned,
            "platforms": list(result.platforms),
        }
    return {
        "revision": report.revision.sha,
        "base": report.selection.range.base,
        "push": report.plan.push,
        "images": images,
        "removed": list(report.plan.removed),
    }


def write_metadata(report: BuildReport, path: Path) -> None:
    try:
        path.write_text(json.dumps(metadata_json(report), indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write the metadata file: {exc.strerror}", file=str(path)) from None


def render_dry_run(report: BuildReport, root: Path, out: IO[str]) -> None:
    plan = report.plan
    out.write(f"plan: {len(plan.images)} image(s), push={'yes' if plan.push else 'no'}\n")
    for number, wave in enumerate(plan.waves, 1):
        out.write(f"wave {number}: {', '.join(wave)}\n")
    for build in plan.images:
        out.write(f"  {build.name}: {', '.join(build.platforms)}\n")
        if build.existing is not None and plan.push:
            out.write(f"    already pushed as {build.existing}: tags only\n")
        for tag in build.tags:
            out.write(f"    tag {tag}\n")
    out.write("bake definition:\n")
    out.write(json.dumps(render_bake_file(plan, root=root), indent=2) + "\n")
