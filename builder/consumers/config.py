"""builder.yaml's `consumers:` block: which files `builder pin` rewrites (pure).

    consumers:
      - deploy/argo/*.yaml                    # a glob; the kind is inferred per file
      - glob: deploy/chart/values*.yaml       # or a mapping: glob, kind, paths
        kind: helm
        paths: [image, jobs.*.image]          # helm only: dotted keys to image blocks

Kinds: argo, kubernetes (YAML read document by document, by each one's `kind`),
kustomize, helm, airflow (*.py), lockfile (images.lock.json). Inferred: *.py is airflow,
*.lock.json a lockfile, kustomization.yaml kustomize, other YAML argo/kubernetes.
"""

from __future__ import annotations

import difflib
import posixpath
from collections.abc import Mapping, Sequence

from builder.config import _describe
from builder.consumers.model import KINDS, ConsumerSpec, Kind
from builder.errors import ConfigError

_ITEM_KEYS = ("glob", "kind", "paths")


def parse_consumers(
    value: object, lines: Sequence[int] = (), *, path: str = "builder.yaml"
) -> tuple[ConsumerSpec, ...]:
    """Check the raw block; `lines` are its key's line, then each item's."""
    key_line = lines[0] if lines else None
    if value is None:
        raise ConfigError(
            "no 'consumers' to pin",
            file=path,
            line=key_line,
            hint="list the files builder pin rewrites under 'consumers:', e.g. - deploy/**/*.yaml",
        )
    if not isinstance(value, list) or not value:
        raise ConfigError(
            f"'consumers' must be a list of globs or mappings, got {_describe(value)}",
            file=path,
            line=key_line,
        )
    specs = []
    for index, item in enumerate(value):
        line = lines[index + 1] if index + 1 < len(lines) else key_line
        specs.append(_parse_item(item, line, path))
    return tuple(specs)


def _parse_item(item: object, line: int | None, path: str) -> ConsumerSpec:
    if isinstance(item, str):
        return ConsumerSpec(glob=_glob(item, line, path), line=line)
    if not isinstance(item, Mapping):
        raise ConfigError(
            f"a consumer must be a glob or a mapping with 'glob', got {_describe(item)}",
            file=path,
            line=line,
        )
    for key in item:
        if key not in _ITEM_KEYS:
            close = difflib.get_close_matches(str(key), _ITEM_KEYS, n=1)
            raise ConfigError(
                f"unknown consumer key {key!r}",
                file=path,
                line=line,
                hint=f"did you mean {close[0]!r}?" if close else "known keys: glob, kind, paths",
            )
    if "glob" not in item:
        raise ConfigError("a consumer mapping needs a 'glob'", file=path, line=line)
    glob = _glob(item["glob"], line, path)
    kind = _kind(item.get("kind"), line, path) if "kind" in item else None
    paths: tuple[str, ...] = ()
    if "paths" in item:
        if kind != "helm":
            raise ConfigError(
                "'paths' is for helm consumers only", file=path, line=line, hint="add kind: helm"
            )
        paths = _paths(item["paths"], line, path)
    elif kind == "helm":
        raise ConfigError(
            f"helm consumer {glob!r} needs 'paths'",
            file=path,
            line=line,
            hint="the dotted keys of its image blocks, e.g. paths: [image, jobs.*.image]",
        )
    return ConsumerSpec(glob=glob, kind=kind, paths=paths, line=line)


def _glob(value: object, line: int | None, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(
            f"a consumer glob must be a non-empty string, got {_describe(value)}",
            file=path,
            line=line,
        )
    glob = value.strip()
    normal = posixpath.normpath(glob)
    if glob.startswith("/") or normal == ".." or normal.startswith("../"):
        raise ConfigError(
            f"consumer glob {glob!r} must stay inside the repository",
            file=path,
            line=line,
            hint="write it relative to the repository root, e.g. deploy/**/*.yaml",
        )
    return glob


def _kind(value: object, line: int | None, path: str) -> Kind:
    for kind in KINDS:
        if value == kind:
            return kind
    close = difflib.get_close_matches(str(value), KINDS, n=1)
    raise ConfigError(
        f"unknown consumer kind {value!r}",
        file=path,
        line=line,
        hint=f"did you mean {close[0]!r}?" if close else "known kinds: " + ", ".join(KINDS),
    )


def _paths(value: object, line: int | None, path: str) -> tuple[str, ...]:
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, str) and v.strip() for v in value)
    ):
        raise ConfigError(
            f"'paths' must be a list of dotted keys, got {_describe(value)}",
            file=path,
            line=line,
        )
    paths = tuple(v.strip() for v in value)
    for key_path in paths:
        if any(not part for part in key_path.split(".")):
            raise ConfigError(
                f"invalid key path {key_path!r}",
                file=path,
                line=line,
                hint="dotted keys such as image or jobs.*.image",
            )
    return paths
