"""The command line: translate arguments into calls and errors into exit codes."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from builder import __version__
from builder.errors import EXIT_BUG, BuilderError
from builder.repo import Overrides

if TYPE_CHECKING:
    from builder.ci import CIFacts
    from builder.context import RunContext
    from builder.publish import ReportFiles
    from builder.reports import BuildReport

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help="Build only the container images a git change affects, in dependency order.",
)

T = TypeVar("T")


class AffectedFormat(StrEnum):
    table = "table"
    json = "json"
    names = "names"


class GraphFormat(StrEnum):
    tree = "tree"
    json = "json"
    mermaid = "mermaid"
    dot = "dot"


def warn(message: str, ci: CIFacts) -> None:
    from builder.revisions import warning_lines

    for line in warning_lines(message, ci):
        typer.echo(line, err=True)


def check_ci_files(ci: CIFacts, reports: ReportFiles | None = None) -> None:
    """Fail before any work, not after a long build, when a CI file cannot be written."""
    from builder.publish import check_report_files, check_writable

    check_writable(ci)
    if reports is not None:
        check_report_files(reports)


def log(line: str) -> None:
    typer.echo(line, err=True)


def context(repo: Path, *, head: str | None = None, builder: str | None = None) -> RunContext:
    """The run context: the one place a command's run reads the environment."""
    from builder.context import compute_context

    return compute_context(repo, os.environ, head=head, builder=builder)


def guarded(action: Callable[[], T]) -> T:
    """Run a command body: builder's errors become one line and their exit code."""
    try:
        return action()
    except BuilderError as exc:
        from builder.ci import compute_ci_facts
        from builder.publish import write_summary

        typer.echo(f"error: {exc.render()}", err=True)
        ci = compute_ci_facts(os.environ)
        if ci.annotations and exc.file:
            line = f",line={exc.line}" if exc.line else ""
            hint = f" ({exc.hint})" if exc.hint else ""
            typer.echo(f"::error file={exc.file}{line}::{exc.message}{hint}", err=True)
        if ci.annotations and exc.exit_code == 2:
            # The job page says why nothing was built, not just the log.
            with contextlib.suppress(BuilderError):
                write_summary(f"## builder: error\n\n> [!CAUTION]\n> `{exc.render()}`\n\n", ci)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        typer.echo("error: interrupted", err=True)
        raise typer.Exit(130) from None
    except BrokenPipeError:
        # The reader went away (`| head`): what it wanted it has; say nothing more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(0) from None
    except typer.Exit:
        raise
    except Exception as exc:
        typer.echo(
            f"error: internal error: {type(exc).__name__}: {exc} "
            "(this is a bug in builder; please report it)",
            err=True,
        )
        if os.environ.get("BUILDER_DEBUG"):
            raise
        raise typer.Exit(EXIT_BUG) from None


BaseOpt = Annotated[
    str | None,
    typer.Option(
        "--base", help="Compare from this revision. Default: HEAD~1, or the CI event's base."
    ),
]
HeadOpt = Annotated[
    str | None,
    typer.Option("--head", help="Compare to this revision. Default: the working tree; HEAD in CI."),
]
RegistryOpt = Annotated[
    str | None,
    typer.Option("--registry", envvar="BUILDER_REGISTRY", help="Override builder.yaml's registry."),
]
NamespaceOpt = Annotated[
    str | None,
    typer.Option(
        "--namespace", envvar="BUILDER_NAMESPACE", help="Override builder.yaml's namespace."
    ),
]
ReconcileOpt = Annotated[
    bool | None,
    typer.Option(
        "--reconcile/--no-reconcile",
        help="Also count images whose content key the registry lacks. Default: on in CI.",
        show_default=False,
    ),
]
SecretOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--secret",
        help="BuildKit secret for RUN --mount=type=secret: id=NAME,env=VAR or id=NAME,src=PATH",
    ),
]
BuilderOpt = Annotated[
    str | None,
    typer.Option(
        "--builder",
        help="The buildx builder to build on (docker buildx ls); beats builder.yaml's 'builder'.",
    ),
]
JunitFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--junit-file",
        help="Write a JUnit report, a test case per image. Default under GitLab CI and "
        "Jenkins: builder-junit.xml.",
    ),
]
DotenvFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--dotenv-file",
        help="Write the outputs as a dotenv report. Default under GitLab CI and Jenkins: "
        "builder.env.",
    ),
]
SignOpt = Annotated[
    bool,
    typer.Option(
        "--sign",
        help="Sign each pushed image's index with cosign: COSIGN_KEY/COSIGN_PASSWORD from "
        "the environment, else keyless with the CI's OIDC token.",
    ),
]
RepoOpt = Annotated[
    Path,
    typer.Option("--repo", "-C", help="Run as if started in this directory.", show_default=False),
]


