"""`.dockerignore` semantics exactly as Docker's BuildKit applies them (pure, no I/O).

Three pieces of Go decide which files a build sends, and this module follows each one:
- reading the file: moby/patternmatcher `ignorefile.ReadAll` (bufio lines, Go's TrimSpace,
  `filepath.Clean`, one leading `/` dropped);
- each pattern: `patternmatcher.New` and `Pattern.compile`, which make a pattern an exact
  path, a prefix, a suffix or a Go regexp (run here by RE2: the same syntax, and linear
  time however the pattern stacks `**` and `*`);
- the walk: tonistiigi/fsutil `filter.go`, which visits directories top-down, hands each
  entry the patterns its directory matched (`MatchesUsingParentResults`) and skips a
  matched directory outright when no `!` pattern could reach inside it.

Docker anchors every pattern at the context root (`*.md` matches `README.md` but not
`docs/x.md`) and lets the last matching pattern win, so `!` re-includes; a pattern that
starts with `**` and has no other wildcard is a plain suffix (`**.py` matches `a/b.py`).
Paths are context-relative, `/`-separated file paths (git's list: files and symlinks).
"""

from __future__ import annotations

import enum
import functools
import itertools
import re
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import re2

# bufio.Scanner's default MaxScanTokenSize: ReadAll fails on a longer line, and so does the
# build (frontend/dockerui reads .dockerignore with ignorefile.ReadAll).
MAX_LINE_BYTES = 64 * 1024 - 1

# Go's unicode.IsSpace, which strings.TrimSpace uses: not str.strip, which also drops
# \x1c-\x1f (and str.isspace agrees with Python, not Go).
_GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)

# What makes fsutil walk into a matched directory just in case a `!` pattern reaches
# inside it (filter.go: patternChars).
_FSUTIL_PATTERN_CHARS = frozenset("*[]?^\\")

# What patternmatcher escapes when it writes a pattern's regexp. Its source lists
# `.+()|{}$`, but its bitmap (escapeBytes[b%8] |= 1 << (b/8), in a byte) loses every
# character from 64 up: `|`, `{` and `}` reach the regexp raw, so `a*|b` is an
# alternation and `*{2}` a repeat. The engine agrees (tests/test_ignore.py pins it).
_GO_ESCAPED = frozenset(".+()$")
_GO_ESCAPES = str.maketrans({ch: "\\" + ch for ch in _GO_ESCAPED})
# Only these, copied into the regexp as they are, can make one Go refuses (`[z-a]`, `\\y`,
# `a{1001}`); the rest become `[^/]*`, `[^/]`, `(.*/)?` or escaped text, which compile.
_MAY_NOT_COMPILE = frozenset("[\\{")
_PIECES = re.compile(r"\*\*/?|\*|\?|\\.?|[][]|[^][*?\\]+", re.DOTALL)

# Characters that are not literal in a pattern's Go regexp: the wildcards, the escape, a
# class, and what patternmatcher leaves unescaped (`^` anchors; `|`, `{`, `}`).
_NOT_LITERAL = frozenset("*?[]\\^|{}\ufffd")

_ILLEGAL_EXCLUSION = "'!' needs a pattern after it"
_BAD_CLASS = "its character class is malformed or not closed"
_TRAILING_ESCAPE = "it ends in an escaping backslash"


def _go_trim_space(text: str) -> str:
    return text.strip(_GO_SPACE)


