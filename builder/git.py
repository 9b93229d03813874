"""The door to git: every git command builder runs goes through this module."""

from __future__ import annotations

import contextlib
import os
import posixpath
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from builder import proc
from builder.errors import ConfigError, GitError
from builder.roots import DEFINING_PATHS

NULL_SHA = "0" * 40


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    status: str  # git's letter: A, M, D, T, ...; "?" for untracked
    path: str


def _discover_error(cwd: Path, stderr: str) -> GitError:
    """Why git found no work tree, in git's own first line and with its fix."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    reason = lines[0].removeprefix("fatal: ") if lines else ""
    if not reason or reason.startswith("not a git repository"):
        return GitError(
            f"{cwd} is not inside a git repository",
            hint="run builder from a git checkout, or `git init` one",
        )
    if reason.startswith("detected dubious ownership"):
        fix = next((line for line in lines if "safe.directory" in line), None)
        hint = f"if you trust it, run: {fix}" if fix else "check who owns the repository"
        return GitError(f"git: {reason}", hint=hint)
    if reason.startswith("this operation must be run in a work tree"):
        return GitError(
            f"git: {reason}",
            hint=f"{cwd} is a bare repository or inside .git; run builder in a checkout",
        )
    return GitError(f"git: {reason}", hint=f"run builder in a git checkout ({cwd})")


class Git:
    """A repository's git, run with a stable, non-interactive environment."""

    def __init__(self, root: Path, *, environ: Mapping[str, str] | None = None) -> None:
        self.root = root
        env = dict(os.environ if environ is None else environ)
        # Literal pathspecs: an image directory named `[x]` or `:y` is a path, not a glob/magic.
        env.update(
            GIT_TERMINAL_PROMPT="0", LC_ALL="C", GIT_OPTIONAL_LOCKS="0", GIT_LITERAL_PATHSPECS="1"
        )
        self._env = env
        self._untracked: tuple[str, ...] | None = None

    @classmethod
    def discover(cls, cwd: Path, *, environ: Mapping[str, str] | None = None) -> Git:
        if not cwd.is_dir():
            # proc.run would report a missing cwd as a missing program.
            raise GitError(f"{cwd} is not a directory", hint="check --repo")
        result = proc.run(["git", "rev-parse", "--show-toplevel"], cwd=cwd, env=environ)
        if result.returncode == 127:
            raise GitError("git is not installed", hint="install git and retry")
        if not result.ok:
            raise _discover_error(cwd, result.err_text())
        return cls(Path(result.stdout.decode().strip()), environ=environ)

    def run(self, *args: str, stdin: bytes | None = None) -> bytes:
        result = proc.run(["git", *args], cwd=self.root, env=self._env, stdin=stdin)
        if not result.ok:
            raise GitError(f"git {' '.join(args[:3])} failed: {result.err_text()}")
        return result.stdout

    def try_run(self, *args: str) -> proc.Result:
        return proc.run(["git", *args], cwd=self.root, env=self._env)

    # -- revisions --------------------------------------------------------------------

    def resolve(self, rev: str) -> str:
        """The commit a revision names; a clear error when it names none."""
        if not rev.strip():
            raise GitError(f"invalid git revision {rev!r}", hint="name a branch, tag or commit")
        if rev.startswith("-"):
            raise GitError(f"invalid git revision {rev!r}", hint="a revision cannot start with '-'")
        result = self.try_run(
            "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"
        )
        if not result.ok:
            raise GitError(
                f"unknown git revision {rev!r}",
                hint="check the name, or fetch more history with git fetch --unshallow",
            )
        return result.stdout.decode().strip()

    def has_commit(self, sha: str) -> bool:
        return self.try_run("cat-file", "-e", f"{sha}^{{commit}}").ok

    def head(self) -> str | None:
        result = self.try_run("rev-parse", "--verify", "--quiet", "HEAD^{commit}")
        return result.stdout.decode().strip() if result.ok else None

    def first_parent(self, sha: str) -> str | None:
        result = self.try_run("rev-parse", "--verify", "--quiet", f"{sha}~1^{{commit}}")
        return result.stdout.decode().strip() if result.ok else None

    def merge_base(self, a: str, b: str) -> str | None:
        result = self.try_run("merge-base", a, b)
        return result.stdout.decode().strip() if result.ok else None

    def branch(self) -> str | None:
        result = self.try_run("symbolic-ref", "--quiet", "--short", "HEAD")
        return result.stdout.decode().strip() if result.ok else None

    def is_shallow(self) -> bool:
        result = self.try_run("rev-parse", "--is-shallow-repository")
        return result.ok and result.stdout.strip() == b"true"

    def remotes(self) -> tuple[str, ...]:
        return tuple(self.run("remote").decode().split())

    def file_ids(self, sha: str | None, paths: Sequence[str] | None = None) -> dict[str, str]:
        """What every tracked path holds at `sha` (None: the working tree), as `mode id`.

        The mode is part of what BuildKit sends (`chmod +x` changes the image), a symbolic
        link is its target's blob (BuildKit sends the link, not what it names) and a
        submodule is its commit (a checkout with submodules sends their files), so each
        counts as git records it. A commit is one `ls-tree`; the working tree is the index
        plus the paths that differ from it, read from the disk, so no unchanged file is read.
        """
        if sha is not None:
            # `paths` narrows a commit's listing to what a caller needs (files or folders).
            out = self.run("ls-tree", "-r", "-z", "--full-tree", sha, "--", *(paths or ()))
            ids = {}
            for entry in out.split(b"\0"):
                if entry:
                    meta, _, path = entry.partition(b"\t")
                    mode, _kind, oid = meta.decode().split()
                    ids[os.fsdecode(path)] = f"{mode} {oid}"
            return ids
        ids = {}
        for entry in self.run("ls-files", "-s", "-z").split(b"\0"):
            if entry:
                meta, _, path = entry.partition(b"\t")
                mode, oid, _stage = meta.decode().split()
                ids[os.fsdecode(path)] = f"{mode} {oid}"
        for path in self.run("ls-files", "-z", "--deleted").split(b"\0"):
            ids.pop(os.fsdecode(path), None)
        changed = [
            os.fsdecode(p)
            for args in (
                ("diff", "--name-only", "-z"),
                ("ls-files", "-z", "--others", "--exclude-standard"),
            )
            for p in self.run(*args).split(b"\0")
            if p
        ]
        ids.update(self.disk_ids(list(dict.fromkeys(changed)), ids))
        return ids

    def disk_ids(
        self, paths: Sequence[str], index: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """`mode id` of paths as the disk holds them now, the way git would record them."""
        files: list[str] = []
        found: dict[str, str] = {}
        for path in paths:
            full = self.root / path
            try:
                info = full.lstat()
            except OSError:
                continue  # deleted: the index listing already dropped it
            if stat.S_ISLNK(info.st_mode):
                target = os.fsencode(str(full.readlink()))
                blob = self.run("hash-object", "-t", "blob", "--stdin", stdin=target)
                found[path] = f"{_SYMLINK_MODE} {blob.decode().strip()}"
            elif stat.S_ISDIR(info.st_mode):
                if (index or {}).get(path, "").startswith(_GITLINK_MODE):
                    found[path] = f"{_GITLINK_MODE} {self._submodule_state(path)}"
            elif stat.S_ISREG(info.st_mode):
                files.append(path)
                found[path] = "100755" if info.st_mode & stat.S_IXUSR else "100644"
        if files:
            out = self.run(
                "hash-object", "--no-filters", "--stdin-paths", stdin="\n".join(files).encode()
            )
            for path, oid in zip(files, out.decode().split(), strict=True):
                found[path] = f"{found[path]} {oid}"
        return found

    def _submodule_state(self, path: str) -> str:
        """The commit a checked-out submodule is at, marked when its files differ from it."""
        head = proc.run(["git", "rev-parse", "HEAD"], cwd=self.root / path, env=self._env)
        if not head.ok:
            return "unknown"
        status = proc.run(["git", "status", "--porcelain"], cwd=self.root / path, env=self._env)
        dirty = "-dirty" if status.stdout.strip() or not status.ok else ""
        return head.stdout.decode().strip() + dirty

    def all_files(self, sha: str | None) -> tuple[str, ...]:
        """Every file of a commit, or of the working tree (untracked, not ignored, too)."""
        if sha is not None:
            out = self.run("ls-tree", "-r", "-z", "--name-only", "--full-tree", sha)
        else:
            out = self.run("ls-files", "-z", "--cached", "--others", "--exclude-standard")
        return tuple(dict.fromkeys(os.fsdecode(p) for p in out.split(b"\0") if p))

    def git_dir(self) -> Path:
        common = self.run("rev-parse", "--git-common-dir").decode().strip()
        return (self.root / common).resolve()

    def commit_time(self, sha: str) -> str:
        return self.run("show", "-s", "--format=%cI", sha).decode().strip()

    def tags_at(self, sha: str) -> tuple[str, ...]:
        return tuple(self.run("tag", "--points-at", sha).decode().split())

    def remote_url(self) -> str | None:
        for remote in self.remotes()[:1]:
            result = self.try_run("remote", "get-url", remote)
            if result.ok:
                return result.stdout.decode().strip()
        return None

    def is_dirty(self) -> bool:
        """Tracked changes or untracked, not-ignored files in the working tree."""
        return bool(self.run("status", "--porcelain", "--untracked-files=normal").strip())

    @contextlib.contextmanager
    def checkout(self, sha: str) -> Iterator[Path]:
        """A throwaway worktree at `sha`, so a build reads that commit's files, not the disk's."""
        with tempfile.TemporaryDirectory(prefix="builder-worktree-") as tmp:
            path = Path(tmp) / "tree"
            self.run("worktree", "add", "--detach", "--quiet", str(path), sha)
            try:
                yield path
            finally:
                self.try_run("worktree", "remove", "--force", str(path))

    def empty_tree(self) -> str:
        return self.run("hash-object", "-t", "tree", "--stdin", stdin=b"").decode().strip()

    def fetch_history(self, sha: str) -> bool:
        """Try to bring `sha` into the clone: deepen a shallow clone, then ask for it by id."""
        for remote in self.remotes()[:1]:
            if self.is_shallow():
                for args in (("--deepen=200",), ("--unshallow",)):
                    self.try_run("fetch", "--quiet", "--no-tags", *args, remote)
                    if self.has_commit(sha):
                        return True
            self.try_run("fetch", "--quiet", "--no-tags", remote, sha)
        return self.has_commit(sha)

    # -- changes and trees ---------------------------------------------------------------

    def changed_paths(self, base: str, head: str | None) -> tuple[Change, ...]:
        """Paths that differ from `base` to `head` (None: the working tree, untracked too).

        Renames are split into a deletion and an addition, so both paths count.
        """
        args = ["diff", "--name-status", "-z", "--no-renames", "--no-ext-diff", base]
        if head is not None:
            args.append(head)
        fields = self.run(*args).split(b"\0")
        changes = [
            Change(status=fields[i].decode()[:1], path=os.fsdecode(fields[i + 1]))
            for i in range(0, len(fields) - 1, 2)
        ]
        if head is None:
            changes.extend(Change(status="?", path=p) for p in self.untracked())
        return tuple(changes)

    def ignored(
        self, prefixes: Sequence[str], *, descend: Callable[[str], bool], limit: int = 10_000
    ) -> tuple[str, ...]:
        """Files under `prefixes` that git ignores but the disk holds: a build from the disk
        sends them, while no diff and no commit ever shows them.

        git names a wholly ignored directory once (`--directory`); it is walked only when
        `descend(directory)` says some file in it could matter (a `node_modules` that the
        .dockerignore drops too is never walked), and the walk stops after `limit` files.
        """
        if not prefixes:
            return ()
        out = self.run(
            "ls-files",
            "-z",
            "--others",
            "--ignored",
            "--exclude-standard",
            "--directory",
            "--",
            *prefixes,
        )
        found: list[str] = []
        for raw in out.split(b"\0"):
            entry = os.fsdecode(raw)
            if not entry:
                continue
            if not entry.endswith("/"):
                found.append(entry)
                continue
            if not descend(entry.rstrip("/")):
                continue
            for directory, dirs, names in os.walk(self.root / entry):
                relative = Path(directory).relative_to(self.root).as_posix()
                dirs[:] = sorted(d for d in dirs if descend(f"{relative}/{d}"))
                found.extend(f"{relative}/{name}" for name in sorted(names))
                if len(found) >= limit:
                    return tuple(found[:limit])
        return tuple(found)

    def untracked(self) -> tuple[str, ...]:
        """Untracked, not-ignored files, listed once per run: the walk costs a full scan."""
        if self._untracked is None:
            out = self.run("ls-files", "-z", "--others", "--exclude-standard")
            self._untracked = tuple(os.fsdecode(p) for p in out.split(b"\0") if p)
        return self._untracked


class WorktreeSnapshot:
    """The working tree as git sees it: tracked files plus untracked, not-ignored ones."""

    def __init__(self, git: Git) -> None:
        self.git = git
        self.label = "working tree"
        self._prefixes: tuple[str, ...] = ()  # roots listed whole
        self._listed: set[str] = set()
        self._real_dirs: dict[str, Path] = {}
        self._targets: dict[str, str] = {}  # a path read through a link -> the file it names

    def list_files(self, roots: Sequence[str]) -> tuple[str, ...]:
        tracked = self.git.run("ls-files", "-z", "--cached", "--", *roots).split(b"\0")
        prefixes = tuple(f"{root.rstrip('/')}/" for root in roots)
        paths = [os.fsdecode(p) for p in tracked if p]
        paths.extend(p for p in self.git.untracked() if p.startswith(prefixes))
        listed = []
        for path in dict.fromkeys(paths):
            # The index still lists files deleted from disk but not yet `git rm`-ed; only
            # the files that define an image matter here, so only they are checked.
            if path.endswith(DEFINING_PATHS) and not os.path.lexists(self.git.root / path):
                continue
            listed.append(path)
        self._prefixes += prefixes
        self._listed.update(listed)
        return tuple(listed)

    def read(self, paths: Iterable[str]) -> dict[str, bytes | None]:
        root = self.git.root.resolve()
        contents: dict[str, bytes | None] = {}
        for path in paths:
            if path.startswith(self._prefixes) and path not in self._listed:
                contents[path] = None  # under a listed root and not listed: not there
                continue
            try:
                # A symlink may point anywhere; only what stays inside the repo is an input,
                # and a link out of it is a mistake to name, not a file to skip.
                real = self._real(path)
                if real != root and root not in real.parents:
                    raise _link_outside(path)
                contents[path] = real.read_bytes()
                if real != root / path:
                    self._targets[path] = real.relative_to(root).as_posix()
            except (OSError, RuntimeError):
                contents[path] = None
        return contents

    def _real(self, path: str) -> Path:
        """The path with symlinks resolved; each directory is resolved once per run."""
        directory, _, name = path.rpartition("/")
        parent = self._real_dirs.get(directory)
        if parent is None:
            parent = self._real_dirs[directory] = (self.git.root / directory).resolve()
        full = parent / name
        return full.resolve() if full.is_symlink() else full

    def symlinks(self, paths: Iterable[str]) -> frozenset[str]:
        return frozenset(p for p in paths if (self.git.root / p).is_symlink())

    def linked_directories(self, directories: Iterable[str]) -> frozenset[str]:
        found = set()
        for directory in directories:
            try:
                with os.scandir(self.git.root / directory) as entries:
                    if any(entry.is_symlink() for entry in entries):
                        found.add(directory)
            except OSError:
                continue  # not a directory here: nothing to follow
        return frozenset(found)

    def gitlinks(self, paths: Sequence[str]) -> frozenset[str]:
        out = self.git.run("ls-files", "-s", "-z", "--", *paths) if paths else b""
        return frozenset(
            os.fsdecode(path)
            for meta, _, path in (e.partition(b"\t") for e in out.split(b"\0") if e)
            if meta.startswith(_GITLINK_MODE.encode())
        )

    def link_targets(self, paths: Iterable[str]) -> dict[str, str]:
        return {p: self._targets[p] for p in paths if p in self._targets}


_SYMLINK_MODE = "120000"
_GITLINK_MODE = "160000"  # a submodule: a commit of another repository, no files here
_MAX_LINKS = 40  # as Linux's MAXSYMLINKS: a longer chain is a loop


def _link_outside(path: str) -> ConfigError:
    return ConfigError(
        "is a symbolic link to a file outside the repository",
        file=path,
        hint="builder reads only what the repository holds; copy the file in",
    )


_DEFINING_SUFFIXES = ("Dockerfile", ".yaml", ".yml", "dockerignore")


class RevisionSnapshot:
    """A commit's tree, read with one `ls-tree` and one `cat-file --batch`."""

    def __init__(self, git: Git, sha: str) -> None:
        self.git = git
        self.sha = sha
        self.label = sha[:12]
        self._blobs: dict[str, str] = {}
        self._links: dict[str, str] = {}  # symlink path -> the blob holding its target
        self._absent: set[str] = set()  # looked up and not there: asked once only
        self._listed: tuple[str, ...] = ()  # roots list_files walked whole: nothing to ask
        self._listed_paths: set[str] = set()
        self._listed_links: set[str] = set()  # the symbolic links among them
        self._targets: dict[str, str] = {}  # a path read through a link -> the file it names

    def _entries(self, out: bytes) -> Iterator[tuple[str, str, str, str]]:
        for entry in out.split(b"\0"):
            if entry:
                meta, _, raw_path = entry.partition(b"\t")
                mode, kind, oid = meta.decode().split()
                yield mode, kind, oid, os.fsdecode(raw_path)

    def _record(self, mode: str, kind: str, oid: str, path: str) -> None:
        if kind == "blob":
            (self._links if mode == _SYMLINK_MODE else self._blobs)[path] = oid

    def list_files(self, roots: Sequence[str]) -> tuple[str, ...]:
        out = self.git.run("ls-tree", "-r", "-z", "--full-tree", self.sha, "--", *roots)
        paths = []
        # Decoded at once, as os.fsdecode would each path: NUL and TAB never sit inside
        # a UTF-8 sequence, and surrogateescape keeps any other byte as it was.
        for entry in out.decode("utf-8", "surrogateescape").split("\0"):
            if not entry:
                continue
            meta, _, path = entry.partition("\t")
            paths.append(path)
            if meta.startswith("120000"):
                self._listed_links.add(path)
            # Only the files builder reads get their blob recorded here; the tens of
            # thousands of others are just names (a planning hot path, see benchmarks/).
            if path.endswith(_DEFINING_SUFFIXES):
                mode, kind, oid = meta.split()
                self._record(mode, kind, oid, path)
        self._listed += tuple(f"{root.rstrip('/')}/" for root in roots)
        self._listed_paths.update(paths)
        return tuple(paths)

    def _look_up(self, paths: Iterable[str]) -> None:
        """Files outside the listed roots (builder.yaml, a link's target): find their blobs."""
        blobs, links, absent = self._blobs, self._links, self._absent
        missing = [
            p for p in dict.fromkeys(paths) if p not in blobs and p not in links and p not in absent
        ]
        # Under a root listed whole, a path the listing lacks is not in the commit.
        self._absent.update(
            p for p in missing if p.startswith(self._listed) and p not in self._listed_paths
        )
        missing = [p for p in missing if p not in self._absent]
        if missing:
            out = self.git.run("ls-tree", "-z", "--full-tree", self.sha, "--", *missing)
            for entry in self._entries(out):
                self._record(*entry)
            self._absent.update(p for p in missing if p not in self._blobs and p not in self._links)

    def _follow(self, path: str) -> str | None:
        """The file a path names once symlinks inside the tree are followed, as on disk."""
        current = path
        for _ in range(_MAX_LINKS):
            self._look_up([current])
            if current in self._blobs:
                return current
            oid = self._links.get(current)
            if oid is None:
                return None
            target = os.fsdecode(self.git.run("cat-file", "blob", oid))
            joined = posixpath.normpath(posixpath.join(posixpath.dirname(current), target))
            if target.startswith("/") or joined == ".." or joined.startswith("../"):
                raise _link_outside(path)
            current = joined
        return None

    def read(self, paths: Iterable[str]) -> dict[str, bytes | None]:
        wanted = list(paths)
        self._look_up(wanted)
        contents: dict[str, bytes | None] = dict.fromkeys(wanted)
        blobs, absent = self._blobs, self._absent
        # What _look_up found missing stays missing: no need to follow it (10,000 paths on
        # a 5,000-image repo, most of them .dockerignore files that are not there).
        files = {p: p if p in blobs else None if p in absent else self._follow(p) for p in wanted}
        present = list(dict.fromkeys(f for f in files.values() if f is not None))
        if not present:
            return contents
        batch = "".join(f"{self._blobs[p]}\n" for p in present).encode()
        out = self.git.run("cat-file", "--batch", stdin=batch)
        data = {}
        offset = 0
        for path in present:
            header_end = out.index(b"\n", offset)
            size = int(out[offset:header_end].split()[2])
            start = header_end + 1
            data[path] = out[start : start + size]
            offset = start + size + 1
        for path, file in files.items():
            contents[path] = data[file] if file is not None else None
            if file is not None and file != path:
                self._targets[path] = file
        return contents

    def link_targets(self, paths: Iterable[str]) -> dict[str, str]:
        return {p: self._targets[p] for p in paths if p in self._targets}

    def gitlinks(self, paths: Sequence[str]) -> frozenset[str]:
        if not paths:
            return frozenset()
        out = self.git.run("ls-tree", "-z", "--full-tree", self.sha, "--", *paths)
        return frozenset(p for mode, _k, _o, p in self._entries(out) if mode == _GITLINK_MODE)

    def symlinks(self, paths: Iterable[str]) -> frozenset[str]:
        wanted = list(dict.fromkeys(paths))
        # A root list_files walked whole already knows its links.
        found = {p for p in wanted if p in self._listed_links}
        wanted = [p for p in wanted if not p.startswith(self._listed)]
        if not wanted:
            return frozenset(found)
        out = self.git.run("ls-tree", "-z", "--full-tree", self.sha, "--", *wanted)
        named = set(wanted)
        return frozenset(
            found
            | {
                path
                for mode, _kind, _oid, path in self._entries(out)
                if mode == _SYMLINK_MODE and path in named
            }
        )

    def linked_directories(self, directories: Iterable[str]) -> frozenset[str]:
        wanted = list(dict.fromkeys(directories))
        holders = {link.rpartition("/")[0] or "." for link in self._listed_links}
        found = {d for d in wanted if d in holders}
        # Inside a root list_files walked whole every link is known; others are asked.
        asked = [d for d in wanted if d == "." or not f"{d}/".startswith(self._listed)]
        if asked:
            # Without -r, a `dir/` pathspec lists the entries right inside the directory.
            specs = ["." if d == "." else f"{d}/" for d in asked]
            out = self.git.run("ls-tree", "-z", "--full-tree", self.sha, "--", *specs)
            for mode, _kind, _oid, path in self._entries(out):
                if mode == _SYMLINK_MODE:
                    found.add(path.rpartition("/")[0] or ".")
        asked_for = set(wanted)
        return frozenset(d for d in found if d in asked_for)
