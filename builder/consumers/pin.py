"""`builder pin`'s edge: glob the consumers, read them, write all or none, commit, push.

Everything that decides is pure (config, metadata, tags, kinds); this module only reads
the metadata file (or asks the registry, through the source's resolver, what a branch's
tags name) and the consumer files, writes the new texts (temporary files first, then
renamed, so a failure leaves every file as it was) and runs git through builder.git.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path, PurePosixPath

from builder import proc
from builder.consumers.config import parse_consumers
from builder.consumers.kinds import compute_file
from builder.consumers.metadata import compute_pins, parse_metadata
from builder.consumers.model import (
    ConsumerSpec,
    FileOutcome,
    FromMetadata,
    PinOptions,
    PinReport,
    Pins,
    PinSource,
)
from builder.consumers.render import render_commit_message
from builder.consumers.tags import compute_tag_pins
from builder.errors import EXIT_BUILD_FAILED, BuilderError, ConfigError, GitError, UserError
from builder.git import Git
from builder.graph import ImageGraph
from builder.model import CONFIG_FILE
from builder.repo import Repo

Log = Callable[[str], None]


class StalePins(BuilderError):
    """--check found mutable or stale references (exit 1, like a failed build: CI fails)."""

    exit_code = EXIT_BUILD_FAILED


def run_pin(
    root: Path,
    repo: Repo,
    source: PinSource,
    options: PinOptions,
    log: Log,
    *,
    environ: Mapping[str, str] | None = None,
) -> PinReport:
    """Pin the consumers of `repo` (checked out at `root`) to the digests `source` names."""
    if options.push_branch and options.commit_branch is None:
        raise UserError("--push-branch needs --commit BRANCH", hint="name the branch to push")
    if options.check and options.commit_branch is not None:
        raise UserError("--check writes nothing, so it cannot --commit")
    if options.commit_branch is not None:
        check_branch_name(options.commit_branch)
    if options.partial and not isinstance(source, FromMetadata):
        raise UserError("--partial is for a metadata file with a failed image")
    specs = parse_consumers(repo.settings.consumers, repo.settings.consumers_lines)
    pins = load_pins(source, repo.graph, partial=options.partial)
    target = options.repo_dir if options.repo_dir is not None else root
    if not target.is_dir():
        raise UserError(f"--repo-dir {target} is not a directory")
    files = select_files(target, specs)
    outcomes = tuple(
        compute_file(path, _read_text(target / path, path), spec, pins, keep_tag=options.keep_tag)
        for path, spec in files
    )
    report = PinReport(
        revision=pins.revision,
        root=target,
        files=outcomes,
        held=pins.held,
        targets=tuple(pins.targets.values()),
        checked=options.check,
    )
    if options.check:
        return report
    changed = tuple(o for o in outcomes if o.changed)
    if not changed:
        return report
    _write_targets(target, changed)  # refused before a branch is switched to
    git: Git | None = None
    if options.commit_branch is not None:
        git = prepare_commit(target, options.commit_branch, changed, environ)
    write_all(target, changed)
    written = tuple(o.path for o in changed)
    report = replace(report, written=written)
    if git is None or options.commit_branch is None:
        return report
    message = render_commit_message(pins.revision, report.edits)
    sha = commit_files(git, target, written, message)
    log(f"pin: committed {sha[:12]} on {options.commit_branch}")
    remote = None
    if options.push_branch:
        remote = push_branch(git, options.commit_branch)
        log(f"pin: pushed {options.commit_branch} to {remote}")
    return replace(report, commit=sha, branch=options.commit_branch, pushed_to=remote)


def load_pins(source: PinSource, graph: ImageGraph, *, partial: bool = False) -> Pins:
    """The pins a metadata file allows, or what each image's tag names in the registry."""
    if isinstance(source, FromMetadata):
        path = source.path
        return compute_pins(
            parse_metadata(_read_text(path, str(path)), source=str(path)),
            graph,
            source=str(path),
            partial=partial,
        )
    digests = {
        name: source.resolve(f"{graph.images[name].repository}:{source.tag}")
        for name in graph.order
    }
    return compute_tag_pins(graph, source.tag, digests)


def _read_text(path: Path, shown: str) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read: {exc.strerror}", file=shown) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise UserError("is not UTF-8 text", file=shown, line=line) from None


def select_files(root: Path, specs: Sequence[ConsumerSpec]) -> list[tuple[str, ConsumerSpec]]:
    """Each consumer file once, with the first spec whose glob matched it."""
    chosen: dict[str, ConsumerSpec] = {}
    for spec in specs:
        try:
            found = [p.relative_to(root) for p in root.glob(spec.glob)]
        except ValueError as exc:  # pathlib's word for a pattern it cannot use
            raise ConfigError(
                f"invalid consumer glob {spec.glob!r}: {exc}", file=str(CONFIG_FILE), line=spec.line
            ) from None
        hidden = PurePosixPath(spec.glob).name.startswith(".")
        matches = sorted(
            p.as_posix()
            for p in found
            if (root / p).is_file()
            and ".git" not in p.parts
            and (hidden or not p.name.startswith("."))  # as glob(7): `*` skips dotfiles
        )
        if not matches:
            raise ConfigError(
                f"consumer glob {spec.glob!r} matches no file in {root}",
                file=str(CONFIG_FILE),
                line=spec.line,
                hint="fix the glob, or remove the consumer",
            )
        for match in matches:
            chosen.setdefault(match, spec)
    return list(chosen.items())


