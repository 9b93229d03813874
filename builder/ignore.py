"""`.dockerignore` matching with Docker's semantics, not git's (pure).

Docker anchors every pattern at the context root (`*.md` matches `README.md` but not
`docs/x.md`), lets `**` span directories, excludes a directory's contents when the
directory matches, and lets the last matching pattern win so `!` re-includes. This
follows moby/patternmatcher (patternmatcher.go: MatchesOrParentMatches, which tests the
path and every one of its parent directories) and moby/buildkit's ignorefile.ReadAll.
"""

from __future__ import annotations

import posixpath
import re
import warnings
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class _Pattern:
    regex: re.Pattern[str]
    exclusion: bool  # a `!` pattern: re-includes what it matches
    body: str = ""


def parse_ignore_patterns(text: str) -> tuple[str, ...]:
    """The patterns of a .dockerignore, cleaned as Docker cleans them."""
    patterns = []
    for raw in text.removeprefix("\ufeff").splitlines():
        if raw.startswith("#"):
            continue
        pattern = raw.strip()
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = posixpath.normpath(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern.lstrip("/") or "/"
        patterns.append(("!" if invert else "") + pattern)
    return tuple(patterns)


def pattern_problem(pattern: str) -> str | None:
    """Why Docker refuses a cleaned pattern, else None.

    patternmatcher.New rejects a bare `!` and any pattern Go's filepath.Match calls
    malformed (it checks the whole pattern, match or not): an unclosed `[`, a class edge
    like `[]` or `[a-]`, a trailing backslash; a reversed range like `[z-a]` fails when
    the pattern becomes a Go regexp. One bad line fails every build of the context.
    """
    if pattern == "!":
        return "'!' needs a pattern after it"
    body = pattern.removeprefix("!")
    i, n = 0, len(body)
    while i < n:
        if body[i] == "\\":
            if i + 1 >= n:
                return "it ends in an escaping backslash"
            i += 2
        elif body[i] == "[":
            _, i, problem = _scan_class(body, i)
            if problem is not None:
                return problem
        else:
            i += 1
    return None


def _class_char(body: str, i: int) -> tuple[int, str]:
    """Go's getEsc: the index after one class character and the character; -1 when the
    class is bad there. A character must be followed by more (at least the `]`)."""
    if i >= len(body) or body[i] in "-]":
        return -1, ""
    if body[i] == "\\":
        i += 1
        if i >= len(body):
            return -1, ""
    char = body[i]
    i += 1
    return (i if i < len(body) else -1), char


def ignore_problems(text: str) -> tuple[int, str, str] | None:
    """The first pattern Docker would refuse: (line number, the line, why)."""
    for number, raw in enumerate(text.removeprefix("\ufeff").splitlines(), start=1):
        if raw.startswith("#"):
            continue
        cleaned = parse_ignore_patterns(raw)
        if cleaned:
            problem = pattern_problem(cleaned[0])
            if problem is not None:
                return number, raw.strip(), problem
    return None


def _translate(pattern: str) -> str:
    out = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if i + 1 < n and pattern[i + 1] == "*":
                i += 1
                if i + 1 < n and pattern[i + 1] == "/":
                    i += 1
                out.append(".*" if i + 1 >= n else "(.*/)?")
            else:
                out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        elif ch == "[":
            translated, end, _ = _scan_class(pattern, i)
            if end < 0:
                out.append(re.escape(ch))  # malformed: Docker refuses it; see pattern_problem
            else:
                out.append(translated)
                i = end - 1
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out)


def _scan_class(pattern: str, start: int) -> tuple[str, int, str | None]:
    """`[...]` at `start`: as a Python class, the index after it, and why Go refuses it
    (None when it does not).

    Go reads `[^a]` as a negation and `[!a]` as '!' or 'a', and `\\` escapes inside too."""
    malformed = "its character class is malformed or not closed"
    i = start + 1
    out = ["["]
    if pattern[i : i + 1] == "^":
        out.append("^")
        i += 1
    ranges = 0
    while not (i < len(pattern) and pattern[i] == "]" and ranges):
        i, low = _class_char(pattern, i)
        if i < 0:
            return "", -1, malformed
        out.append(re.escape(low))
        if pattern[i] == "-":
            i, high = _class_char(pattern, i + 1)
            if i < 0:
                return "", -1, malformed
            if high < low:
                return "", -1, f"its character range {low}-{high} is reversed"
            out.append("-" + re.escape(high))
        ranges += 1
    out.append("]")
    return "".join(out), i + 1, None