def _go_clean(path: str) -> str:
    """Go's filepath.Clean on Unix (posixpath.normpath keeps a leading `//`; Go does not)."""
    if not {"", ".", ".."} & set(path.split("/")):
        return path  # already clean: the common case
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(part)
    cleaned = "/".join(parts)
    if rooted:
        return "/" + cleaned
    return cleaned or "."


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _go_lines(text: str) -> list[str]:
    """bufio.Scanner's ScanLines: split on `\\n` only, drop one `\\r` before it, no empty
    last line. str.splitlines would also split on \\v, \\f, \\x1c-\\x1e, \\x85, U+2028..."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def _read_all(text: str) -> list[tuple[int, str]]:
    """ignorefile.ReadAll, with each pattern's line number."""
    patterns = []
    for number, line in enumerate(_go_lines(text), start=1):
        raw = line.removeprefix("\ufeff") if number == 1 else line
        if raw.startswith("#"):
            continue
        pattern = _go_trim_space(raw)
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = _go_trim_space(pattern[1:])
        if pattern:
            pattern = _go_clean(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        patterns.append((number, "!" + pattern if invert else pattern))
    return patterns


def parse_ignore_patterns(text: str) -> tuple[str, ...]:
    """The patterns of a .dockerignore, cleaned as Docker cleans them (ignorefile.ReadAll)."""
    return tuple(pattern for _, pattern in _read_all(text))


# -- one pattern: patternmatcher.New and Pattern.compile ---------------------------------


class _Kind(enum.Enum):
    EXACT = "exact"  # path == pattern
    PREFIX = "prefix"  # `foo/**`, `foo**`: the path starts with what precedes `**`
    SUFFIX = "suffix"  # `**` first, no other wildcard: the path ends with what follows
    REGEXP = "regexp"


@dataclass(frozen=True, slots=True)
class _Pattern:
    exclusion: bool  # a `!` pattern: re-includes what it matches
    cleaned: str  # patternmatcher's cleanedPattern: what the walk compares, without `!`
    kind: _Kind
    literal: str  # EXACT: the path; PREFIX: what precedes `**`; SUFFIX: what follows it
    regexp: str  # the Go regexp source patternmatcher builds (for REGEXP)
    chars: str  # the pattern as Go's text/scanner reads it (a leading BOM skipped)


@functools.lru_cache(maxsize=16384)  # a .dockerignore is checked, then matched with
def _new(pattern: str) -> _Pattern | str | None:
    """patternmatcher.New for one pattern: the compiled pattern, why Go refuses it, or None
    when it is blank. New trims and cleans again, `!` included: `!/` becomes `!`."""
    text = _go_trim_space(pattern)
    if not text:
        return None
    text = _go_clean(text)
    exclusion = text.startswith("!")
    if exclusion:
        if len(text) == 1:
            return _ILLEGAL_EXCLUSION
        text = text[1:]
    problem = _match_problem(_utf8(text))
    if problem is not None:
        return problem
    return _compile(text, exclusion)


def _compile(cleaned: str, exclusion: bool) -> _Pattern:
    """Pattern.compile, character for character: the regexp source and the match type.

    Only `.+()$` are escaped (see _GO_ESCAPED); `\\` and the character after it are copied
    as a regexp escape (`\\d` is a digit class), `[` and `]` are copied raw (a `*` inside
    `[...]` still becomes `[^/]*`), and `^`, `|`, `{`, `}` keep their regexp meaning. `**`
    at the very first character makes a suffix match unless a later wildcard, escape or
    bracket makes it a regexp (`i == 0` in the Go loop)."""
    # text/scanner skips a BOM that starts its input; the exact/prefix/suffix literals do not.
    chars = cleaned.removeprefix("\ufeff")
    out = ["^"]
    kind = _Kind.EXACT
    # One piece per turn of Go's loop, except that a run of plain characters is one piece:
    # only a `**` asks which turn it is, and only whether it is the first.
    pieces = _PIECES.findall(chars)
    for i, piece in enumerate(pieces):
        if piece.startswith("**"):
            if i == len(pieces) - 1:  # `**` or `**/` at the end
                if kind is _Kind.EXACT:
                    kind = _Kind.PREFIX
                else:
                    out.append(".*")
                    kind = _Kind.REGEXP
            else:
                out.append("(.*/)?")
                kind = _Kind.REGEXP
            if i == 0:
                kind = _Kind.SUFFIX
        elif piece == "*":
            out.append("[^/]*")
            kind = _Kind.REGEXP
        elif piece == "?":
            out.append("[^/]")
            kind = _Kind.REGEXP
        elif piece[0] == "\\":
            out.append(piece)  # the escape and its character, or a lone trailing `\`
            if len(piece) == 2:
                kind = _Kind.REGEXP
        elif piece in ("[", "]"):
            out.append(piece)
            kind = _Kind.REGEXP
        else:
            out.append(piece.translate(_GO_ESCAPES))
    if kind is _Kind.REGEXP:
        out.append("$")
    if kind is _Kind.PREFIX:
        literal = cleaned[:-2]
    elif kind is _Kind.SUFFIX:
        # Go slices bytes: cleanedPattern[2:] (after a BOM that is the BOM's last byte).
        literal = _utf8(cleaned)[2:].decode("utf-8", "surrogateescape")
    else:
        literal = cleaned
    regexp = _go_text("".join(out)) if kind is _Kind.REGEXP else ""
    return _Pattern(
        exclusion=exclusion,
        cleaned=cleaned,
        kind=kind,
        literal=literal,
        regexp=regexp,
        chars=_go_text(chars),
    )


def _go_text(text: str) -> str:
    """Text as Go's decoders see it: each byte that is not UTF-8 (a surrogate escape from
    os.fsdecode) reads as U+FFFD, which a Go regexp then matches."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in text)
    return text


# -- filepath.Match(pattern, "."): the syntax check patternmatcher.New runs ---------------


def _match_problem(pattern: bytes) -> str | None:
    """Why Go's filepath.Match(pattern, ".") returns ErrBadPattern, else None; a port of
    path/filepath/match.go, whose early returns decide which mistakes it sees: only those
    up to the first chunk that fails to match "."."""
    if b"[" not in pattern and b"\\" not in pattern:
        return None  # only a class or an escape can be malformed
    name = b"."
    while pattern:
        star, chunk, pattern = _scan_chunk(pattern)
        if star and not chunk:
            return None  # a trailing `*` matches the rest
        rest, ok, problem = _match_chunk(chunk, name)
        if ok and (not rest or pattern):
            name = rest
            continue
        if problem is not None:
            return problem
        if star:
            advanced = False
            i = 0
            while i < len(name) and name[i] != ord("/"):
                rest, ok, problem = _match_chunk(chunk, name[i + 1 :])
                if ok:
                    if not pattern and rest:
                        i += 1
                        continue
                    name = rest
                    advanced = True
                    break
                if problem is not None:
                    return problem
                i += 1
            if advanced:
                continue
        # Newer Go also checks the rest of the pattern here; the buildx this was checked
        # against does not: it takes `a*[` (its regexp then fails the walk) and `x*\\`.
        return None
    return None


def _scan_chunk(pattern: bytes) -> tuple[bool, bytes, bytes]:
    star = False
    while pattern[:1] == b"*":
        pattern = pattern[1:]
        star = True
    in_range = False
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == ord("\\"):
            if i + 1 < len(pattern):
                i += 1
        elif ch == ord("["):
            in_range = True
        elif ch == ord("]"):
            in_range = False
        elif ch == ord("*") and not in_range:
            break
        i += 1
    return star, pattern[:i], pattern[i:]


def _decode_rune(data: bytes) -> tuple[int, int]:
    """utf8.DecodeRune: (code point, width); (0xFFFD, 1) for a byte that starts no rune."""
    for width in range(1, min(4, len(data)) + 1):
        try:
            return ord(data[:width].decode("utf-8")), width
        except UnicodeDecodeError:
            continue
    return 0xFFFD, 1


def _match_chunk(chunk: bytes, s: bytes) -> tuple[bytes, bool, str | None]:
    failed = False
    while chunk:
        if not failed and not s:
            failed = True
        head = chunk[0]
        if head == ord("["):
            rune = -1
            if not failed:
                rune, width = _decode_rune(s)
                s = s[width:]
            chunk = chunk[1:]
            negated = False
            if chunk[:1] == b"^":
                negated = True
                chunk = chunk[1:]
            matched = False
            ranges = 0
            while True:
                if chunk[:1] == b"]" and ranges > 0:
                    chunk = chunk[1:]
                    break
                low, chunk, bad = _get_esc(chunk)
                if bad:
                    return b"", False, _BAD_CLASS
                high = low
                if chunk[:1] == b"-":
                    high, chunk, bad = _get_esc(chunk[1:])
                    if bad:
                        return b"", False, _BAD_CLASS
                if low <= rune <= high:
                    matched = True
                ranges += 1
            if matched == negated:
                failed = True
        elif head == ord("?"):
            if not failed:
                if s[0] == ord("/"):
                    failed = True
                _, width = _decode_rune(s)
                s = s[width:]
            chunk = chunk[1:]
        else:
            if head == ord("\\"):
                chunk = chunk[1:]
                if not chunk:
                    return b"", False, _TRAILING_ESCAPE
            if not failed:
                if chunk[0] != s[0]:
                    failed = True
                s = s[1:]
            chunk = chunk[1:]
    if failed:
        return b"", False, None
    return s, True, None


def _get_esc(chunk: bytes) -> tuple[int, bytes, bool]:
    """filepath's getEsc: one class character, the rest, and whether the class is bad."""
    if not chunk or chunk[:1] in (b"-", b"]"):
        return 0, chunk, True
    if chunk[:1] == b"\\":
        chunk = chunk[1:]
        if not chunk:
            return 0, chunk, True
    rune, width = _decode_rune(chunk)
    rest = chunk[width:]
    bad = (rune == 0xFFFD and width == 1) or not rest
    return rune, rest, bad


# -- the Go regexp, run by RE2 ------------------------------------------------------------


def _re2_options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False
    options.never_capture = True  # a yes/no answer is all the walk wants: much faster
    # RE2's default 8 MiB budget refuses a long line of `?` that Go compiles happily.
    options.max_mem = 1 << 30
    return options


_OPTIONS = _re2_options()


def _compile_regexp(source: str) -> Any:
    """The compiled regexp, or why Go's regexp.Compile refuses it (a str).

    RE2 (C++) and Go's regexp share one syntax, save `\\C` (any byte): RE2 takes it, Go
    refuses it. `\\Q...\\E` quotes, so a `\\C` there is only text."""
    try:
        compiled = re2.compile(source, _OPTIONS)
    except re2.error as exc:
        return f"Go's regexp refuses it ({_error_text(exc)})"
    i = 0
    while i < len(source):
        if source[i] == "\\" and i + 1 < len(source):
            if source[i + 1] == "C":
                return "Go's regexp refuses it (invalid escape sequence: \\C)"
            if source[i + 1] == "Q":
                end = source.find("\\E", i + 2)
                i = len(source) if end < 0 else end + 2
                continue
            i += 2
            continue
        i += 1
    return compiled


_regexp = functools.lru_cache(maxsize=1024)(_compile_regexp)


def _error_text(exc: re2.error) -> str:
    detail = exc.args[0] if exc.args else ""
    if isinstance(detail, bytes):
        detail = detail.decode("utf-8", "replace")
    return str(detail)


def pattern_problem(pattern: str) -> str | None:
    """Why Docker refuses a pattern (as parse_ignore_patterns returns it), else None.

    patternmatcher.New refuses a bare `!` (also `!/`, which it cleans to `!`) and any
    pattern Go's filepath.Match calls malformed: an unclosed `[`, a class edge like `[]` or
    `[a-]`, a trailing backslash. A pattern whose Go regexp does not compile (`[z-a]`,
    `\\y`, `\\C`) fails the build's walk when it is first tried; builder refuses it up front.
    One bad line fails every build of the context."""
    compiled = _new(pattern)
    if compiled is None or isinstance(compiled, str):
        return compiled
    if compiled.kind is _Kind.REGEXP and _MAY_NOT_COMPILE & set(compiled.chars):
        regexp = _regexp(compiled.regexp)
        if isinstance(regexp, str):
            return regexp
    return None


@functools.lru_cache(maxsize=256)  # a monorepo's .dockerignore files are mostly one text
def ignore_problems(text: str) -> tuple[int, str, str] | None:
    """What fails a build reading this .dockerignore: (line number, the line, why).

    In Docker's order: a line longer than bufio's 64 KiB limit fails the reading itself; a
    control character the patterns cannot carry to the client fails the transfer; then
    patternmatcher.New refuses its first bad pattern, and a bad regexp fails the walk."""
    lines = _go_lines(text)
    for number, line in enumerate(lines, start=1):
        if len(_utf8(line)) > MAX_LINE_BYTES:
            shown = _go_trim_space(line)
            return number, shown[:40] + "...", "it is longer than Docker reads (64 KiB)"
    read = _read_all(text)
    # The daemon hands the patterns to the BuildKit client in a gRPC header, which takes
    # printable ASCII only; buildkit's filesync URL-encodes the whole list only when some
    # pattern has a character beyond ASCII (encodeStringForHeader). So a tab inside a
    # pattern fails the build, unless another pattern has an `é`.
    if all(pattern.isascii() for _, pattern in read):
        for number, pattern in read:
            if any(ch < " " or ch == "\x7f" for ch in pattern):
                why = "it holds a control character, which Docker cannot pass on to BuildKit"
                return number, _go_trim_space(lines[number - 1]), why
    for number, pattern in read:
        compiled = _new(pattern)
        if isinstance(compiled, str):
            return number, _go_trim_space(lines[number - 1]), compiled
    for number, pattern in read:
        problem = pattern_problem(pattern)
        if problem is not None:
            return number, _go_trim_space(lines[number - 1]), problem
    return None


# -- which patterns can match a path: indexes, so a path never meets every pattern --------
# Most patterns never match a given path. Exact, prefix and suffix patterns are dict
# lookups; a regexp pattern is filed under a literal fact every path it matches shares (a
# whole path component, the text it ends with, or its number of `/`), and RE2 runs only on
# the regexps filed under what the path has, a chunk of them per call.


class _Member:
    """One regexp pattern in a group, with the literal facts each match must share."""

    __slots__ = ("_compiled", "index", "slashes", "source", "tail")

    def __init__(self, index: int, source: str, tail: str, slashes: int) -> None:
        self.index = index
        self.source = source
        self.tail = tail  # every match ends with it ("" when unknown)
        self.slashes = slashes  # every match has this many `/` (-1 when unknown)
        self._compiled: Any = None

    def matches(self, path: str, data: bytes) -> bool:
        if self.tail and not path.endswith(self.tail):
            return False
        if self.slashes >= 0 and path.count("/") != self.slashes:
            return False
        if self._compiled is None:
            regexp = _compile_regexp(self.source)
            # A regexp Go refuses fails the build (ignore_problems); here it never matches.
            self._compiled = _NEVER if isinstance(regexp, str) else regexp
        return self._compiled.search(data) is not None


class _Group:
    """Regexp patterns filed under one fact. A big group is asked a chunk at a time: first
    one alternation ("could any match?"), then, if so, an RE2 set for which ones do. A
    set that runs out of memory answers nothing; after a yes from the alternation that is
    noticed, and the members are tried one by one."""

    CHUNK = 128

    def __init__(self) -> None:
        self.members: list[_Member] = []
        self._alternations: list[Any] = []  # compiled on first use, one per chunk
        self._sets: list[Any] = []

    def add(self, member: _Member) -> None:
        self.members.append(member)

    def hits(self, path: str, data: bytes, found: list[int]) -> None:
        members = self.members
        if len(members) <= 4:
            found.extend(m.index for m in members if m.matches(path, data))
            return
        for chunk, start in enumerate(range(0, len(members), self.CHUNK)):
            if chunk == len(self._alternations):
                self._alternations.append(_alternation(members[start : start + self.CHUNK]))
                self._sets.append(_set(members[start : start + self.CHUNK]))
            if self._alternations[chunk].search(data) is None:
                continue
            matched = self._sets[chunk].Match(data) if self._sets[chunk] is not None else None
            if matched:
                found.extend(members[start + i].index for i in matched)
            else:
                part = members[start : start + self.CHUNK]
                found.extend(m.index for m in part if m.matches(path, data))


_ALWAYS = re2.compile("", _OPTIONS)
_NEVER = re2.compile("[^\\x00-\\x{10FFFF}]", _OPTIONS)


def _alternation(members: Sequence[_Member]) -> Any:
    """One RE2 for "could any of these match?": each alternative keeps its own anchors.
    `\\Q` quotes to the end of its regexp, so it could not be one alternative of many."""
    sources = [m.source for m in members]
    if any("\\Q" in s for s in sources):
        return _ALWAYS
    try:
        return re2.compile("|".join(f"(?:{s})" for s in sources), _OPTIONS)
    except re2.error:
        pass
    # Some regexp does not compile (Go fails the build on it): leave it out.
    sources = [s for s in sources if not isinstance(_regexp(s), str)]
    if not sources:
        return _NEVER
    try:
        return re2.compile("|".join(f"(?:{s})" for s in sources), _OPTIONS)
    except re2.error:
        return _ALWAYS


def _set(members: Sequence[_Member]) -> Any:
    """An RE2 set of the members' regexps (None when one of them does not compile)."""
    regexps = re2.Set.SearchSet(_OPTIONS)
    try:
        for member in members:
            regexps.Add(member.source)
        regexps.Compile()
    except re2.error:
        return None
    return regexps


def _literal_tail(chars: str) -> str:
    """The literal text after the last wildcard: every path the regexp matches ends so.
    None after a backslash: an escape can run on (`\\pL`, `\\x41`, `\\012`)."""
    if "\\" in chars:
        return ""
    cut = len(chars)
    while cut > 0 and chars[cut - 1] not in _NOT_LITERAL:
        cut -= 1
    if chars[:cut].endswith("**"):
        # `**/` is one unit, `(.*/)?`: the slash is optional, not literal.
        return chars[cut:].removeprefix("/")
    return chars[cut:]


def _whole_components(chars: str) -> list[str]:
    """Literal components every match has as whole path components: the slash before one
    is literal unless a `**` glued to other text eats it (`x**/c` matches `xc`)."""
    parts = chars.split("/")
    found = []
    for number, part in enumerate(parts):
        if not part or any(ch in _NOT_LITERAL for ch in part):
            continue
        before = parts[number - 1] if number else ""
        if before.endswith("**") and before != "**":
            continue
        found.append(part)
    return found


def _fixed_slashes(chars: str) -> int:
    """How many `/` every match has, when the pattern fixes it (no `**`, class or escape)."""
    if "**" in chars or any(ch in "[]\\" for ch in chars):
        return -1
    return chars.count("/")


class _Index:
    """The patterns that can match a path, found without trying every pattern."""

    def __init__(self, patterns: Sequence[_Pattern]) -> None:
        self.exact: dict[str, list[int]] = {}
        prefixes: dict[int, dict[str, list[int]]] = {}
        suffixes: dict[int, dict[str, list[int]]] = {}
        self.everything: list[int] = []
        self.components: dict[str, _Group] = {}
        tails: dict[int, dict[str, _Group]] = {}
        self.depths: dict[int, _Group] = {}
        self.rest = _Group()
        regexps = []
        for index, pattern in enumerate(patterns):
            literal = pattern.literal
            if pattern.kind is _Kind.EXACT:
                self.exact.setdefault(literal, []).append(index)
            elif pattern.kind is _Kind.PREFIX:
                prefixes.setdefault(len(literal), {}).setdefault(literal, []).append(index)
            elif pattern.kind is _Kind.SUFFIX:
                if not literal:
                    self.everything.append(index)
                    continue
                suffixes.setdefault(len(literal), {}).setdefault(literal, []).append(index)
                if literal.startswith("/"):  # `**/foo` matches `foo` too
                    self.exact.setdefault(literal[1:], []).append(index)
            elif ("\\" in pattern.chars or "[" in pattern.chars) and isinstance(
                _regexp(pattern.regexp), str
            ):
                continue  # Go refuses the regexp (the build fails): it never matches
            else:
                regexps.append((index, pattern))
        # File each regexp under its rarest whole component, else its tail, else its depth.
        facts: list[tuple[int, _Pattern, list[str], str, int]] = []
        counts: dict[str, int] = {}
        for index, pattern in regexps:
            chars = pattern.chars
            if "\\Q" in chars or "|" in chars or "{" in chars:
                # `\Q` quotes the rest of the regexp, `$` included; `|` splits it in two;
                # `/{0}` drops a slash: no literal fact is sure to hold.
                facts.append((index, pattern, [], "", -1))
                continue
            components = _whole_components(chars)
            for component in set(components):
                counts[component] = counts.get(component, 0) + 1
            facts.append((index, pattern, components, _literal_tail(chars), _fixed_slashes(chars)))
        for index, pattern, components, tail, slashes in facts:
            if components:
                key = min(components, key=lambda c: (counts[c], -len(c)))
                group = self.components.setdefault(key, _Group())
            elif tail:
                group = tails.setdefault(len(tail), {}).setdefault(tail, _Group())
            elif slashes >= 0:
                group = self.depths.setdefault(slashes, _Group())
            else:
                group = self.rest
            group.add(_Member(index, pattern.regexp, tail, slashes))
        self.prefixes = sorted(prefixes.items())
        self.suffixes = sorted(suffixes.items())
        self.tails = sorted(tails.items())

    def matching(self, path: str) -> list[int]:
        """The patterns that match `path`, in no order (perhaps some twice)."""
        found = list(self.everything)
        hit = self.exact.get(path)
        if hit:
            found += hit
        size = len(path)
        for length, table in self.prefixes:
            if length > size:
                break
            hit = table.get(path[:length])
            if hit:
                found += hit
        for length, table in self.suffixes:
            if length > size:
                break
            hit = table.get(path[size - length :])
            if hit:
                found += hit
        groups = []
        if self.components:
            for component in set(path.split("/")):
                group = self.components.get(component)
                if group is not None:
                    groups.append(group)
        for length, tails in self.tails:
            if length > size:
                break
            group = tails.get(path[size - length :])
            if group is not None:
                groups.append(group)
        if self.depths:
            group = self.depths.get(path.count("/"))
            if group is not None:
                groups.append(group)
        if self.rest.members:
            groups.append(self.rest)
        if groups:
            data = _go_text(path).encode("utf-8")
            for group in groups:
                group.hits(path, data, found)
        return found


# -- the walk --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Directory:
    skipped: bool  # fsutil returned SkipDir here or above: nothing under it is sent
    matched: tuple[int, ...]  # MatchInfo.parentMatched: the patterns this directory matched


_ROOT = _Directory(skipped=False, matched=())


def _walk_to(
    known: dict[str, _Directory],
    path: str,
    verdict: Callable[[str, _Directory], _Directory],
) -> _Directory:
    """A directory's state in the walk, from the nearest one already in `known` down (a
    skipped directory's verdict holds below it), each directory worked out once."""
    found = known.get(path)
    if found is not None:
        return found
    pending = [path]
    parent = path.rpartition("/")[0]
    while parent not in known:
        pending.append(parent)
        parent = parent.rpartition("/")[0]
    state = known[parent]
    for directory in reversed(pending):
        if not state.skipped:
            state = verdict(directory, state)
        known[directory] = state
    return state


class IgnoreMatcher:
    """Answers whether a context-relative file is left out of the build context, as the
    BuildKit client's walk decides it (fsutil filter.go), directory by directory."""

    def __init__(self, patterns: tuple[str, ...]) -> None:
        compiled = []
        for pattern in patterns:
            result = _new(pattern)
            # Docker fails the build on a bad pattern; load_repo refuses such a file
            # (ignore_problems), so here it is only dropped.
            if isinstance(result, _Pattern):
                compiled.append(result)
        self._patterns = tuple(compiled)
        self._exclusion = tuple(p.exclusion for p in compiled)
        exceptions = [_without_trailing_glob(p.cleaned) for p in compiled if p.exclusion]
        self._has_exceptions = bool(exceptions)
        # filter.go's onlyPrefixExcludeExceptions: only then may a matched directory be
        # skipped, and only when no `!` pattern's literal path runs through it.
        self._prefix_exceptions = not any(_FSUTIL_PATTERN_CHARS & set(e) for e in exceptions)
        self._exception_dirs = frozenset(
            e[:k] for e in (x + "/" for x in exceptions) for k, ch in enumerate(e) if ch == "/"
        )
        self._index = _Index(compiled)
        self._directories: dict[str, _Directory] = {"": _ROOT}
        self._inherited_only: dict[tuple[int, ...], tuple[bool, tuple[int, ...]]] = {}

    @classmethod
    def from_text(cls, text: str) -> IgnoreMatcher:
        return cls(parse_ignore_patterns(text))

    def __bool__(self) -> bool:
        return bool(self._patterns)

    def excludes(self, path: str) -> bool:
        """Whether the build leaves this file out (its directories are walked first)."""
        if not self._patterns:
            return False
        directory = self._directory(path.rpartition("/")[0])
        return directory.skipped or self._evaluate(path, directory.matched)[0]

    def excludes_directory(self, path: str) -> bool:
        """Whether the walk skips directory `path` whole: nothing under it is sent."""
        return bool(self._patterns) and self._directory(path).skipped

    def kept(self, paths: Sequence[str]) -> list[str]:
        """The files (context-relative) the build context keeps, in the order given.

        Sorted `paths` (what git lists) let a skipped directory be passed over whole: a
        repo-root context of 50,000 files mostly lies in directories the walk skips."""
        if not self._patterns:
            return list(paths)
        kept = []
        directories = self._directories
        ordered = all(a <= b for a, b in itertools.pairwise(paths))
        i, count = 0, len(paths)
        while i < count:
            path = paths[i]
            parent = path.rpartition("/")[0]
            directory = directories.get(parent) or self._directory(parent)
            if directory.skipped:
                if ordered:
                    top = self._skipped_top(parent)
                    # Everything under `top/` sits before `top0` ('/' sorts just before '0').
                    end = bisect_left(paths, top + "0", i + 1)
                    if end > i and paths[end - 1].startswith(top + "/"):
                        i = end
                        continue
                i += 1
                continue
            if not self._evaluate(path, directory.matched)[0]:
                kept.append(path)
            i += 1
        return kept

    def _skipped_top(self, directory: str) -> str:
        """The highest skipped directory at or above a skipped one."""
        top = directory
        while "/" in top:
            parent = top.rpartition("/")[0]
            if not self._directory(parent).skipped:
                break
            top = parent
        return top

    def _directory(self, path: str) -> _Directory:
        """The walk's verdict on a directory, each directory worked out once."""
        return _walk_to(self._directories, path, self._verdict)

    def _verdict(self, directory: str, parent: _Directory) -> _Directory:
        matched, hits = self._evaluate(directory, parent.matched)
        skip = matched and self._prefix_exceptions
        skip = skip and (not self._has_exceptions or directory not in self._exception_dirs)
        return _Directory(skipped=skip, matched=hits)

    def _evaluate(self, path: str, inherited: tuple[int, ...]) -> tuple[bool, tuple[int, ...]]:
        """patternmatcher's MatchesUsingParentResults over the patterns that can matter:
        the ones the directory matched (they hold without a test) and the ones matching
        `path`. A pattern is tried only when it could flip the verdict (a `!` one only
        once matched); one that is not tried does not count as matched."""
        found = self._index.matching(path)
        if not found:
            if not inherited:
                return False, ()
            # Most files match nothing of their own: the directory's patterns decide, the
            # same way for every such file in it.
            verdict = self._inherited_only.get(inherited)
            if verdict is None:
                verdict = self._inherited_only[inherited] = self._fold(inherited, ())
            return verdict
        return self._fold(inherited, found)

    def _fold(
        self, inherited: tuple[int, ...], found: Sequence[int]
    ) -> tuple[bool, tuple[int, ...]]:
        exclusion = self._exclusion
        matched = False
        hits = []
        given = set(inherited)
        for index in sorted(given.union(found)):
            if index in given or exclusion[index] == matched:
                hits.append(index)
                matched = not exclusion[index]
        return matched, tuple(hits)


def _without_trailing_glob(pattern: str) -> str:
    """fsutil's patternWithoutTrailingGlob."""
    return pattern.removesuffix("/**").removesuffix("/*")


def literal_prefix(pattern: str) -> str:
    """The part of a pattern before its first wildcard: every path it matches starts so."""
    cut = len(pattern)
    for char in "*?[\\":
        index = pattern.find(char)
        if index != -1:
            cut = min(cut, index)
    return pattern[:cut]


class IncludeMatcher:
    """Answers whether a context-relative file is among those a build's include patterns
    let through: BuildKit's FollowPaths, which fsutil's filterFS turns into include
    patterns (filter.go NewFilterFS, after followlinks.go FollowLinks) for the same
    patternmatcher the .dockerignore uses, read the other way round.

    The walk (filter.go Walk, include side): an entry passes when the matcher, given its
    directory's results (MatchesUsingParentResults), says it matches, so a file passes when
    a pattern matches it or a directory above it. A directory that does not match is still
    walked, unless every include pattern is a plain path (onlyPrefixIncludes: no pattern
    character once a trailing `/*` or `/**` is cut) and none runs through it: then it is
    skipped whole. The exclude side (IgnoreMatcher) is decided on its own, with its own
    directory results; a file is sent when it passes both.
    """

    def __init__(self, patterns: Sequence[str]) -> None:
        self._matcher = IgnoreMatcher(tuple(patterns))
        compiled = self._matcher._patterns
        plain = [_without_trailing_glob(p.cleaned) for p in compiled if not p.exclusion]
        self._prefix_only = not any(_FSUTIL_PATTERN_CHARS & set(p) for p in plain)
        # The directories a plain pattern runs through: `strings.HasPrefix(pattern + "/",
        # dir + "/")` for a pattern with its trailing glob cut.
        self._pattern_dirs = frozenset(
            e[:k] for e in (x + "/" for x in plain) for k, ch in enumerate(e) if ch == "/"
        )
        self._directories: dict[str, _Directory] = {"": _ROOT}
        self._prefixes = _literal_prefixes(compiled)

    def includes(self, path: str) -> bool:
        """Whether the walk lets this file through (its directories are walked first)."""
        directory = self._directory(path.rpartition("/")[0])
        return not directory.skipped and self._matcher._evaluate(path, directory.matched)[0]

    def included(self, paths: Sequence[str], *, ordered: bool = False) -> list[str]:
        """The files among `paths` the walk lets through, in the order given. With
        `ordered` (sorted paths, as git lists them) only the paths that start with a
        pattern's literal prefix are looked at."""
        if self._prefixes is None or not ordered:
            return [p for p in paths if self.includes(p)]
        chosen: set[int] = set()
        for prefix in self._prefixes:
            start = bisect_left(paths, prefix)
            chosen.update(range(start, bisect_left(paths, prefix + "\U0010ffff", start)))
        return [paths[i] for i in sorted(chosen) if self.includes(paths[i])]

    def _directory(self, path: str) -> _Directory:
        return _walk_to(self._directories, path, self._verdict)

    def _verdict(self, directory: str, parent: _Directory) -> _Directory:
        matched, hits = self._matcher._evaluate(directory, parent.matched)
        skip = not matched and self._prefix_only and directory not in self._pattern_dirs
        return _Directory(skipped=skip, matched=hits)


def _literal_prefixes(patterns: Sequence[_Pattern]) -> tuple[str, ...] | None:
    """What every path an include pattern lets through starts with: the text before its
    first wildcard (a match of the path or of a directory above it starts so). None when
    some pattern gives no such guarantee: `|`, `^`, `{` and `}` reach the Go regexp raw,
    and a BOM or an undecodable byte is read differently by the regexp."""
    prefixes = []
    for pattern in patterns:
        chars = pattern.cleaned
        if pattern.exclusion or any(c in "|^{}\ufeff\ufffd" or _surrogate(c) for c in chars):
            return None
        prefixes.append(literal_prefix(chars))
    return tuple(dict.fromkeys(prefixes))


def _surrogate(char: str) -> bool:
    return "\ud800" <= char <= "\udfff"