def write_all(root: Path, outcomes: Sequence[FileOutcome]) -> None:
    """Write every new text to a temporary file beside its target, then rename them all:
    a failure before the renames removes the temporaries and leaves every file as it was."""
    targets = _write_targets(root, outcomes)
    staged: list[tuple[Path, Path]] = []
    current = ""
    try:
        for outcome, final in targets:
            current = outcome.path
            mode = stat.S_IMODE(final.stat().st_mode)
            fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".pin", dir=final.parent)
            staged.append((Path(name), final))
            with os.fdopen(fd, "wb") as out:
                out.write(outcome.new_text.encode("utf-8"))
            Path(name).chmod(mode)
    except OSError as exc:
        for temporary, _ in staged:
            temporary.unlink(missing_ok=True)
        raise UserError(
            f"cannot write: {exc.strerror}; no consumer file was changed", file=current
        ) from None
    for temporary, final in staged:
        temporary.replace(final)


def _write_targets(root: Path, outcomes: Sequence[FileOutcome]) -> list[tuple[FileOutcome, Path]]:
    """The file each new text goes to. Through a symbolic link that is the file it names,
    and the link stays a link (renaming onto the link put a copy in its place); a link and
    the file it names, both matched, are written once."""
    inside = root.resolve()
    targets: dict[Path, FileOutcome] = {}
    for outcome in outcomes:
        final = (root / outcome.path).resolve()
        if not final.is_relative_to(inside):
            raise UserError(
                f"is a symbolic link to {final}, outside {root}; no consumer file was changed",
                file=outcome.path,
                hint="pin the file it names in its own repository",
            )
        first = targets.setdefault(final, outcome)
        if first.new_text != outcome.new_text:
            raise UserError(
                f"is the same file as {first.path} (through a symbolic link), and the two "
                "consumers that match them would write it differently; no consumer file was "
                "changed",
                file=outcome.path,
                hint="match the file once in builder.yaml's consumers",
            )
    return [(outcome, final) for final, outcome in targets.items()]


# -- git --------------------------------------------------------------------------------


def check_branch_name(branch: str) -> None:
    """git's own rules for a branch name (no repository needed to ask)."""
    if branch.startswith("-") or not proc.run(["git", "check-ref-format", "--branch", branch]).ok:
        raise GitError(f"invalid branch name {branch!r}", hint="e.g. builder/pin")


def prepare_commit(
    target: Path, branch: str, changed: Sequence[FileOutcome], environ: Mapping[str, str] | None
) -> Git:
    """Check what committing needs before any file is written, then switch to `branch`
    (started at the current HEAD unless it is the branch checked out)."""
    git = Git.discover(target, environ=environ)
    if git.head() is None:
        raise GitError(f"{git.root} has no commit to start branch {branch!r} from")
    paths = [str((target / o.path).resolve()) for o in changed]
    dirty = git.run("status", "--porcelain", "-z", "--", *paths).split(b"\0")
    if any(dirty_entry.strip() for dirty_entry in dirty):
        first = dirty[0].decode("utf-8", "replace")[3:]
        raise GitError(
            f"{first} has uncommitted changes",
            hint="commit or stash them first: builder pin commits only its own edits",
        )
    if git.branch() != branch:
        git.run("switch", "--quiet", "-C", branch)
    return git


def commit_files(git: Git, target: Path, paths: Sequence[str], message: str) -> str:
    absolute = [str((target / p).resolve()) for p in paths]
    identity: tuple[str, ...] = ()
    if not git.try_run("var", "GIT_COMMITTER_IDENT").ok:
        # A CI runner often has no git identity; a commit by "builder" beats a failure.
        identity = ("-c", "user.name=builder", "-c", "user.email=builder@localhost")
    git.run("add", "--", *absolute)
    git.run(
        *identity,
        "commit",
        "--quiet",
        "--no-verify",
        "-F",
        "-",
        "--",
        *absolute,
        stdin=message.encode("utf-8"),
    )
    return git.run("rev-parse", "HEAD").decode().strip()


def push_branch(git: Git, branch: str) -> str:
    """Push `branch` to its upstream's remote, else origin, else the only remote."""
    configured = git.try_run("config", "--get", f"branch.{branch}.remote")
    remotes = git.remotes()
    if configured.ok and configured.stdout.strip():
        remote = configured.stdout.decode().strip()
    elif "origin" in remotes:
        remote = "origin"
    elif len(remotes) == 1:
        remote = remotes[0]
    else:
        raise GitError(
            f"no remote to push {branch!r} to", hint="add one: git remote add origin URL"
        )
    result = git.try_run("push", "--quiet", remote, f"refs/heads/{branch}:refs/heads/{branch}")
    if not result.ok:
        raise GitError(
            f"git push {remote} {branch} failed: {result.err_text()}",
            hint="the commit is made locally; a branch that moved on the remote needs a new "
            "name, or deleting there",
        )
    return remote
