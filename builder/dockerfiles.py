"""Dockerfile parsing with BuildKit's own grammar, reduced to what the graph needs (pure)."""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from builder.errors import DockerfileError
from builder.instructions import Command, parse_plain
from builder.refs import InvalidReference, parse_reference

if TYPE_CHECKING:
    import dockerfile

RefKind = Literal["from", "copy", "mount"]

# `# escape=` must sit among the parser directives at the very top of the file.
_DIRECTIVE_NAME_RE = re.compile(r"#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=")
_STAGE_INDEX_RE = re.compile(r"^[0-9]+$")
_SPECIAL_PARAMS = "@*#?-$!0"


_NAME_MAX = 255


def _repository_part(name: str) -> str:
    """`host:5000/a/b:tag@sha256:...` -> `host:5000/a/b`: a colon after the last slash tags."""
    remainder = name.partition("@")[0]
    directory, slash, last = remainder.rpartition("/")
    return directory + slash + last.partition(":")[0]


def _shorten(text: str, limit: int = 80) -> str:
    """A word fit for a one-line message: its start and its length."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


class UnknownTarget(DockerfileError):
    """The requested target names no stage; the caller knows where it was asked for."""


class ExpansionError(ValueError):
    """A word BuildKit's shell lexer would reject: an unclosed quote or brace, a bad modifier."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageReference:
    """An image a Dockerfile pulls: FROM, `COPY --from=` or `RUN --mount=from=`, not a stage."""

    text: str  # as BuildKit sees it, ARGs expanded
    repository: str  # normalised identity
    kind: RefKind
    line: int
    tag: str | None = None  # as written; None means `latest`
    digest: str | None = None  # a pin: always this exact image, never an in-repo build
    # ARGs the reference reads that have no value here: a CI that sets them builds on
    # another image than the one builder resolved (builder doctor says so).
    unset_args: tuple[str, ...] = ()


WHOLE_CONTEXT = "."  # a ContextRead's path when the instruction reads the whole context


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class ContextRead:
    """A path an instruction of a stage the build runs reads from the build context.

    `path` is what BuildKit's dockerfile frontend hands the context transfer as a
    FollowPath (dockerfile2llb/convert.go, v0.13: `path.Join("/", src)` of each COPY/ADD
    source and bind-mount source, made relative): a file, a folder or a glob, relative to
    the context; `.` is the whole context. A read builder cannot resolve exactly carries
    `why`, and its path is `.`: the whole context counts, never fewer files than the build
    may read.
    """

    file: str  # the Dockerfile it is written in
    line: int
    path: str
    instruction: str  # as written, on one line: `COPY src/ /app/src`
    why: str | None = None

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line} {self.instruction}"

    def describe(self) -> str:
        """`images/api/Dockerfile:7 COPY src/ /app/src`, and why it counts everything."""
        return self.where if self.why is None else f"{self.where} ({self.why})"


@dataclass(frozen=True, slots=True, kw_only=True)
class DockerfileInfo:
    stages: tuple[str | None, ...]  # stage names (lowercased) in order; None when unnamed
    references: tuple[ImageReference, ...]
    arg_names: frozenset[str]  # every ARG declared anywhere: the build args that matter
    # What the stages the build runs read from the build context, every platform's;
    # empty: nothing (a build that COPYs only from stages and images).
    reads: tuple[ContextRead, ...]
    # Whether the platforms read different paths (`COPY bin/${TARGETARCH}/ ...`): a
    # platform builder did not parse for may read others.
    platform_reads: bool = False
    # The built stage's first ONBUILD (line, instruction): its trigger runs in the build of
    # every image FROM this one, in that image's context.
    onbuild: tuple[int, str] | None = None
    # The image the built stage (the target, else the last) starts from, following stage
    # names back; None for scratch. What org.opencontainers.image.base.* describe.
    base: ImageReference | None = None
    # Indexes into `references` of those read in stages the build never runs (a test stage
    # beside the target): BuildKit does not pull them, so they are no dependency.
    unreached: frozenset[int] = frozenset()

    @property
    def reached(self) -> tuple[ImageReference, ...]:
        return tuple(r for i, r in enumerate(self.references) if i not in self.unreached)


# `${` inside `${`: BuildKit has no bound (Go stacks grow), builder's lexer recurses per level.
MAX_NESTING = 64


class _Lexer:
    """One word through BuildKit's shell lexer (frontend/dockerfile/shell/lex.go, v0.13).

    Quotes are removed, the escape character escapes, and `$NAME`, `${NAME}` and the
    `${NAME:-word}` family are substituted, with nested expansions inside the word. The
    words of `#`, `%` and `/` keep their escape characters, as BuildKit's "raw escapes" do:
    the pattern reads them.
    """

    def __init__(self, text: str, variables: Mapping[str, str], escape: str) -> None:
        self.text = text
        self.pos = 0
        self.variables = variables
        self.escape = escape
        self.depth = 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        ch = self.peek()
        self.pos += len(ch)
        return ch

    def word(self, stop: str = "", *, raw_escapes: bool = False) -> str:
        out: list[str] = []
        while self.pos < len(self.text):
            ch = self.peek()
            if stop and ch == stop:
                self.next()
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
            elif ch == "'":
                out.append(self.single_quoted())
            elif ch == '"':
                out.append(self.double_quoted(raw_escapes=raw_escapes))
            else:
                self.next()
                if ch == self.escape:
                    if raw_escapes:
                        out.append(ch)
                    ch = self.next()  # escapes the next character; a trailing one vanishes
                out.append(ch)
        if stop:
            raise ExpansionError(f"missing {stop!r}")
        return "".join(out)

    def single_quoted(self) -> str:
        self.next()
        end = self.text.find("'", self.pos)
        if end == -1:
            raise ExpansionError("unclosed single quote")
        value = self.text[self.pos : end]
        self.pos = end + 1
        return value

    def double_quoted(self, *, raw_escapes: bool) -> str:
        self.next()
        out: list[str] = []
        while True:
            ch = self.peek()
            if not ch:
                raise ExpansionError("unclosed double quote")
            if ch == '"':
                self.next()
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
                continue
            self.next()
            if ch == self.escape:
                if raw_escapes:
                    out.append(ch)
                if self.peek() in ('"', "$", self.escape):
                    ch = self.next()
            out.append(ch)

    def name(self) -> str:
        start = self.pos
        if self.peek().isdecimal():
            while self.peek().isdecimal():
                self.next()
            return self.text[start : self.pos]
        if self.peek() and self.peek() in _SPECIAL_PARAMS:
            return self.next()
        while self.peek() and (
            self.peek().isalpha() or self.peek().isdecimal() or self.peek() == "_"
        ):
            self.next()
        return self.text[start : self.pos]

    def dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self.name()
            return self.variables.get(name, "") if name else "$"
        self.next()
        if not self.peek():
            raise ExpansionError("missing '}'")
        if self.peek() in ("{", "}", ":"):
            raise ExpansionError("bad substitution")
        if self.depth >= MAX_NESTING:
            raise ExpansionError(f"'${{' nested more than {MAX_NESTING} levels deep")
        self.depth += 1
        try:
            return self.substitution()
        finally:
            self.depth -= 1

    def substitution(self) -> str:
        """What follows `${`: a name, then `}` or a modifier and its word."""
        name = self.name()
        value = self.variables.get(name)
        op = self.next()
        if op == "}":
            return value or ""
        if not op:
            raise ExpansionError("missing '}'")
        if op == "/":
            every = self.peek() == "/"
            if every:
                self.next()
            pattern = self.word("/", raw_escapes=True)
            replacement = self.word("}", raw_escapes=True)
            return _replace(value or "", pattern, replacement, every=every)
        colon = op == ":"
        if colon:
            op = self.next()
        modifier = f":{op}" if colon else op
        if op not in ("-", "+", "?", "#", "%"):
            if colon:  # BuildKit reads the word first: an unclosed one is the error
                self.word("}")
            raise ExpansionError(f"unsupported modifier {modifier!r} in substitution")
        word = self.word("}", raw_escapes=op in ("#", "%"))
        if op in ("#", "%"):
            # `%%` and `##` cut the longest match; the word decides, after its expansion.
            longest = word[:1] == op
            return _trim(
                value or "", word[1:] if longest else word, suffix=op == "%", longest=longest
            )
        is_set = value is not None and (value != "" or not colon)
        if op == "-":
            return value if is_set and value is not None else word
        if op == "+":
            return word if is_set else ""
        if not is_set:
            raise ExpansionError(f"{name}: {word or 'is not set'}")
        return value or ""