class IgnoreMatcher:
    """Answers whether a context-relative path is excluded from the build context."""

    def __init__(self, patterns: tuple[str, ...]) -> None:
        compiled = []
        for pattern in patterns:
            exclusion = pattern.startswith("!")
            body = pattern[1:] if exclusion else pattern
            if not body:
                continue
            try:
                with warnings.catch_warnings():
                    # `[[:alpha:]]` is fine for Go but a "possible nested set" to Python.
                    warnings.simplefilter("ignore", FutureWarning)
                    regex = re.compile(_translate(body), re.DOTALL)
            except re.error:
                continue  # Docker rejects the whole file here; we stay conservative: no match
            compiled.append(_Pattern(regex, exclusion, body))
        self._patterns = tuple(compiled)

    @classmethod
    def from_text(cls, text: str) -> IgnoreMatcher:
        return cls(parse_ignore_patterns(text))

    def __bool__(self) -> bool:
        return bool(self._patterns)

    def excludes(self, path: str) -> bool:
        parents = path.split("/")[:-1]
        prefixes = ["/".join(parents[: i + 1]) for i in range(len(parents))]
        excluded = False
        for pattern in self._patterns:
            if pattern.exclusion != excluded:
                continue  # cannot change the outcome, as in patternmatcher
            # A directory that matches takes its whole subtree with it.
            if pattern.regex.fullmatch(path) or any(pattern.regex.fullmatch(p) for p in prefixes):
                excluded = not pattern.exclusion
        return excluded

    def excludes_directory(self, path: str) -> bool:
        """Whether nothing under directory `path` can be sent: it is excluded and no `!`
        pattern reaches inside it. Conservative: False whenever that is unclear."""
        if not self.excludes(path):
            return False
        inside = path + "/"
        for pattern in self._patterns:
            if pattern.exclusion:
                prefix = literal_prefix(pattern.body)
                if prefix.startswith(inside) or inside.startswith(prefix):
                    return False
        return True

    def kept(self, paths: Sequence[str]) -> list[str]:
        """The paths (context-relative, sorted) the build context keeps, fast enough for
        every file of a big repo: whitelist-style files (`*` then `!dir/`) only look at
        the paths under their `!` prefixes, and directory verdicts are computed once."""
        if not self._patterns:
            return list(paths)
        candidates: Sequence[str] = paths
        everything = [
            i for i, p in enumerate(self._patterns) if not p.exclusion and p.body in _MATCH_ALL
        ]
        if everything:
            prefixes = [
                literal_prefix(p.body) for p in self._patterns[everything[-1] :] if p.exclusion
            ]
            if all(prefixes):
                chosen: set[int] = set()
                for prefix in prefixes:
                    start = bisect_left(paths, prefix)
                    stop = bisect_left(paths, prefix + "\U0010ffff")
                    chosen.update(range(start, stop))
                candidates = [paths[i] for i in sorted(chosen)]
            elif not prefixes:
                return []
        directory_hits: dict[str, frozenset[int]] = {"": frozenset()}

        def hits_of(directory: str) -> frozenset[int]:
            found = directory_hits.get(directory)
            if found is None:
                parent = directory.rpartition("/")[0]
                own = {i for i, p in enumerate(self._patterns) if p.regex.fullmatch(directory)}
                found = directory_hits[directory] = hits_of(parent) | own
            return found

        kept = []
        for path in candidates:
            hits = set(hits_of(path.rpartition("/")[0]))
            hits.update(i for i, p in enumerate(self._patterns) if p.regex.fullmatch(path))
            if not hits or self._patterns[max(hits)].exclusion:
                kept.append(path)
        return kept


_MATCH_ALL = frozenset({"*", "**", "**/*"})


def literal_prefix(pattern: str) -> str:
    """The part of a pattern before its first wildcard: every path it matches starts so."""
    cut = len(pattern)
    for char in "*?[\\":
        index = pattern.find(char)
        if index != -1:
            cut = min(cut, index)
    return pattern[:cut]
