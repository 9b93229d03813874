"""Which folders are images: the image roots of builder.yaml, plain or glob (pure).

A plain root (`images`) is a folder whose subfolders are images. A root with glob
characters (`debian/*/*`, as docker-library's buildpack-deps lays out
`debian/bookworm/curl/Dockerfile`) names the image folders themselves, one path component
per pattern component (`*` never crosses a `/`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from fnmatch import fnmatchcase
from pathlib import PurePosixPath

from builder.model import IMAGE_FILE

DEFINING = ("Dockerfile", IMAGE_FILE)
# The same as path endings: `images/api/Dockerfile` ends with one, `images/api` does not.
DEFINING_PATHS = tuple(f"/{name}" for name in DEFINING)
_GLOB_CHARS = "*?["


def is_glob(root: str) -> bool:
    return any(c in root for c in _GLOB_CHARS)


def listing_root(root: str) -> str:
    """The folder to list to find a root's images: a glob's literal leading folders."""
    if not is_glob(root):
        return root
    literal = []
    for part in root.split("/"):
        if is_glob(part):
            break
        literal.append(part)
    return "/".join(literal) or "."


def root_of(directory: str, roots: Sequence[str]) -> str | None:
    """The root that makes `directory` an image folder, if any (called for every file of
    a big repo: plain roots are a set look-up, globs are tried only at their depth)."""
    plain, globs = _split(tuple(roots))
    parent = directory.rpartition("/")[0]
    if parent in plain:
        return parent
    if globs:
        depth = directory.count("/") + 1
        for root, pattern in globs:
            if len(pattern) == depth and all(map(fnmatchcase, directory.split("/"), pattern)):
                return root
    return None


@functools.cache
def _split(
    roots: tuple[str, ...],
) -> tuple[frozenset[str], tuple[tuple[str, tuple[str, ...]], ...]]:
    plain = frozenset(r for r in roots if not is_glob(r))
    return plain, tuple((r, tuple(r.split("/"))) for r in roots if is_glob(r))


def compute_image_dirs(files: Sequence[str], roots: Sequence[str]) -> tuple[PurePosixPath, ...]:
    """Image folders: those a root names that hold a Dockerfile or an image.yaml."""
    dirs: set[str] = set()
    for path in files:
        if not path.endswith(DEFINING_PATHS):  # most files: one check, no split
            continue
        head = path.rpartition("/")[0]
        if root_of(head, roots) is not None:
            dirs.add(head)
    return tuple(PurePosixPath(d) for d in sorted(dirs))


def default_name(directory: str, roots: Sequence[str]) -> str:
    """An image's name when image.yaml gives none: its folder's name under a plain root;
    under a glob root the folders below the glob's literal part, joined with '-'
    (`debian/bookworm/curl` under `debian/*/*` is `bookworm-curl`), so suites that reuse
    variant folder names (bookworm/curl, bullseye/curl) do not collide."""
    root = root_of(directory, roots)
    if root is None or not is_glob(root):
        return directory.rpartition("/")[2]
    literal = listing_root(root)
    below = directory if literal == "." else directory[len(literal) + 1 :]
    return below.replace("/", "-")