def at_least_one(value: int | None, flag: str) -> None:
    """Typer's own range check prints a usage box; builder's errors are one line."""
    from builder.errors import UserError

    if value is not None and value < 1:
        raise UserError(f"{flag} must be at least 1, got {value}")


def names_of(values: list[str] | None) -> tuple[str, ...]:
    """`--only` values; an empty one is usually an unset variable in a CI script."""
    from builder.errors import UserError

    for value in values or ():
        if not value.strip():
            raise UserError(f"--only {value!r} names no image", hint="give an image name")
    return tuple(values or ())


def check_output(path: Path | None, flag: str, *, directory: bool = False) -> None:
    """Fail before any work, not after a long build, when a result cannot be written."""
    from builder.errors import UserError

    if path is None:
        return
    if directory:
        if path.exists() and not path.is_dir():
            raise UserError(f"{flag} {path} is not a directory")
        return
    if path.is_dir():
        raise UserError(f"{flag} {path} is a directory", hint="name a file to write")
    if not path.parent.is_dir():
        raise UserError(
            f"{flag} {path}: directory {path.parent} does not exist", hint="create it first"
        )


def platforms_of(values: list[str] | None) -> tuple[str, ...]:
    from builder.config import validate_platform

    return tuple(
        validate_platform(p.strip(), source="--platform")
        for value in values or ()
        for p in value.split(",")
    )


def overrides_of(registry: str | None, namespace: str | None) -> Overrides:
    from builder.config import validate_namespace, validate_registry

    return Overrides(
        registry=validate_registry(registry, source="--registry") if registry else None,
        namespace=validate_namespace(namespace, source="--namespace") if namespace else None,
    )


@app.command()
def affected(
    base: BaseOpt = None,
    head: HeadOpt = None,
    fmt: Annotated[AffectedFormat, typer.Option("--format", "-f")] = AffectedFormat.table,
    reconcile: ReconcileOpt = None,
    explain: Annotated[
        bool, typer.Option("--explain", help="Show, for every image, which rule fired.")
    ] = False,
    registry: RegistryOpt = None,
    namespace: NamespaceOpt = None,
    repo: RepoOpt = Path(),
) -> None:
    """List the images a change affects, and why."""
    from builder.commands.affected import AffectedRequest, run_affected
    from builder.render.text import render_affected, render_explain

    def body() -> None:
        ctx = context(repo, head=head)
        request = AffectedRequest(
            base=base, reconcile=reconcile, overrides=overrides_of(registry, namespace)
        )
        selection, keys = run_affected(ctx, request)
        for message in selection.warnings:
            warn(message, ctx.ci)
        if explain and fmt is AffectedFormat.table:
            typer.echo(render_explain(selection, keys))
            return
        text = render_affected(selection, fmt.value, keys)
        if text:
            typer.echo(text)

    guarded(body)


@app.command()
def graph(
    fmt: Annotated[GraphFormat, typer.Option("--format", "-f")] = GraphFormat.tree,
    rev: Annotated[
        str | None, typer.Option("--rev", help="Read this revision instead of the working tree.")
    ] = None,
    registry: RegistryOpt = None,
    namespace: NamespaceOpt = None,
    repo: RepoOpt = Path(),
) -> None:
    """Print the dependency graph of the repo's images."""
    from builder.commands.graph import run_graph
    from builder.git import Git
    from builder.render.text import render_graph

    def body() -> None:
        git = Git.discover(repo, environ=os.environ)
        graph, findings = run_graph(git, rev=rev, overrides=overrides_of(registry, namespace))
        for finding in findings:
            typer.echo(f"warning: {finding.render()}", err=True)
        typer.echo(render_graph(graph, fmt.value))

    guarded(body)


