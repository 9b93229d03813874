"""A cache of parsed Dockerfiles under .git, keyed by content: a push changes a few
Dockerfiles, so a thousand-image repo re-parses a few, not a thousand (benchmarks/)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from builder import dockerfiles, instructions
from builder.dockerfiles import ContextRead, DockerfileInfo, ImageReference, ParseRequest

# The parser's own source is part of every key: a new builder never trusts an old entry.
_PARSER_ID = hashlib.sha256(
    b"".join(Path(m.__file__ or "").read_bytes() for m in (dockerfiles, instructions))
).hexdigest()[:16]


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


# A process parses at least this many Dockerfiles: below it, forking costs more than it saves.
_PER_PROCESS = 64
_MAX_PROCESSES = 8


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _can_fork() -> bool:
    """Forking copies only the calling thread. Go's runtime, which the parser binding starts
    when it loads, keeps threads of its own, so a child of a process that loaded it could
    hang in the parser: fork only a single-threaded process that has not."""
    return hasattr(os, "fork") and "dockerfile" not in sys.modules and threading.active_count() == 1


def _parse_entries(requests: Sequence[tuple[str, ParseRequest]]) -> list[tuple[str, Any]]:
    """The cache entries of the requests that parse; one that fails is left to the caller,
    which parses it again in order and reports the error where it belongs."""
    out = []
    for key, request in requests:
        with contextlib.suppress(Exception):
            out.append((key, info_to_json(request.parse())))
    return out


def parse_in_processes(
    requests: Sequence[tuple[str, ParseRequest]], processes: int
) -> list[tuple[str, Any]]:
    """Parse on several cores: this process takes the first share, a forked child each other
    share. A child that fails only costs its share, which the caller parses again."""
    shares = [requests[i::processes] for i in range(processes)]
    children: list[tuple[int, int]] = []
    for share in shares[1:]:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: parse, hand the entries back, and leave at once
            status = 1
            try:
                os.close(read_end)
                with os.fdopen(write_end, "w", encoding="utf-8") as pipe:
                    json.dump(_parse_entries(share), pipe)
                status = 0
            finally:
                os._exit(status)
        os.close(write_end)
        children.append((pid, read_end))
    out = _parse_entries(shares[0])
    for pid, read_end in children:
        with os.fdopen(read_end, encoding="utf-8") as pipe:
            data = pipe.read()
        _, status = os.waitpid(pid, 0)
        if status == 0:
            with contextlib.suppress(ValueError):
                out.extend((key, entry) for key, entry in json.loads(data))
    return out


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
        request = ParseRequest(text, path, build_args, target, platforms)
        key = request.key()
        entry = self._old.get(key) or self._used.get(key)
        if entry is not None:
            try:
                info = info_from_json(entry)
            except (KeyError, TypeError, ValueError):
                entry = None
            else:
                self._used[key] = entry
                return info
        info = request.parse()
        self._used[key] = info_to_json(info)
        return info

    def warm(self, requests: Sequence[ParseRequest]) -> None:
        """Parse ahead, on every core, the Dockerfiles this cache lacks: a fresh clone, as a
        CI runner has it, lacks them all."""
        missing: dict[str, ParseRequest] = {}
        for request in requests:
            key = request.key()
            if key not in self._old and key not in self._used:
                missing.setdefault(key, request)
        processes = min(_cores(), _MAX_PROCESSES, len(missing) // _PER_PROCESS)
        if processes < 2 or not _can_fork():
            return
        for key, entry in parse_in_processes(list(missing.items()), processes):
            self._used[key] = entry

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
