"""A cache of parsed Dockerfiles under .git, keyed by content: a push changes a few
Dockerfiles, so a thousand-image repo re-parses a few, not a thousand (benchmarks/)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from builder import dockerfiles
from builder.dockerfiles import ContextRead, DockerfileInfo, ImageReference, parse_dockerfile

# The parser's own source is part of every key: a new builder never trusts an old entry.
_PARSER_ID = hashlib.sha256(Path(dockerfiles.__file__).read_bytes()).hexdigest()[:16]


def _ref_json(ref: ImageReference | None) -> dict[str, Any] | None:
    if ref is None:
        return None
    return {
        "text": ref.text,
        "repository": ref.repository,
        "kind": ref.kind,
        "line": ref.line,
        "tag": ref.tag,
        "digest": ref.digest,
        "unset_args": list(ref.unset_args),
    }


def _ref(data: dict[str, Any] | None) -> ImageReference | None:
    if data is None:
        return None
    return ImageReference(
        text=data["text"],
        repository=data["repository"],
        kind=data["kind"],
        line=data["line"],
        tag=data.get("tag"),
        digest=data.get("digest"),
        unset_args=tuple(data.get("unset_args", ())),
    )


def _read_json(read: ContextRead) -> list[Any]:
    return [read.file, read.line, read.path, read.instruction, read.why]


def _read(data: list[Any]) -> ContextRead:
    file, line, path, instruction, why = data
    return ContextRead(file=file, line=line, path=path, instruction=instruction, why=why)


def info_to_json(info: DockerfileInfo) -> dict[str, Any]:
    return {
        "stages": list(info.stages),
        "references": [_ref_json(r) for r in info.references],
        "arg_names": sorted(info.arg_names),
        "base": _ref_json(info.base),
        "unreached": sorted(info.unreached),
        "reads": [_read_json(r) for r in info.reads],
        "platform_reads": info.platform_reads,
        "onbuild": list(info.onbuild) if info.onbuild is not None else None,
    }


def info_from_json(data: dict[str, Any]) -> DockerfileInfo:
    references = tuple(r for r in (_ref(d) for d in data["references"]) if r is not None)
    return DockerfileInfo(
        stages=tuple(data["stages"]),
        references=references,
        arg_names=frozenset(data["arg_names"]),
        base=_ref(data["base"]),
        unreached=frozenset(data.get("unreached", ())),
        # No default: an entry without its reads would read as "reads nothing".
        reads=tuple(_read(r) for r in data["reads"]),
        platform_reads=bool(data["platform_reads"]),
        onbuild=(data["onbuild"][0], data["onbuild"][1]) if data["onbuild"] else None,
    )


class ParseCache:
    """parse_dockerfile with memory: entries used this run are kept, the rest dropped."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._old: dict[str, Any] = {}
        self._used: dict[str, Any] = {}
        if path is not None:
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                data = {}
            if isinstance(data, dict) and data.get("parser") == _PARSER_ID:
                entries = data.get("entries")
                self._old = entries if isinstance(entries, dict) else {}

    def parse(
        self,
        text: str,
        *,
        path: str,
        build_args: Mapping[str, str] | None = None,
        target: str | None = None,
        platforms: Sequence[str] = ("linux/amd64",),
    ) -> DockerfileInfo:
        material = "\0".join(
            [text, path, repr(sorted((build_args or {}).items())), repr(target), repr(platforms)]
        )
        key = hashlib.sha256(material.encode("utf-8", "surrogatepass")).hexdigest()
        entry = self._old.get(key) or self._used.get(key)
        if entry is not None:
            try:
                info = info_from_json(entry)
            except (KeyError, TypeError, ValueError):
                entry = None
            else:
                self._used[key] = entry
                return info
        info = parse_dockerfile(
            text, path=path, build_args=build_args, target=target, platforms=platforms
        )
        self._used[key] = info_to_json(info)
        return info

    def save(self) -> None:
        """Best effort: a cache that cannot be written only costs time next run."""
        if self.path is None or self._used == self._old:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_text(
                json.dumps({"parser": _PARSER_ID, "entries": self._used}), encoding="utf-8"
            )
            temporary.replace(self.path)
        except OSError:
            pass