@app.command()
def doctor(
    rev: Annotated[
        str | None, typer.Option("--rev", help="Read this revision instead of the working tree.")
    ] = None,
    registry: RegistryOpt = None,
    namespace: NamespaceOpt = None,
    repo: RepoOpt = Path(),
) -> None:
    """Check that builder reads the repo as its Dockerfiles mean it; exit 1 on an error."""
    from builder.commands.doctor import run_doctor
    from builder.errors import BuildFailed
    from builder.git import Git
    from builder.render.text import render_findings

    def body() -> None:
        git = Git.discover(repo, environ=os.environ)
        report = run_doctor(git, rev=rev, overrides=overrides_of(registry, namespace))
        typer.echo(render_findings(report.findings, report.graph))
        if report.errors:
            raise BuildFailed(f"{report.errors} error(s) found")

    guarded(body)


@app.command()
def build(
    base: BaseOpt = None,
    head: HeadOpt = None,
    everything: Annotated[
        bool, typer.Option("--all", help="Build every image, not only the affected ones.")
    ] = False,
    only: Annotated[
        list[str] | None, typer.Option("--only", help="Build just these images (repeatable).")
    ] = None,
    push: Annotated[
        bool,
        typer.Option(
            "--push/--no-push",
            help="Push to the registry. Not pushing on buildx's docker driver loads the "
            "images into the engine's image store instead.",
        ),
    ] = True,
    platform: Annotated[
        list[str] | None,
        typer.Option("--platform", help="Override the platforms (repeatable or comma-separated)."),
    ] = None,
    cache: Annotated[
        bool,
        typer.Option(
            "--cache/--no-cache",
            help="Registry build cache per image (cache-from/cache-to); "
            "BuildKit's local cache is used either way.",
        ),
    ] = True,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan and bake definition; touch nothing.")
    ] = False,
    secret: SecretOpt = None,
    metadata_file: Annotated[
        Path | None,
        typer.Option("--metadata-file", help="Write tags, digests and status per image as JSON."),
    ] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Images built at once.")] = 2,
    allow_dirty: Annotated[
        bool, typer.Option("--allow-dirty", help="Push from a dirty working tree (-dirty tags).")
    ] = False,
    include_ignored: Annotated[
        bool,
        typer.Option(
            "--include-ignored",
            help="Push although build contexts hold files git ignores (generated artifacts); "
            "they count in the content key.",
        ),
    ] = False,
    push_by_digest: Annotated[
        bool,
        typer.Option(
            "--push-by-digest",
            help="Push untagged, by digest (one platform per runner); join with `builder merge`.",
        ),
    ] = False,
    digests_dir: Annotated[
        Path | None,
        typer.Option("--digests-dir", help="Write each pushed digest here for `builder merge`."),
    ] = None,
    reconcile: ReconcileOpt = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Stream every build line as it comes.")
    ] = False,
    registry: RegistryOpt = None,
    namespace: NamespaceOpt = None,
    builder: BuilderOpt = None,
    junit_file: JunitFileOpt = None,
    dotenv_file: DotenvFileOpt = None,
    sign: SignOpt = False,
    repo: RepoOpt = Path(),
) -> None:
    """Build (and push) the affected images for linux/amd64 and linux/arm64."""
    from builder.bake import Outputs
    from builder.commands.build import BuildRequest, run_build
    from builder.plan import parse_secret
    from builder.publish import report_files
    from builder.render.text import render_dry_run

    def body() -> None:
        at_least_one(jobs, "--jobs")
        check_output(metadata_file, "--metadata-file")
        check_output(digests_dir, "--digests-dir", directory=True)
        platforms = platforms_of(platform)
        request = BuildRequest(
            base=base,
            everything=everything,
            only=names_of(only),
            push=push,
            platforms=platforms or None,
            cache=cache,
            secrets=tuple(parse_secret(s) for s in secret or ()),
            dry_run=dry_run,
            jobs=jobs,
            allow_dirty=allow_dirty,
            include_ignored=include_ignored,
            push_by_digest=push_by_digest,
            digests_dir=digests_dir,
            reconcile=reconcile,
            verbose=verbose,
            sign=sign,
            overrides=overrides_of(registry, namespace),
        )
        ctx = context(repo, head=head, builder=builder)
        files = report_files(ctx.ci, metadata=metadata_file, junit=junit_file, dotenv=dotenv_file)
        check_ci_files(ctx.ci, files)
        report = run_build(ctx, request, log=log)
        if dry_run:
            hand_off(report, metadata_file, ctx.ci, show=False, reports=files)
            # What a docker-driver run would bake; the driver is not asked in a dry run.
            outputs = Outputs(staging_tags=push_by_digest, load=not push)
            sys.stdout.write(render_dry_run(report, ctx.git.root, outputs))
            return
        hand_off(report, metadata_file, ctx.ci, reports=files)

    guarded(body)