# -- shell patterns, as BuildKit's convertShellPatternToRegex reads them ----------------------
# BuildKit turns `*` into `.*` (`.*?` for the shortest match), `?` into `.` and runs Go's
# regexp, whose `.` never matches a newline. Python's `re` would backtrack through every cut
# (`${V%%*a*a*a*a*b}` took seconds), and RE2 falls back to quadratic time on long patterns,
# so a pattern runs here as a bit-parallel automaton: one pass, a few big-int operations per
# character, every match end at once.

# A token is one literal character, or one of these two (two characters: never a literal).
_STAR = "**"
_ANY = "??"


def _pattern_tokens(pattern: str) -> tuple[str, ...]:
    tokens: list[str] = []
    chars = iter(pattern)
    for ch in chars:
        if ch == "*":
            if not tokens or tokens[-1] != _STAR:  # `**` matches what `*` does
                tokens.append(_STAR)
        elif ch == "?":
            tokens.append(_ANY)
        elif ch == "\\":
            escaped = next(chars, "\ufffd")
            # `\}` and `\/` are escaped for `${}`'s sake, the others for the pattern's.
            if escaped in ("}", "/", "*", "?", "\\"):
                tokens.append(escaped)
            else:
                raise ExpansionError(
                    f"invalid pattern ({pattern}) in substitution: invalid escape '\\{escaped}'"
                )
        else:
            tokens.append(ch)
    return tuple(tokens)


def _reverse_pattern(pattern: str) -> str:
    """BuildKit's reversePattern: reversed, each `\\x` kept as a pair."""
    pairs: list[str] = []
    index = 0
    while index < len(pattern):
        width = 2 if pattern[index] == "\\" and index + 1 < len(pattern) else 1
        pairs.append(pattern[index : index + width])
        index += width
    return "".join(reversed(pairs))


class _Glob:
    """An automaton whose state i (bit i) means "the first i tokens matched"."""

    def __init__(self, tokens: Sequence[str]) -> None:
        self.literal: dict[str, int] = {}
        self.any = 0
        self.star = 0
        for index, token in enumerate(tokens, 1):
            bit = 1 << index
            if token == _STAR:
                self.star |= bit
            elif token == _ANY:
                self.any |= bit
            else:
                self.literal[token] = self.literal.get(token, 0) | bit
        self.accept = 1 << len(tokens)
        self.start = self.close(1)
        # Without a star every match is as long as the pattern: no need to walk it.
        self.width = None if self.star else len(tokens)

    def close(self, states: int) -> int:
        return states | ((states << 1) & self.star)  # a star may match nothing

    def moves(self, ch: str) -> tuple[int, int]:
        """What a character does: the states it advances into, the stars it keeps."""
        if ch == "\n":  # neither `*` nor `?` matches a newline (Go's `.`)
            return self.literal.get(ch, 0), 0
        return self.literal.get(ch, 0) | self.any, self.star

    def match_end(self, text: str, start: int = 0, *, longest: bool) -> int | None:
        """The end of the shortest or the longest match that starts at `start`."""
        star, accept = self.star, self.accept
        cache: dict[str, tuple[int, int]] = {}
        found = None
        states = self.start
        for index in range(start, len(text)):
            if states & accept:
                found = index
                if not longest:
                    return found
            ch = text[index]
            moves = cache.get(ch)
            if moves is None:
                moves = cache[ch] = self.moves(ch)
            moved = ((states << 1) & moves[0]) | (states & moves[1])
            states = moved | ((moved << 1) & star)
            if not states:
                return found
        return len(text) if states & accept else found

    def longest(self, text: str, start: int) -> int:
        """The end of the longest match at `start`, where a match is known to start."""
        end = self.match_end(text, start, longest=True)
        return start if end is None else end

    def starts(self, text: str) -> list[int]:
        """Where a match starts, for a glob built from the reversed tokens."""
        star, accept, initial = self.star, self.accept, self.start
        cache: dict[str, tuple[int, int]] = {}
        found = []
        states = initial
        if states & accept:
            found.append(len(text))
        for index in range(len(text) - 1, -1, -1):
            ch = text[index]
            moves = cache.get(ch)
            if moves is None:
                moves = cache[ch] = self.moves(ch)
            moved = ((states << 1) & moves[0]) | (states & moves[1])
            states = moved | ((moved << 1) & star) | initial
            if states & accept:
                found.append(index)
        found.reverse()
        return found


def _trim(value: str, pattern: str, *, suffix: bool, longest: bool) -> str:
    """`${V#p}`, `${V##p}`, `${V%p}`, `${V%%p}`: a suffix is a prefix of the reversed text."""
    if suffix:
        text = value[::-1]
        glob = _Glob(_pattern_tokens(_reverse_pattern(pattern)))
    else:
        text = value
        glob = _Glob(_pattern_tokens(pattern))
    end = glob.match_end(text, longest=longest)
    if end is None:
        return value
    rest = text[end:]
    return rest[::-1] if suffix else rest


def _replace(value: str, pattern: str, replacement: str, *, every: bool) -> str:
    """`${V/p/r}` and `${V//p/r}` as Go's FindStringIndex and ReplaceAllString do them:
    the leftmost match, the longest there; an empty match right after a match is skipped,
    and `//` expands `$0`/`${0}` in the replacement to the match (`$$` to `$`)."""
    tokens = _pattern_tokens(pattern)
    forward = _Glob(tokens)
    starts = _Glob(tokens[::-1]).starts(value)
    if not starts:
        return value
    if not every:
        end = forward.longest(value, starts[0])
        return value[: starts[0]] + replacement + value[end:]
    out: list[str] = []
    last_end = 0
    search = 0
    following = iter(starts)
    start: int | None = next(following, None)
    while start is not None:
        end = start + forward.width if forward.width is not None else forward.longest(value, start)
        out.append(value[last_end:start])
        if end > last_end or start == 0:
            out.append(_expand_template(replacement, value[start:end]))
        last_end = end
        search = search + 1 if search + 1 > end else end
        while start is not None and start < search:
            start = next(following, None)
        if search > len(value):
            break
    out.append(value[last_end:])
    return "".join(out)


def _expand_template(template: str, match: str) -> str:
    """Go's Regexp.Expand for a pattern without groups: `$0` is the match."""
    if "$" not in template:
        return template
    out: list[str] = []
    rest = template
    while "$" in rest:
        before, _, rest = rest.partition("$")
        out.append(before)
        if rest.startswith("$"):
            out.append("$")
            rest = rest[1:]
            continue
        braced = rest.startswith("{")
        body = rest[1:] if braced else rest
        length = 0
        while length < len(body) and (body[length].isalnum() or body[length] == "_"):
            length += 1
        if length == 0 or (braced and body[length : length + 1] != "}"):
            out.append("$")  # malformed: the `$` is text
            continue
        name = body[:length]
        rest = body[length + 1 :] if braced else body[length:]
        if name == "0":
            out.append(match)
    out.append(rest)
    return "".join(out)