class PlanFormat(StrEnum):
    table = "table"
    json = "json"
    github_matrix = "github-matrix"
    gitlab_ci = "gitlab-ci"


@app.command()
def plan(
    base: BaseOpt = None,
    head: HeadOpt = None,
    everything: Annotated[bool, typer.Option("--all", help="Plan every image.")] = False,
    only: Annotated[list[str] | None, typer.Option("--only", help="Plan just these.")] = None,
    platform: Annotated[
        list[str] | None, typer.Option("--platform", help="Override the platforms.")
    ] = None,
    fmt: Annotated[PlanFormat, typer.Option("--format", "-f")] = PlanFormat.table,
    max_generations: Annotated[
        int | None,
        typer.Option(
            "--max-generations",
            help="Fail when the plan has more dependency waves (a fan-out workflow's jobs).",
        ),
    ] = None,
    registry: RegistryOpt = None,
    namespace: NamespaceOpt = None,
    repo: RepoOpt = Path(),
) -> None:
    """Print the build plan: waves of images, for people, as a GitHub Actions matrix or as
    a GitLab CI child pipeline."""
    from builder.commands.plan import PlanRequest, run_plan
    from builder.publish import write_outputs
    from builder.render.data import plan_json
    from builder.render.github import compute_matrix, compute_matrix_outputs, matrix_json
    from builder.render.text import render_plan_table

    def body() -> None:
        at_least_one(max_generations, "--max-generations")
        platforms = platforms_of(platform)
        request = PlanRequest(
            base=base,
            everything=everything,
            only=names_of(only),
            platforms=platforms or None,
            max_generations=max_generations,
            overrides=overrides_of(registry, namespace),
        )
        ctx = context(repo, head=head)
        check_ci_files(ctx.ci)
        the_plan = run_plan(ctx, request, log=log).plan
        matrix = compute_matrix(the_plan)
        if ctx.ci.system == "github":
            tag_only = sum(1 for b in the_plan.images if b.tag_only)
            outputs = compute_matrix_outputs(matrix, max_generations or 0, tag_only=tag_only)
            write_outputs(outputs, ctx.ci)
        if fmt is PlanFormat.github_matrix:
            typer.echo(matrix_json(matrix))
        elif fmt is PlanFormat.gitlab_ci:
            from builder.render.gitlab import render_child_pipeline

            sys.stdout.write(render_child_pipeline(the_plan))
        elif fmt is PlanFormat.json:
            typer.echo(json.dumps(plan_json(the_plan), indent=2))
        else:
            typer.echo(render_plan_table(the_plan))

    guarded(body)


@app.command()
def merge(
    digests_dir: Annotated[
        Path, typer.Option("--digests-dir", help="Where the per-platform builds wrote digests.")
    ],
    base: BaseOpt = None,
    head: HeadOpt = None,
    everything: Annotated[bool, typer.Option("--all", help="As given to the builds.")] = False,
    only: Annotated[list[str] | None, typer.Option("--only", help="As given.")] = None,
    metadata_file: Annotated[
        Path | None, typer.Option("--metadata-file", help="Write the merged result as JSON.")
    ] = None,
    registry: RegistryOpt = None,
    namespace: NamespaceOpt = None,
    builder: BuilderOpt = None,
    junit_file: JunitFileOpt = None,
    dotenv_file: DotenvFileOpt = None,
    sign: SignOpt = False,
    repo: RepoOpt = Path(),
) -> None:
    """Join per-platform digests into multi-arch tags; refuse an image missing a platform."""
    from builder.commands.merge import MergeRequest, run_merge
    from builder.publish import report_files

    def body() -> None:
        check_output(metadata_file, "--metadata-file")
        request = MergeRequest(
            digests_dir=digests_dir,
            base=base,
            everything=everything,
            only=names_of(only),
            sign=sign,
            overrides=overrides_of(registry, namespace),
        )
        ctx = context(repo, head=head, builder=builder)
        files = report_files(ctx.ci, metadata=metadata_file, junit=junit_file, dotenv=dotenv_file)
        check_ci_files(ctx.ci, files)
        report = run_merge(ctx, request, log=log)
        hand_off(report, metadata_file, ctx.ci, failed="not merged", reports=files)

    guarded(body)