def expand(text: str, variables: Mapping[str, str], *, escape: str = "\\") -> str:
    """Remove quotes and substitute variables as BuildKit does for FROM and ARG values.

    Raises ExpansionError where BuildKit would refuse the word.
    """
    if not any(c in text for c in ("$", "'", '"', escape)):
        return text  # the common case, e.g. `python:3.12-slim`: nothing to lex
    simple = _ONE_VARIABLE_RE.fullmatch(text) if escape == "\\" and text.isascii() else None
    if simple is not None:  # `${REGISTRY}/base:1`: one variable, nothing else to lex
        before, braced, plain, after = simple.groups()
        return before + (variables.get(braced or plain) or "") + after
    return _Lexer(text, variables, escape).word()


# One `$NAME` or `${NAME}` amid characters the lexer leaves as they are. Possessive: a name
# and the text after it overlap, and a word that fails to match would retry every split.
_ONE_VARIABLE_RE = re.compile(
    r"([^$'\"\\]*+)\$(?:\{([A-Za-z_][A-Za-z0-9_]*+)\}|([A-Za-z_][A-Za-z0-9_]*+))([^$'\"\\]*+)"
)


def _cycle_line(
    edges: Mapping[int, Sequence[tuple[int, int]]], start: int, done: set[int]
) -> int | None:
    """The line of the edge that closes a cycle reachable from `start` through stages not
    `done` yet, if there is one; a walk with its own stack (a Dockerfile may have
    thousands of stages)."""
    if start in done:
        return None
    on_path: set[int] = set()
    stack: list[tuple[int, int]] = [(start, 0)]
    on_path.add(start)
    while stack:
        stage, index = stack[-1]
        out = edges.get(stage, ())
        if index == len(out):
            stack.pop()
            on_path.discard(stage)
            done.add(stage)
            continue
        stack[-1] = (stage, index + 1)
        named, line = out[index]
        if named in on_path:
            return line
        if named not in done:
            on_path.add(named)
            stack.append((named, 0))
    return None


def _escape_token(text: str) -> str:
    """The `# escape=` parser directive, which only counts among the directives at the very
    top: the first line that is not `# escape=` or `# syntax=` (a comment, an unknown
    directive) ends them, as in BuildKit's DirectiveParser. The parser has already refused
    an invalid or repeated one."""
    lines = text.removeprefix("\ufeff").split("\n")
    for line in lines[: _directive_count(lines)]:
        directive = _directive(line.strip())
        if directive is not None and directive[0].lower() == "escape":
            return directive[1]
    return "\\"


# The frontend builder models (BuildKit's own Dockerfile frontend, any version): another
# one, named by `# syntax=` or the BUILDKIT_SYNTAX build arg, may read any file.
_DOCKERFILE_FRONTEND_RE = re.compile(
    r"(?:docker\.io/)?docker/dockerfile(?:-upstream)?(?::[\w][\w.-]*)?(?:@sha256:[0-9a-f]{64})?"
)


def _foreign_frontend(text: str, path: str, build_args: Mapping[str, str]) -> ContextRead | None:
    """A whole-context read when the build runs a frontend other than BuildKit's own."""
    line, syntax = 0, build_args.get("BUILDKIT_SYNTAX")
    if syntax is None:
        lines = text.removeprefix("\ufeff").split("\n")
        for number, raw in enumerate(lines[: _directive_count(lines)], start=1):
            directive = _directive(raw.strip())
            if directive is not None and directive[0].lower() == "syntax":
                line, syntax = number, directive[1]
    if syntax is None or _DOCKERFILE_FRONTEND_RE.fullmatch(syntax.strip()):
        return None
    return ContextRead(
        file=path,
        line=line,
        path=WHOLE_CONTEXT,
        instruction=f"# syntax={_shorten(syntax)}"
        if line
        else f"BUILDKIT_SYNTAX={_shorten(syntax)}",
        why="a frontend builder does not model may read any file",
    )


def _utf8(text: str) -> str:
    """Undo the latin-1 decoding the `dockerfile` binding applies to flags (not to values)."""
    try:
        return text.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return text


def _flag(flags: tuple[str, ...], name: str) -> list[str]:
    prefix = f"--{name}="
    return [_utf8(flag)[len(prefix) :] for flag in flags if flag.startswith(prefix)]


def _mount_froms(flags: tuple[str, ...]) -> list[tuple[str, str]]:
    """Each `--mount` that reads from a stage or image: (from, target)."""
    froms = []
    for mount in _flag(flags, "mount"):
        fields = dict(field.partition("=")[::2] for field in mount.split(","))
        fields = {key.strip().lower(): value.strip() for key, value in fields.items()}
        if fields.get("from"):
            target = fields.get("target") or fields.get("dst") or fields.get("destination")
            froms.append((fields["from"], target or ""))
    return froms