@app.command("test")
def image_tests(
    only: Annotated[
        list[str] | None, typer.Option("--only", help="Test just these images (repeatable).")
    ] = None,
    platform: Annotated[
        list[str] | None,
        typer.Option("--platform", help="Test only on these platforms (repeatable)."),
    ] = None,
    ref: Annotated[
        str | None,
        typer.Option(
            "--ref",
            help="Test this tag or sha256: digest of each image. Default: the image this "
            "commit's content key names, else its git-<sha7> tag.",
        ),
    ] = None,
    local: Annotated[
        bool,
        typer.Option(
            "--local", help="The images are in the engine's store (--no-push): pull nothing."
        ),
    ] = False,
    head: HeadOpt = None,
    registry: RegistryOpt = None,
    namespace: NamespaceOpt = None,
    builder: BuilderOpt = None,
    repo: RepoOpt = Path(),
) -> None:
    """Run the tests of already-built images, without building; tags nothing."""
    from builder.commands.test import TestRequest, parse_ref, run_test
    from builder.errors import BuildFailed
    from builder.render.text import render_test_report

    def body() -> None:
        request = TestRequest(
            only=names_of(only),
            platforms=platforms_of(platform),
            ref=parse_ref(ref) if ref is not None else None,
            local=local,
            overrides=overrides_of(registry, namespace),
        )
        ctx = context(repo, head=head, builder=builder)
        results = run_test(ctx, request, log=log)
        typer.echo(render_test_report(results))
        failed = [name for name, result in results.items() if result.status == "failed"]
        if failed:
            raise BuildFailed(f"{len(failed)} image(s) failed their tests: {', '.join(failed)}")

    guarded(body)


@app.command()
def refresh(
    push: Annotated[bool, typer.Option("--push/--no-push", help="Push to the registry.")] = True,
    force: Annotated[
        bool, typer.Option("--force", help="Rebuild every image on an external base, and theirs.")
    ] = False,
    metadata_file: Annotated[
        Path | None, typer.Option("--metadata-file", help="Write the result as JSON.")
    ] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Images built at once.")] = 2,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report; build nothing.")] = False,
    secret: SecretOpt = None,
    registry: RegistryOpt = None,
    namespace: NamespaceOpt = None,
    builder: BuilderOpt = None,
    junit_file: JunitFileOpt = None,
    dotenv_file: DotenvFileOpt = None,
    sign: SignOpt = False,
    repo: RepoOpt = Path(),
) -> None:
    """Nightly: rebuild the images whose upstream base moved, and their dependants."""
    from builder.commands.refresh import RefreshRequest, run_refresh
    from builder.plan import parse_secret
    from builder.publish import report_files

    def body() -> None:
        at_least_one(jobs, "--jobs")
        check_output(metadata_file, "--metadata-file")
        request = RefreshRequest(
            push=push,
            force=force,
            jobs=jobs,
            dry_run=dry_run,
            secrets=tuple(parse_secret(s) for s in secret or ()),
            sign=sign,
            overrides=overrides_of(registry, namespace),
        )
        # What is committed, never the working tree's edits.
        ctx = context(repo, head="HEAD", builder=builder)
        files = report_files(ctx.ci, metadata=metadata_file, junit=junit_file, dotenv=dotenv_file)
        check_ci_files(ctx.ci, files)
        report, _moves = run_refresh(ctx, request, log=log)
        hand_off(report, metadata_file, ctx.ci, reports=files)

    guarded(body)