def _commands(text: str, path: str) -> tuple[Command, ...]:
    # The binding hands Go a C string: a NUL would silently cut the file short, and a lone
    # surrogate crashes the interpreter, so neither may reach it.
    if "\0" in text:
        raise DockerfileError(
            "contains a NUL character",
            file=path,
            line=text.count("\n", 0, text.index("\0")) + 1,
            hint="is it a text file?",
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise DockerfileError("is not valid UTF-8 text", file=path) from None
    _check_long_words(text, path)
    plain = parse_plain(text)
    if plain is not None:
        return plain
    # Imported here, not at the top: the binding starts Go's runtime, which a forked
    # process cannot use (parse_cache forks its workers before anything loads it).
    import dockerfile

    try:
        # A lone `\` on the last line comes back as a command without an instruction.
        return tuple(Command(*c) for c in dockerfile.parse_string(text) if c.cmd is not None)
    except dockerfile.GoParseError as exc:
        raise DockerfileError(
            f"cannot parse Dockerfile: {exc}", file=path, line=_error_line(text, str(exc))
        ) from None
    except UnicodeDecodeError:
        # The binding cannot hand back some non-ASCII flags (`COPY --chown=ࠀ`). An image
        # reference is ASCII, so reading a copy with those characters masked loses nothing.
        return _commands("".join(ch if ch.isascii() else "?" for ch in text), path)


# BuildKit's parser takes time in the square of a word's length (a word of 60 KB, a
# `LABEL a=...` or an inline blob: over a second), so a Dockerfile of sixteen such lines
# would hold planning for twenty. Long words may add up to half a maximal line (BuildKit
# allows 65,535 bytes), a few tenths of a second.
_LONG_WORD = 4096
_LONG_WORDS_MAX = 32 * 1024
_WORD_RE = re.compile(r"[^ \t\r\n]+")


def _check_long_words(text: str, path: str) -> None:
    if len(text) <= _LONG_WORDS_MAX:
        return  # cannot hold more
    total = 0
    for number, line in enumerate(text.split("\n"), start=1):
        if len(line) <= _LONG_WORD:
            continue  # holds no long word: most lines, looked at without splitting
        for word in _WORD_RE.findall(line):
            if len(word) <= _LONG_WORD:
                continue
            total += len(word)
            if total > _LONG_WORDS_MAX:
                raise DockerfileError(
                    f"words longer than 4 KiB add up to more than 32 KiB ({len(word):,} "
                    "characters in this one); BuildKit's parser slows with the square of a "
                    "word's length",
                    file=path,
                    line=number,
                    hint="keep large data in a file the build copies",
                )


_ERROR_WINDOW = 256  # lines parsed at a time while looking for an error's line
# Finding the line parses the file a second time. Past this size (a real Dockerfile is a
# few KB; BuildKit's parser takes about a second per MB) the error names only the file.
_ERROR_SEARCH_MAX = 256 * 1024


def _error_line(text: str, message: str) -> int | None:
    """The line BuildKit's parser gave up on: its errors do not say.

    The first prefix of the file that fails with the same message ends on that line (an
    unterminated heredoc fails where it opens). Parsing every prefix would cost the square
    of the file (a minute for 2000 lines), so windows of lines are parsed instead, each
    from an instruction's first line with the parser directives in front: BuildKit's
    parser carries nothing else from one instruction to the next. A window that parses
    moves the start to its last instruction (which may be cut short); one that fails
    otherwise (a heredoc cut in two) grows. The failing window is then halved.
    """
    if message == "file with no instructions":
        return None  # the whole file is to blame, not a line of it
    if len(text) > _ERROR_SEARCH_MAX:
        return None
    lines = text.split("\n")  # BuildKit's lines: `str.splitlines` also cuts at \x1c and more
    head = lines[: _directive_count(lines)]
    import dockerfile

    def parse(start: int, end: int) -> tuple[dockerfile.Command, ...] | str:
        """The commands of lines[start:end] behind the directives, or the error's message."""
        try:
            return tuple(dockerfile.parse_string("\n".join([*head, *lines[start:end]])))
        except dockerfile.GoParseError as exc:
            return str(exc)

    try:
        start, size = len(head), _ERROR_WINDOW
        if head and parse(start, start) == message:
            head, start = [], 0  # a directive is at fault: plain prefixes find it
        while True:
            end = min(start + size, len(lines))
            outcome = parse(start, end)
            if outcome == message:
                break
            if end == len(lines):
                return None
            last = start
            if isinstance(outcome, tuple) and outcome:
                last = start + outcome[-1].start_line - 1 - len(head)
            if last > start:
                start = last
            else:
                size *= 2
        low = start  # lines[start:low] does not fail this way; lines[start:end] does
        while end - low > 1:
            middle = (low + end) // 2
            if parse(start, middle) == message:
                end = middle
            else:
                low = middle
    except UnicodeDecodeError:
        return None
    return end


def _directive_count(lines: Sequence[str]) -> int:
    """How many lines at the top are parser directives (`# escape=`, `# syntax=`)."""
    for number, line in enumerate(lines):
        directive = _directive((line.removeprefix("\ufeff") if number == 0 else line).strip())
        if directive is None or directive[0].lower() not in ("escape", "syntax"):
            return number
    return len(lines)


def _directive(line: str) -> tuple[str, str] | None:
    """A stripped line as BuildKit's `^#\\s*([a-zA-Z][a-zA-Z0-9]*)\\s*=\\s*(.+?)\\s*$` reads
    it: (name, value), or None. That pattern, run by Python's backtracking `re`, takes time in
    the square of a run of spaces inside the value (a 60 KB line: minutes), so the value is
    cut by hand: whatever follows `=`, stripped, and one space when that is all there is."""
    match = _DIRECTIVE_NAME_RE.match(line)
    if match is None:
        return None
    rest = line[match.end() :]
    if not rest:
        return None
    return match.group(1), rest.strip() or rest[-1]


# -- what BuildKit's instruction parser refuses (frontend/dockerfile/instructions/parse.go) ----
# Checked before any word is expanded, in file order, as BuildKit does: each with its words.

_INSTRUCTIONS = (
    "add", "arg", "cmd", "copy", "entrypoint", "env", "expose", "from", "healthcheck",
    "label", "maintainer", "onbuild", "run", "shell", "stopsignal", "user", "volume", "workdir",
)  # fmt: skip
_STAGE_NAME_RE = re.compile(r"[a-z][a-z0-9-_.]*")
_ONBUILD_FLAG_RE = re.compile(r"\s*onbuild\s+--([^\s=]*)", re.IGNORECASE)


def _distance(a: str, b: str) -> int:
    """Levenshtein distance, as github.com/agext/levenshtein with default costs."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (ca != cb))
    return row[-1]


def _suggest(value: str, options: Sequence[str], *, case_sensitive: bool) -> str:
    """BuildKit's suggest.WrapError: ` (did you mean x?)` for a distance under 3."""
    wanted = value if case_sensitive else value.lower()
    best, best_distance = "", 3
    for option in options:
        candidate = option if case_sensitive else option.lower()
        if len(wanted) - len(candidate) >= best_distance:
            continue  # too far apart to matter, and a 64 KiB word costs nothing
        distance = _distance(wanted, candidate)
        if distance < best_distance:
            best, best_distance = candidate, distance
    if not best:
        return ""
    if not case_sensitive and value == value.upper():
        best = best.upper()
    return f" (did you mean {best}?)"


def _go_quote(text: str) -> str:
    """Go's %q for the common case: double quotes, escaped quotes and backslashes."""
    return json.dumps(text, ensure_ascii=False)


def _check_flags(flags: Sequence[str], allowed: Sequence[str]) -> str | None:
    """BuildKit's BFlags.Parse for string flags: the first problem, or None."""
    seen: set[str] = set()
    for flag in flags:
        if not flag.startswith("--"):
            return f"Arg {_go_quote(flag)} must start with '--'"
        name, eq, _ = flag[2:].partition("=")
        if name not in allowed:
            return f"unknown flag: {name}" + _suggest(name, allowed, case_sensitive=True)
        if name in seen:
            return f"duplicate flag specified: {name}"
        if not eq:
            return f"missing a value on flag: {name}"
        seen.add(name)
    return None


def _check_instructions(commands: Sequence[Command], path: str) -> None:
    """What instructions.Parse refuses: unknown instructions, bad stage names, FROM's
    flags, ONBUILD's triggers, and anything before the first FROM but ARG."""
    seen_from = False
    for command in commands:
        line = command.start_line
        instruction = command.cmd.lower()

        def fail(message: str, hint: str | None = None, line: int = line) -> DockerfileError:
            return DockerfileError(message, file=path, line=line, hint=hint)

        if instruction not in _INSTRUCTIONS:
            raise fail(
                f"unknown instruction: {command.cmd}"
                + _suggest(command.cmd, [i.upper() for i in _INSTRUCTIONS], case_sensitive=False)
            )
        if instruction == "from":
            seen_from = True
            problem = _check_flags(_utf8_flags(command.flags), ("platform",))
            if problem is not None:
                raise fail(problem)
            values = command.value
            if len(values) == 3 and values[1].lower() == "as":
                name = values[2].lower()
                if not _STAGE_NAME_RE.fullmatch(name):
                    raise fail(
                        f"invalid name for build stage: {_go_quote(values[2])}, "
                        "name can't start with a number or contain symbols",
                        hint="a stage name is lowercase letters, digits, '-', '_' and '.'",
                    )
        elif instruction == "onbuild":
            flag = _ONBUILD_FLAG_RE.match(command.original)
            if not command.value and not command.sub_cmd:
                raise fail("ONBUILD requires at least one argument")
            if flag is not None:
                raise fail(f"unknown flag: {flag.group(1)}")
            trigger = (command.sub_cmd or "").upper()
            if trigger == "ONBUILD":
                raise fail("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
            if trigger in ("MAINTAINER", "FROM"):
                raise fail(f"{trigger} isn't allowed as an ONBUILD trigger")
        if not seen_from and instruction not in ("arg", "from"):
            raise fail(
                f"{command.cmd} before the first FROM",
                hint="a Dockerfile must start with FROM; only ARG may precede it",
            )


# containerd's platforms.Parse, which BuildKit applies to FROM --platform once expanded.
_KNOWN_OS = frozenset(
    (
        "aix",
        "android",
        "darwin",
        "dragonfly",
        "freebsd",
        "hurd",
        "illumos",
        "ios",
        "js",
        "linux",
        "nacl",
        "netbsd",
        "openbsd",
        "plan9",
        "solaris",
        "windows",
        "zos",
        "",
    )
)
_KNOWN_ARCH = frozenset(
    (
        "386",
        "amd64",
        "amd64p32",
        "arm",
        "armbe",
        "arm64",
        "arm64be",
        "ppc64",
        "ppc64le",
        "loong64",
        "mips",
        "mipsle",
        "mips64",
        "mips64le",
        "mips64p32",
        "mips64p32le",
        "ppc",
        "riscv",
        "riscv64",
        "s390",
        "s390x",
        "sparc",
        "sparc64",
        "wasm",
        "",
    )
)
_ARCH_ALIASES = {"i386": "386", "x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64"}
_OS_COMPONENT = r"^([A-Za-z0-9_-]+)(?:\(([A-Za-z0-9_.-]*)\))?$"
_COMPONENT = r"^[A-Za-z0-9_-]+$"


def platform_problem(specifier: str) -> str | None:
    """Why containerd's platforms.Parse refuses a specifier, in its words; None if it does not."""
    quoted = _go_quote(specifier)
    if "*" in specifier:
        return f"{quoted}: wildcards not yet supported: invalid argument"
    parts = specifier.split("/")
    for index, part in enumerate(parts):
        if index == 0 and not re.fullmatch(_OS_COMPONENT[1:-1], part):
            return (
                f"{_go_quote(part)} is an invalid OS component of {quoted}: OSAndVersion "
                f"specifier component must match {_go_quote(_OS_COMPONENT)}: invalid argument"
            )
        if index > 0 and not re.fullmatch(_COMPONENT[1:-1], part):
            return (
                f"{_go_quote(part)} is an invalid component of {quoted}: platform specifier "
                f"component must match {_go_quote(_COMPONENT)}: invalid argument"
            )
    if len(parts) == 1:
        name = parts[0].partition("(")[0].lower()
        if name in _KNOWN_OS or name == "macos" or _ARCH_ALIASES.get(name, name) in _KNOWN_ARCH:
            return None
        return f"{quoted}: unknown operating system or architecture: invalid argument"
    if len(parts) > 3:
        return f"{quoted}: cannot parse platform specifier: invalid argument"
    return None


def _utf8_flags(flags: Sequence[str]) -> list[str]:
    return [_utf8(flag) for flag in flags]


# `$NAME` and `${NAME}` (not `${NAME:-default}`, which has its default): the variables a
# word reads as they are.
_PLAIN_VARIABLE_RE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_PLATFORM_ARG_RE = re.compile(r"(TARGET|BUILD)(PLATFORM|OS|ARCH|VARIANT)")


def _platform_args(platform: str) -> dict[str, str]:
    """The ARGs BuildKit defines in the global scope for a target platform.

    The BUILD* ones describe the machine that builds, unknown here; the target is the
    best guess, and they rarely name an image.
    """
    os_name, _, rest = platform.partition("/")
    arch, _, variant = rest.partition("/")
    values = {}
    for prefix in ("TARGET", "BUILD"):
        values[f"{prefix}PLATFORM"] = platform
        values[f"{prefix}OS"] = os_name
        values[f"{prefix}ARCH"] = arch
        values[f"{prefix}VARIANT"] = variant
    return values


@dataclass(frozen=True, slots=True)
class ParseRequest:
    """One call of parse_dockerfile, as a value: what a cache keys and a worker runs."""

    text: str
    path: str
    build_args: Mapping[str, str] | None = None
    target: str | None = None
    platforms: Sequence[str] = ("linux/amd64",)

    def key(self) -> str:
        material = "\0".join(
            [
                self.text,
                self.path,
                repr(sorted((self.build_args or {}).items())),
                repr(self.target),
                repr(tuple(self.platforms)),
            ]
        )
        return hashlib.sha256(material.encode("utf-8", "surrogatepass")).hexdigest()

    def parse(self) -> DockerfileInfo:
        return parse_dockerfile(
            self.text,
            path=self.path,
            build_args=self.build_args,
            target=self.target,
            platforms=self.platforms,
        )


def parse_dockerfile(
    text: str,
    *,
    path: str,
    build_args: Mapping[str, str] | None = None,
    target: str | None = None,
    platforms: Sequence[str] = ("linux/amd64",),
) -> DockerfileInfo:
    """Reduce a Dockerfile to its stages, the images it references and the ARGs it declares.

    `build_args` override the defaults of ARGs declared before the first FROM, exactly as
    `--build-arg` does; heredoc bodies and comments never produce references because
    BuildKit's parser keeps them out of the instruction values. As in BuildKit, FROM can
    name only an earlier stage, while `COPY --from` and `RUN --mount=from=` may name any
    stage of the file or its index. `FROM base-${TARGETARCH}` is read once per platform,
    and the references of every platform count.
    """
    commands = _commands(text, path)
    _check_instructions(commands, path)
    reader = _Reader(commands, path=path, escape=_escape_token(text))
    walks = list(dict.fromkeys(platforms)) or ["linux/amd64"]
    if not _PLATFORM_ARG_RE.search(text):
        walks = walks[:1]  # no platform ARG in the file: every walk would read the same
    roots: list[ImageReference | None] = []
    for platform in walks:
        reader.read(_platform_args(platform), build_args or {})
        # The first platform's stages decide the base: per-platform bases are rare, and
        # the labels describe one image.
        roots = roots or list(reader.stage_roots)
    stages = reader.stages
    if not stages:
        raise DockerfileError("no FROM instruction", file=path, hint="add a FROM line")
    if target is not None and target.lower() not in stages:
        named = [s for s in stages if s]
        raise UnknownTarget(
            f"target stage {target!r} is not defined",
            file=path,
            hint="named stages: " + ", ".join(named) if named else "name a stage with FROM ... AS",
        )
    # A name two stages share is the later one's, for the target as for --from (BuildKit
    # keeps the last in its table of names).
    built = reader.stage_numbers[target.lower()] if target is not None else len(stages) - 1
    reached = reader.reached(built)
    reader.check_stage_order(reached)
    per_platform = [frozenset(r for stage, r in walk if stage in reached) for walk in reader.reads]
    frontend = _foreign_frontend(text, path, build_args or {})
    if frontend is not None:
        per_platform = [reads | {frontend} for reads in per_platform]
    return DockerfileInfo(
        stages=tuple(stages),
        references=tuple(reader.references.values()),
        unreached=frozenset(
            i
            for i, key in enumerate(reader.references)
            if reader.reference_stage[key] not in reached
        ),
        arg_names=frozenset(reader.arg_names),
        reads=tuple(sorted(frozenset().union(*per_platform))),
        platform_reads=len(set(per_platform)) > 1,
        onbuild=reader.onbuild[built],
        base=roots[built],
    )


class _Reader:
    """One walk over the instructions per set of build args; references accumulate."""

    def __init__(self, commands: tuple[Command, ...], *, path: str, escape: str) -> None:
        self.commands = commands
        self.path = path
        self.escape = escape
        froms = [c for c in commands if c.cmd.upper() == "FROM"]
        self.stage_numbers: dict[str, int] = {}
        for number, c in enumerate(froms):
            if len(c.value) == 3 and c.value[1].lower() == "as":
                self.stage_numbers[c.value[2].lower()] = number
        self.all_stages = set(self.stage_numbers)
        # Which stage each reference is read in, and which stages each stage needs: BuildKit
        # builds only what the built stage reaches, so only those stages' images count.
        self.reference_stage: dict[tuple[str, str, int], int] = {}
        self.needs: list[set[int]] = [set() for _ in froms]
        self.stages: list[str | None] = []
        self.stage_index: dict[str, int] = {}  # a name -> its last stage read so far
        self.arg_names: set[str] = set()
        self.references: dict[tuple[str, str, int], ImageReference] = {}
        self.global_args: dict[str, str] = {}
        self.stage_roots: list[ImageReference | None] = []
        # `COPY --from` and `RUN --mount=from=` naming a stage: (stage read in, stage named,
        # the name as written, line, the mount's target).
        self.stage_refs: list[tuple[int, int, str, int, str | None]] = []
        # Per walk (platform): each context read with the stage it is read in.
        self.reads: list[list[tuple[int, ContextRead]]] = []
        # Whether a variable can change a read: a `$` in a COPY/ADD source or a --mount.
        self.read_variables = any("$" in c.original and _reads_a_variable(c) for c in commands)
        self.onbuild: list[tuple[int, str] | None] = []  # per stage, of the first walk

    def expanded(self, raw: str, line: int) -> str:
        try:
            return expand(raw, self.global_args, escape=self.escape)
        except ExpansionError as exc:
            raise DockerfileError(
                f"cannot expand {_shorten(raw)!r}: {exc}", file=self.path, line=line
            ) from None

    def reference(self, raw: str, kind: RefKind, line: int, mount_target: str | None = None) -> str:
        """Record the image a FROM, `COPY --from` or `RUN --mount=from=` names (a stage is
        no image); returns the name as BuildKit expands it."""
        name = self.expanded(raw, line)
        if not name:
            if kind != "from":
                return name  # BuildKit reads an empty --from as the build context
            raise DockerfileError(
                f"{raw!r} expands to an empty image name",
                file=self.path,
                line=line,
                hint="give the ARG a default or set it in build_args",
            )
        lowered = name.lower()
        # FROM opens the stage it is read in; the others sit in the last one opened.
        current = len(self.stages) if kind == "from" else len(self.stages) - 1
        if kind == "from":
            if name in self.stage_index:
                # An earlier stage, matched as written: BuildKit looks FROM names up without
                # lowering them, so `FROM Build` is an image even after `AS build`.
                self.needs[current].add(self.stage_index[name])
                return name
            if lowered == "scratch":
                return name  # no image at all
        elif lowered in self.all_stages or _STAGE_INDEX_RE.fullmatch(lowered):
            named = self.stage_numbers.get(lowered)
            number = named if named is not None else int(lowered)
            if number >= len(self.needs):
                raise DockerfileError(f"invalid stage index {number}", file=self.path, line=line)
            self.needs[current].add(number)
            self.stage_refs.append((current, number, name, line, mount_target))
            return name  # a stage by name or index, not an image
        if len(_repository_part(name)) > _NAME_MAX:
            # distribution/reference's NameTotalLengthMax; and a line of 64 KiB is no message.
            raise DockerfileError(
                f"invalid image reference {_shorten(name)!r}: "
                f"repository name must not be more than {_NAME_MAX} characters",
                file=self.path,
                line=line,
            )
        try:
            parsed = parse_reference(name)
        except InvalidReference as exc:
            raise DockerfileError(str(exc), file=self.path, line=line) from None
        read = (braced or plain for braced, plain in _PLAIN_VARIABLE_RE.findall(raw))
        unset = tuple(dict.fromkeys(v for v in read if v not in self.global_args))
        self.references.setdefault(
            (kind, name, line),
            ImageReference(
                text=name,
                repository=parsed.repository,
                kind=kind,
                line=line,
                unset_args=unset,
                tag=parsed.tag,
                digest=parsed.digest,
            ),
        )
        self.reference_stage[kind, name, line] = current
        return name

    def stage_name(self, number: int) -> str:
        return self.stages[number] or f"stage-{number}"

    def check_stage_order(self, reached: set[int]) -> None:
        """A stage copies only from stages before it: BuildKit refuses a cycle anywhere,
        then, in the stages it builds, a stage named before it is defined."""
        edges: dict[int, list[tuple[int, int]]] = {}
        for stage, named, _name, line, _target in self.stage_refs:
            edges.setdefault(stage, []).append((named, line))
        done: set[int] = set()  # shared, as BuildKit's `visited`: one walk in all
        for start in range(len(self.stages)):
            cycle = _cycle_line(edges, start, done)
            if cycle is not None:
                raise DockerfileError(
                    f"circular dependency detected on stage: {self.stage_name(start)}",
                    file=self.path,
                    line=cycle,
                )
        for stage, named, name, line, target in self.stage_refs:
            if stage in reached and named > stage:
                message = (
                    f"cannot copy from stage {_go_quote(name)}, it needs to be defined before "
                    f"current stage {_go_quote(self.stage_name(stage))}"
                    if target is None
                    else f"cannot mount from stage {_go_quote(name)} to {_go_quote(target)}, "
                    "stage needs to be defined before current command"
                )
                raise DockerfileError(message, file=self.path, line=line)

    def reached(self, built: int) -> set[int]:
        """The stages a build of stage `built` runs: it and every stage it needs."""
        seen, stack = set(), [built]
        while stack:
            stage = stack.pop()
            if stage not in seen and 0 <= stage < len(self.needs):
                seen.add(stage)
                stack.extend(self.needs[stage])
        return seen

    def read(self, automatic: Mapping[str, str], build_args: Mapping[str, str]) -> None:
        """Walk the instructions once, with BuildKit's automatic ARGs and the build args.

        The automatic ones exist in the global scope undeclared; a build arg only reaches
        an ARG declared there, and beats its default.
        """
        self.global_args = dict(automatic)
        self.stages = []
        self.stage_index = {}
        self.stage_roots = []
        context = _ContextWalk(
            path=self.path,
            escape=self.escape,
            automatic=automatic,
            build_args=build_args,
            variables=self.read_variables,
        )
        for command in self.commands:
            line = command.start_line
            instruction = command.cmd.upper()  # instructions are case-insensitive
            if instruction == "ARG":
                for item in command.value:
                    name, eq, default = item.partition("=")
                    self.arg_names.add(name)
                    if not self.stages:
                        if name in build_args:
                            self.global_args[name] = build_args[name]
                        elif eq:
                            self.global_args[name] = self.expanded(default, line)
                        context.global_arg(item)
                if self.stages:
                    context.stage_args(command.value)
                continue
            if instruction == "FROM":
                context.start_stage(self.read_from(command.value, line, command.flags))
                continue
            if not self.stages:
                raise DockerfileError(
                    f"{command.cmd} before the first FROM",
                    file=self.path,
                    line=line,
                    hint="a Dockerfile must start with FROM; only ARG may precede it",
                )
            if instruction in ("COPY", "ADD"):
                for source in _flag(command.flags, "from"):
                    self.reference(source, "copy", line)
                context.copy(command)
            elif instruction == "RUN":
                for source, target in _mount_froms(command.flags):
                    self.reference(source, "mount", line, target)
                context.run(command)
            elif instruction == "ENV":
                context.env(command)
            elif instruction == "ONBUILD":
                context.onbuild(command)
        self.reads.append(context.reads)
        if len(self.reads) == 1:
            self.onbuild = context.triggers

    def check_platform(self, platforms: Sequence[str], line: int) -> None:
        """FROM --platform, expanded with the global ARGs as BuildKit does, must parse."""
        for raw in platforms:
            if not raw:
                continue  # `--platform=` is no platform at all
            value = self.expanded(raw, line)
            problem = platform_problem(value)
            if problem is not None:
                raise DockerfileError(
                    f"failed to parse platform {value}: {problem}",
                    file=self.path,
                    line=line,
                    hint="expected os/arch[/variant], e.g. linux/arm64",
                )

    def read_from(
        self, values: tuple[str, ...], line: int, flags: tuple[str, ...] = ()
    ) -> int | None:
        """Open the stage a FROM starts; returns the earlier stage it builds on, if any."""
        if not values:
            raise DockerfileError(
                "FROM names no image",
                file=self.path,
                line=line,
                hint="expected FROM IMAGE [AS NAME]",
            )
        alias = None
        if len(values) == 3 and values[1].lower() == "as":
            alias = values[2].lower()
        elif len(values) != 1:
            raise DockerfileError(
                f"malformed FROM {' '.join(values)!r}",
                file=self.path,
                line=line,
                hint="expected FROM IMAGE [AS NAME]",
            )
        self.check_platform(_flag(flags, "platform"), line)
        name = self.reference(values[0], "from", line)
        lowered = name.lower()
        base = self.stage_index.get(name)
        if base is not None:
            root = self.stage_roots[base]
        elif lowered == "scratch":
            root = None
        else:
            root = self.references.get(("from", name, line))
        self.stage_roots.append(root)
        if alias is not None:
            self.stage_index[alias] = len(self.stages)  # the last of a name wins
        self.stages.append(alias)
        return base


# -- what the build reads from its context: dockerfile2llb's ctxPaths (v0.13) -----------------
# BuildKit transfers from the context only the paths the stages it runs read: each source
# of COPY/ADD without --from, and of RUN --mount=type=bind without from= (convert.go
# dispatch, convert_runmount.go dispatchRunMounts), after the stage's variables expand
# them. builder follows the same walk, with every variable whose value it cannot know (the
# base image's ENV, an ARG without a value, the build machine's platform) ending in "the
# whole context".

# Automatic ARGs describing the machine that builds (unknown to builder: a remote builder
# may be another architecture), and the one builder sets only at build time.
_BUILD_MACHINE_ARGS = frozenset({"BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT"})
_EPOCH_ARG = "SOURCE_DATE_EPOCH"
# ARGs BuildKit keeps out of the environment (convert.go nonEnvArgs).
_NON_ENV_ARGS = frozenset({"BUILDKIT_SBOM_SCAN_CONTEXT", "BUILDKIT_SBOM_SCAN_STAGE"})
# parser.reHeredoc: a COPY/ADD source that is an inline document, not a path.
_HEREDOC_RE = re.compile(r"^\d*<<-?([^<]*)$")
# gitutil.ParseURL's scp-like form (`git@github.com:org/repo`).
_SCP_RE = re.compile(r"^[A-Za-z0-9_]+@[A-Za-z0-9._-]+:")
_SCHEME_RE = re.compile(r"^([A-Za-z0-9+.-]+)://")


class _Unknown(Exception):
    """A word reads a variable whose value builder cannot know; the message says which."""


class _Variables(Mapping[str, str]):
    """The variables one expansion sees. A name without a known value stops the expansion
    (`unknown` says why), unless `unknown` returns None: then it is plainly unset (empty)."""

    def __init__(self, known: Mapping[str, str], unknown: Callable[[str], str | None]) -> None:
        self.known = known
        self.unknown = unknown

    def __getitem__(self, key: str) -> str:
        value = self.known.get(key)
        if value is None:
            why = self.unknown(key)
            if why is not None:
                raise _Unknown(why)
            raise KeyError(key)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self.known)

    def __len__(self) -> int:
        return len(self.known)


@dataclass(slots=True)
class _Env:
    """A stage's variables (ENV, and ARGs with a value) as far as the Dockerfile sets them.

    A name it does not set may come from the base image's config: unknown, never empty."""

    known: dict[str, str] = field(default_factory=dict)
    unknown: dict[str, str] = field(default_factory=dict)  # name -> why its value is unknown
    valueless: set[str] = field(default_factory=set)  # declared by an ARG without a value
    blind: str | None = None  # why no name is known (an ARG or ENV whose name is expanded)

    def copy(self) -> _Env:
        return _Env(dict(self.known), dict(self.unknown), set(self.valueless), self.blind)

    def set(self, name: str, value: str | _Unknown) -> None:
        if isinstance(value, _Unknown):
            self.known.pop(name, None)
            self.unknown[name] = str(value)
        else:
            self.known[name] = value
            self.unknown.pop(name, None)
        self.valueless.discard(name)

    def why(self, name: str) -> str:
        if self.blind is not None:
            return self.blind
        if name in self.unknown:
            return self.unknown[name]
        if name in self.valueless:
            return f"ARG {name} has no value"
        if name in _BUILD_MACHINE_ARGS:
            return f"{name} describes the machine that builds, which builder does not know"
        return f"{name} is not set by this Dockerfile (the base image may set it)"


def _reads_a_variable(command: Command) -> bool:
    """Whether a variable can change what this instruction reads from the context."""
    instruction = command.cmd.upper()
    if instruction in ("COPY", "ADD"):
        return any("$" in word for word in command.value[:-1])
    return instruction == "RUN" and any("$" in flag for flag in command.flags)


def _one_line(command: Command) -> str:
    """An instruction as written, on one line, for --explain."""
    first = command.original.split("\n", 1)[0].strip()
    return _shorten(" ".join(first.split()), 100)


def _context_path(source: str) -> str:
    """A source as a FollowPath: Go's path.Join("/", source) made relative; `.`: all."""
    trimmed = source.rstrip("/")
    if trimmed and "//" not in trimmed and "/." not in trimmed and trimmed[0] not in "/.":
        return trimmed  # already clean, the common case (`src/`, `requirements.txt`)
    return posixpath.normpath("/" + source).lstrip("/") or WHOLE_CONTEXT


def _remote(source: str) -> Literal["url", "git"] | None:
    """What dispatchCopy makes of a source that is no context path: an HTTP(S) file, or
    what gitutil.ParseGitRef may take for a git repository (read generously: a git source
    counts the whole context). None: a path in the context."""
    if ":" not in source and ".git" not in source:
        return None  # no scheme, no scp-like host, no `.git`: a path
    if source.startswith(("./", "../")):
        return None  # ParseGitRef refuses these outright
    scheme = _SCHEME_RE.match(source)
    before_fragment = source.partition("#")[0]
    if scheme is not None:
        if scheme.group(1).lower() in ("http", "https") and not before_fragment.endswith(".git"):
            # isHTTPSource's prefixes are lowercase: `HTTP://host/f` is a context path.
            return "url" if scheme.group(1) in ("http", "https") else None
        return "git"
    if _SCP_RE.match(source):
        return "git"
    # An unknown protocol is retried as `https://` + source: `host/repo.git` is a git URL.
    if "/" in before_fragment and before_fragment.endswith(".git"):
        return "git"
    return None


class _ContextWalk:
    """One walk's context reads: the variables of each stage, and each instruction that
    reads the context (pure bookkeeping, driven by _Reader.read)."""

    def __init__(
        self,
        *,
        path: str,
        escape: str,
        automatic: Mapping[str, str],
        build_args: Mapping[str, str],
        variables: bool = True,
    ) -> None:
        self.path = path
        self.escape = escape
        self.build_args = build_args
        # Without a `$` in any source, no variable can change a read: none is followed.
        self.variables = variables
        # BuildKit's optMetaArgs: the automatic ARGs (a build arg may set them), then the
        # global ARGs; each name's last declaration counts. None: declared without a value.
        self.meta: dict[str, str | _Unknown | None] = {}
        if variables:
            for name, value in automatic.items():
                if name in build_args:
                    self.meta[name] = build_args[name]
                elif name in _BUILD_MACHINE_ARGS:
                    self.meta[name] = _Unknown(_Env().why(name))
                else:
                    self.meta[name] = value
        self.envs: list[_Env] = []
        self.triggers: list[tuple[int, str] | None] = []  # each stage's first ONBUILD
        self.reads: list[tuple[int, ContextRead]] = []

    # -- variables ---------------------------------------------------------------------

    def _meta_unknown(self, name: str) -> str | None:
        value = self.meta.get(name)
        return str(value) if isinstance(value, _Unknown) else None

    def _plain(self, raw: str) -> bool:
        """A word expansion leaves as it is (most sources): nothing to look up."""
        return "$" not in raw and "'" not in raw and '"' not in raw and self.escape not in raw

    def _expand_global(self, raw: str) -> str | _Unknown:
        if self._plain(raw):
            return raw
        known = {k: v for k, v in self.meta.items() if isinstance(v, str)}
        try:
            return expand(raw, _Variables(known, self._meta_unknown), escape=self.escape)
        except _Unknown as exc:
            return exc
        except ExpansionError as exc:
            return _Unknown(f"cannot expand {_shorten(raw)!r}: {exc}")

    def _expand(self, raw: str) -> str | _Unknown:
        if self._plain(raw):
            return raw
        env = self.envs[-1]
        try:
            return expand(raw, _Variables(env.known, env.why), escape=self.escape)
        except _Unknown as exc:
            return exc
        except ExpansionError as exc:
            return _Unknown(f"cannot expand {_shorten(raw)!r}: {exc}")

    def global_arg(self, item: str) -> None:
        if not self.variables:
            return
        name, eq, default = item.partition("=")
        if name == _EPOCH_ARG:
            self.meta[name] = _Unknown(f"{_EPOCH_ARG} is set only when the image builds")
        elif name in self.build_args:
            self.meta[name] = self.build_args[name]
        elif eq:
            self.meta[name] = self._expand_global(default)
        else:
            self.meta[name] = None

    def start_stage(self, base: int | None) -> None:
        """FROM: an earlier stage hands down its variables; an image, only its own (unknown)."""
        inherited = self.variables and base is not None
        self.envs.append(self.envs[base].copy() if inherited and base is not None else _Env())
        self.triggers.append(None)
        trigger = self.triggers[base] if base is not None else None
        if trigger is not None:
            line, text = trigger
            why = "its ONBUILD trigger runs in the stage built FROM it, in this context"
            read = ContextRead(
                file=self.path, line=line, path=WHOLE_CONTEXT, instruction=text, why=why
            )
            self.reads.append((len(self.envs) - 1, read))

    def stage_args(self, items: Sequence[str]) -> None:
        """An ARG in a stage: every default expands with the variables from before the
        instruction (ArgCommand.Expand runs before dispatchArg sets any), unlike the global
        ARGs, each of which sees the ones before it."""
        if not self.variables:
            return
        env = self.envs[-1]
        values: list[tuple[str, str | _Unknown | None]] = []
        for item in items:
            name, eq, default = item.partition("=")
            if not self._plain(name):  # BuildKit expands names too
                env.blind = f"ARG {_shorten(name, 40)} names a variable by expansion"
                return
            value: str | _Unknown | None
            if name == _EPOCH_ARG:
                value = _Unknown(f"{_EPOCH_ARG} is set only when the image builds")
            elif name in self.build_args:
                value = self.build_args[name]
            elif eq:
                value = self._expand(default)
            else:
                value = self.meta.get(name)
            values.append((name, value))
        for name, value in values:
            if value is None:
                if name not in env.known and name not in env.unknown:
                    env.valueless.add(name)
            elif name not in _NON_ENV_ARGS:
                env.set(name, value)

    def env(self, command: Command) -> None:
        if not self.variables:
            return
        env = self.envs[-1]
        values = command.value
        if len(values) % 2:
            env.blind = f"ENV at line {command.start_line} is malformed"
            return
        pairs = list(zip(values[::2], values[1::2], strict=True))
        # Every value expands with the variables from before the instruction.
        expanded = [(name, self._expand(value)) for name, value in pairs]
        for name, value in expanded:
            if not self._plain(name):  # BuildKit expands names too
                env.blind = f"ENV {_shorten(name, 40)} names a variable by expansion"
                return
            env.set(name, value)

    def onbuild(self, command: Command) -> None:
        if self.triggers[-1] is None:
            self.triggers[-1] = (command.start_line, _one_line(command))

    # -- reads -------------------------------------------------------------------------

    def _read(self, command: Command, path: str, why: str | None = None) -> None:
        read = ContextRead(
            file=self.path,
            line=command.start_line,
            path=path,
            instruction=_one_line(command),
            why=why,
        )
        self.reads.append((len(self.envs) - 1, read))

    def _whole(self, command: Command, why: str) -> None:
        self._read(command, WHOLE_CONTEXT, why)

    def copy(self, command: Command) -> None:
        """COPY/ADD without --from: each source that is no inline document and no URL."""
        if command.flags:
            froms = _flag(command.flags, "from")
            if froms and froms[-1]:
                return  # a stage, an image or a named context, never this context
            if any(f == "--parents" or f.startswith("--parents=") for f in command.flags):
                self._whole(command, "builder does not model COPY --parents")
                return
        for raw in command.value[:-1]:
            heredoc = _HEREDOC_RE.match(raw) if "<<" in raw else None
            if heredoc is not None and heredoc.group(1):
                if any(c in heredoc.group(1) for c in ("'", '"', "$", self.escape)):
                    self._whole(command, f"builder does not model the source {raw!r}")
                    return
                continue  # an inline document
            source = self._expand(raw)
            if isinstance(source, _Unknown):
                self._whole(command, str(source))
                return
            remote = _remote(source)
            if remote == "url":
                continue  # fetched over HTTP, not from the context
            if remote == "git":
                self._whole(command, f"{_shorten(source, 60)} may be a git repository")
                return
            path = _context_path(source)
            if path.startswith("!"):
                # FollowPaths would hand fsutil an exclusion pattern.
                self._whole(command, f"builder does not model the source {source!r}")
                return
            self._read(command, path)

    def run(self, command: Command) -> None:
        """RUN --mount=type=bind without from=: its source is read from the context."""
        for mount in _flag(command.flags, "mount"):
            if '"' in mount:  # a quote the parser left in: Go's csv would read it
                self._whole(command, "builder does not model a quoted --mount field")
                return
            fields = {"type": "bind", "from": "", "source": ""}
            for item in mount.split(","):
                key, eq, value = item.partition("=")
                key = {"src": "source"}.get(key.lower(), key.lower())
                if eq and key in fields:
                    fields[key] = value
            kind, origin = self._expand(fields["type"]), self._expand(fields["from"])
            if isinstance(kind, _Unknown) or isinstance(origin, _Unknown):
                self._whole(command, str(kind if isinstance(kind, _Unknown) else origin))
                return
            if kind.lower() != "bind" or origin:
                continue  # cache, tmpfs, secret, ssh, or a stage or image
            source = self._expand(fields["source"])
            if isinstance(source, _Unknown):
                self._whole(command, str(source))
                return
            self._read(command, _context_path(source))