@app.command()
def verify(
    metadata_file: Annotated[
        Path | None,
        typer.Option(
            "--metadata-file", help="Verify the images this metadata file records as pushed."
        ),
    ] = None,
    everything: Annotated[
        bool,
        typer.Option("--all", help="Verify every image at HEAD's git-<sha7> tag (the default)."),
    ] = False,
    registry: RegistryOpt = None,
    namespace: NamespaceOpt = None,
    repo: RepoOpt = Path(),
) -> None:
    """Check each pushed image's signature, provenance and SBOMs; exit 1 naming what fails."""
    from builder.commands.verify import VerifyRequest, run_verify
    from builder.errors import BuildFailed, UserError
    from builder.render.text import render_verify

    def body() -> None:
        if metadata_file is not None and everything:
            raise UserError("--metadata-file and --all name different sets of images; pick one")
        request = VerifyRequest(
            metadata_file=metadata_file, overrides=overrides_of(registry, namespace)
        )
        ctx = context(repo, head="HEAD")
        report = run_verify(ctx, request, log=log)
        typer.echo(render_verify(report))
        if report.failed:
            named = ", ".join(f"{v.name} ({v.problems[0]})" for v in report.failed)
            raise BuildFailed(f"{len(report.failed)} image(s) failed verification: {named}")

    guarded(body)


@app.command()
def pin(
    metadata_file: Annotated[
        Path | None,
        typer.Option("--metadata-file", help="The metadata file `builder build --push` wrote."),
    ] = None,
    from_tag: Annotated[
        str | None,
        typer.Option(
            "--from-tag",
            metavar="TAG",
            help="Instead: the digests each image's tag for this branch (or this tag) "
            "names in the registry now.",
        ),
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="List mutable or stale references (file:line), exit 1 if any."
        ),
    ] = False,
    keep_tag: Annotated[
        bool, typer.Option("--keep-tag", help="Write repo:tag@sha256:..., not repo@sha256:...")
    ] = False,
    partial: Annotated[
        bool,
        typer.Option(
            "--partial",
            help="With a failed image: pin the rest; it and its dependants keep their pins.",
        ),
    ] = False,
    commit: Annotated[
        str | None,
        typer.Option(
            "--commit",
            metavar="BRANCH",
            help="Commit the edits on BRANCH (started at HEAD unless checked out).",
        ),
    ] = None,
    repo_dir: Annotated[
        Path | None,
        typer.Option(
            "--repo-dir", help="The consumers live in this checkout (a GitOps repo), not here."
        ),
    ] = None,
    push_branch: Annotated[
        bool, typer.Option("--push-branch", help="Push the --commit branch to its remote.")
    ] = False,
    repo: RepoOpt = Path(),
) -> None:
    """Rewrite consumer files (Argo, Kubernetes, Airflow, ...) to the digests a build pushed,
    or that a branch's tags name in the registry."""
    from builder.consumers.model import FromMetadata, FromTag, PinOptions, PinSource
    from builder.consumers.pin import StalePins, run_pin
    from builder.consumers.render import render_check, render_pin_report
    from builder.errors import UserError
    from builder.git import Git
    from builder.pipeline import login_for, open_registry
    from builder.promotion import source_tag
    from builder.workspace import load_at

    def body() -> None:
        if (metadata_file is None) == (from_tag is None):
            raise UserError(
                "give one source: --metadata-file PATH or --from-tag TAG",
                hint="e.g. builder pin --from-tag main",
            )
        environ = dict(os.environ)
        git = Git.discover(repo, environ=environ)
        loaded = load_at(git, None)
        options = PinOptions(
            check=check,
            keep_tag=keep_tag,
            partial=partial,
            commit_branch=commit,
            repo_dir=repo_dir,
            push_branch=push_branch,
        )
        with contextlib.ExitStack() as stack:
            source: PinSource
            if metadata_file is not None:
                source = FromMetadata(path=metadata_file)
            else:
                tag = source_tag(from_tag or "", flag="--from-tag")
                ctx = context(repo)
                registry = stack.enter_context(open_registry(ctx))
                registry.use_login(login_for(ctx, loaded.settings))
                source = FromTag(tag=tag, resolve=registry.head)
            report = run_pin(
                git.root,
                loaded,
                source,
                options,
                lambda line: typer.echo(line, err=True),
                environ=environ,
            )
        if check:
            typer.echo(render_check(report))
            if report.findings:
                raise StalePins(
                    f"{len(report.findings)} consumer reference(s) are mutable or stale"
                )
            return
        typer.echo(render_pin_report(report))

    guarded(body)


class PromoteFormat(StrEnum):
    table = "table"
    json = "json"


@app.command()
def promote(
    to: Annotated[str, typer.Option("--to", metavar="TAG", help="The tag to move, e.g. prod.")],
    from_tag: Annotated[
        str | None,
        typer.Option(
            "--from",
            metavar="TAG",
            help="Promote what each image's tag for this branch (or this tag) names now.",
        ),
    ] = None,
    metadata_file: Annotated[
        Path | None,
        typer.Option(
            "--metadata-file", help="Instead: promote the digests a build's metadata file pins."
        ),
    ] = None,
    only: Annotated[
        list[str] | None, typer.Option("--only", help="Promote just these images (repeatable).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Verify and report what would move; move nothing.")
    ] = False,
    fmt: Annotated[PromoteFormat, typer.Option("--format", "-f")] = PromoteFormat.table,
    write_metadata: Annotated[
        Path | None,
        typer.Option(
            "--write-metadata",
            metavar="PATH",
            help="Write the promoted set as a metadata file (for builder pin).",
        ),
    ] = None,
    registry: RegistryOpt = None,
    namespace: NamespaceOpt = None,
    builder: BuilderOpt = None,
    repo: RepoOpt = Path(),
) -> None:
    """Point a tag of every image at the digests another tag or a build names: verified
    first (every image, every platform), all or nothing, parents before dependants."""
    from builder.commands.promote import PromoteRequest, run_promote
    from builder.errors import BuildFailed
    from builder.promotion import describe_failure
    from builder.publish import write_promotion, write_summary
    from builder.render.data import promote_json
    from builder.render.github import render_promote_summary
    from builder.render.text import render_promote_report

    def body() -> None:
        check_output(write_metadata, "--write-metadata")
        request = PromoteRequest(
            to=to,
            from_tag=from_tag,
            metadata_file=metadata_file,
            only=names_of(only),
            dry_run=dry_run,
            overrides=overrides_of(registry, namespace),
        )
        ctx = context(repo, builder=builder)
        check_ci_files(ctx.ci)
        report = run_promote(ctx, request, log=log)
        if write_metadata is not None:
            write_promotion(report, write_metadata)
        if ctx.ci.system == "github":
            write_summary(render_promote_summary(report), ctx.ci)
        if fmt is PromoteFormat.json:
            typer.echo(json.dumps(promote_json(report), indent=2))
        else:
            typer.echo(render_promote_report(report))
        failure = describe_failure(report)
        if failure is not None:
            raise BuildFailed(failure)

    guarded(body)


def hand_off(
    report: BuildReport,
    metadata_file: Path | None,
    ci: CIFacts,
    *,
    show: bool = True,
    failed: str = "failed",
    reports: ReportFiles | None = None,
) -> None:
    """What every building command ends with: the metadata file, the Actions summary and
    outputs, the JUnit and dotenv reports, the table, and exit code 1 when an image did not
    make it."""
    from builder.errors import BuildFailed
    from builder.publish import publish, write_metadata
    from builder.render.text import render_build_report

    if metadata_file is not None:
        write_metadata(report, metadata_file)
    publish(report, ci, reports)
    if not show:
        return
    typer.echo(render_build_report(report))
    if report.failed:
        raise BuildFailed(f"{len(report.failed)} image(s) {failed}: {', '.join(report.failed)}")


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"builder {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=version_callback, is_eager=True, help="Show the version."
        ),
    ] = False,
) -> None:
    """builder: change-aware monorepo image builds."""


def run() -> None:
    """The console script: typer's own usage errors become one `error:` line, exit 2."""
    # Planning allocates tens of thousands of long-lived objects (paths, configs, parsed
    # Dockerfiles) and frees few: at Python's default threshold the collector walked them
    # over and over, a tenth of a plan's time (benchmarks/). What the imports made lives
    # as long as the process, so the collector leaves it alone.
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
    try:
        result = app(standalone_mode=False)
    except KeyboardInterrupt:
        typer.echo("error: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        # click's UsageError and friends, recognised by shape: typer vendors click and
        # builder never imports it (STYLE.md).
        format_message = getattr(exc, "format_message", None)
        if not callable(format_message):
            if type(exc).__name__ == "Abort":
                typer.echo("error: interrupted", err=True)
                sys.exit(130)
            raise
        message = " ".join(str(format_message()).split())
        command = getattr(getattr(exc, "ctx", None), "command_path", "builder")
        typer.echo(f"error: {message} (see `{command} --help`)", err=True)
        sys.exit(int(getattr(exc, "exit_code", 2)))
    sys.exit(result if isinstance(result, int) else 0)
