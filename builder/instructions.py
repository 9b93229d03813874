"""BuildKit's Dockerfile parser (frontend/dockerfile/parser, v0.12.5, as the `dockerfile`
binding wraps it), in Python, for plain Dockerfiles: most of a real repo's.

Planning a fresh clone parses every Dockerfile; the binding spends a quarter of a
millisecond of Go on each, and loading it starts Go's runtime, which forked workers cannot
share. This port gives the same commands, field for field, for a file that is ASCII text
without heredocs, an `escape` directive, ONBUILD or HEALTHCHECK; for anything else it
answers None and the binding parses. tests/test_instructions.py holds it to the binding on
generated and real Dockerfiles.
"""

from __future__ import annotations

import json
import re
from typing import NamedTuple


class Command(NamedTuple):
    """One instruction, as the binding's `dockerfile.Command` has it."""

    cmd: str  # as written: `FROM`, `from`
    sub_cmd: str | None  # ONBUILD's trigger
    json: bool  # the value was written as a JSON array
    original: str  # the instruction's lines joined, continuations removed
    start_line: int
    end_line: int
    flags: tuple[str, ...]  # `--from=build`, quotes and escapes resolved
    value: tuple[str, ...]
    heredocs: tuple[object, ...] = ()


# parser.reWhitespace, for text without \v, \f and \r (anything else is not plain).
_WHITESPACE_RE = re.compile(r"[\t ]+")
# directives.go's `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$` (Go's \s is [\t\n\f\r ]):
# a match needs a character after `=`. Only the name counts here, and reading the value
# with that pattern would backtrack in the square of a run of spaces.
_DIRECTIVE_RE = re.compile(r"#[\t ]*([a-zA-Z][a-zA-Z0-9]*)[\t ]*=.")
# lineContinuationRegex for the escape token `\`; Go's `$` is the end of the text.
_CONTINUATION_RE = re.compile(r"([^\\])\\[ \t]*\Z|^\\[ \t]*\Z")
_JSON = json.JSONDecoder()
_NOT_PLAIN_CHARACTERS = ("\r", "\v", "\f", "\0", "<<")
_LONG_LINE = 16 * 1024


class _NotPlain(Exception):
    """Something the port leaves to the binding: it would fail, or this port does not model it."""


def parse_plain(text: str) -> tuple[Command, ...] | None:
    """The binding's commands for `text`, or None when the text is not plain or the binding
    would refuse it (that error, with its line, is the binding's to give)."""
    if not text.isascii() or any(c in text for c in _NOT_PLAIN_CHARACTERS):
        return None
    if len(text) > _LONG_LINE and any(len(line) > _LONG_LINE for line in text.split("\n")):
        return None  # bufio's scanner refuses a line of 64 KiB
    try:
        return _parse(text)
    except _NotPlain:
        return None


class _Directives:
    """DirectiveParser: parser directives sit at the very top; each once."""

    def __init__(self) -> None:
        self.done = False
        self.seen: set[str] = set()

    def line(self, token: str) -> None:
        if self.done:
            return
        match = _DIRECTIVE_RE.match(token)
        name = match.group(1).lower() if match is not None else None
        if name not in ("syntax", "escape"):
            self.done = True
            return
        if name == "escape" or name in self.seen:
            raise _NotPlain  # another escape token, or "only one ... directive can be used"
        self.seen.add(name)


def _continued(line: str) -> tuple[str, bool]:
    """trimContinuationCharacter: the line without its `\\`, and whether it ends there."""
    match = _CONTINUATION_RE.search(line)
    if match is None:
        return line, True
    return line[: match.start()] + (match.group(1) or ""), False


def _parse(text: str) -> tuple[Command, ...]:
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # bufio's scanner yields no line after the last newline
    directives = _Directives()
    commands = []
    count, index = len(lines), 0
    while index < count:
        token = lines[index].lstrip(" \t")  # processLine, stripping leading whitespace
        directives.line(token)
        index += 1
        start = index
        line, ends = _continued("" if token.startswith("#") else token)
        if ends and not line:
            continue
        while not ends and index < count:
            raw = lines[index]
            directives.line(raw)
            index += 1
            stripped = raw.lstrip(" \t")
            if stripped.startswith("#") or not stripped:
                continue  # a comment, or an empty continuation line
            more, ends = _continued(raw)
            line += more
        commands.append(_command(line, start, index))
    if not commands:
        raise _NotPlain  # "file with no instructions"
    return tuple(commands)


def _command(line: str, start: int, end: int) -> Command:
    """newNodeFromLine, through the binding's view of the node."""
    parts = _WHITESPACE_RE.split(line.strip(" \t"), 1)
    cmd, args = parts[0], ""
    flags: tuple[str, ...] = ()
    if not cmd:
        raise _NotPlain  # a lone `\`: a command without an instruction
    if len(parts) == 2:
        args, flags = _builder_flags(parts[1])
    args = args.strip(" \t")
    kind = cmd.lower()
    is_json = False
    value: tuple[str, ...]
    if kind in ("from", "expose"):
        value = _split(args)
    elif kind in ("copy", "add", "volume"):
        words = _json_array(args)
        is_json = words is not None
        value = words if words is not None else _split(args)
    elif kind in ("run", "cmd", "entrypoint", "shell"):
        words = _json_array(args) if args else None
        is_json = words is not None
        value = words if words is not None else (args,) if args else ()
    elif kind in ("env", "label"):
        value = _name_values(args)
    elif kind == "arg":
        value = tuple(_words(args))
    elif kind in ("maintainer", "stopsignal", "user", "workdir"):
        value = (args,) if args else ()
    else:
        raise _NotPlain  # ONBUILD, HEALTHCHECK, or no instruction at all
    return Command(cmd, None, is_json, line, start, end, flags, value)


def _split(rest: str) -> tuple[str, ...]:
    """parseStringsWhitespaceDelimited."""
    return tuple(_WHITESPACE_RE.split(rest)) if rest else ()


def _json_array(rest: str) -> tuple[str, ...] | None:
    """parseJSON: the first JSON value of `rest` when it is an array of strings (Go's
    decoder reads no further); None when `rest` is no JSON array."""
    if not rest.startswith("["):
        return None
    if "\\u" in rest:
        raise _NotPlain  # Go and Python differ on lone surrogates
    try:
        words, _ = _JSON.raw_decode(rest)
    except ValueError:
        return None
    except RecursionError:
        raise _NotPlain from None  # arrays nested a thousand deep: Go's decoder goes to 10,000
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise _NotPlain  # "arrays must be comprised of strings only"
    return tuple(words)


def _name_values(rest: str) -> tuple[str, ...]:
    """parseNameVal: `ENV name value` or `ENV a=1 b=2`, as names and values in turn."""
    words = _words(rest)
    if not words:
        return ()
    if "=" not in words[0]:
        parts = _WHITESPACE_RE.split(rest, 1)
        if len(parts) < 2:
            raise _NotPlain  # "ENV must have two arguments"
        return (parts[0], parts[1])
    out: list[str] = []
    for word in words:
        name, eq, value = word.partition("=")
        if not eq:
            raise _NotPlain  # "Syntax error - can't find = in ..."
        out += (name, value)
    return tuple(out)


def _words(rest: str) -> list[str]:
    """parseWords: words apart at whitespace outside quotes; quotes and escapes stay in."""
    words: list[str] = []
    word: list[str] = []
    in_word = in_quote = blank_ok = False
    quote = ""
    size, pos = len(rest), 0
    while pos < size:
        ch = rest[pos]
        pos += 1
        if in_quote:
            if ch == quote:
                in_quote = False
            if ch == "\\" and quote != "'":
                if pos == size:
                    in_quote = False
                    continue  # an escape at the end is dropped
                word.append(ch)
                ch = rest[pos]
                pos += 1
            word.append(ch)
            continue
        if not in_word:
            if ch in " \t":
                continue
            in_word = True
        if ch in " \t":
            in_word = False
            if blank_ok or word:
                words.append("".join(word))
            word, blank_ok = [], False
            continue
        if ch in "'\"":
            quote, blank_ok, in_quote = ch, True, True
        if ch == "\\":
            if pos == size:
                continue
            word.append(ch)
            ch = rest[pos]
            pos += 1
        word.append(ch)
    if (in_word or in_quote) and (blank_ok or word):
        words.append("".join(word))
    return words


def _builder_flags(line: str) -> tuple[str, tuple[str, ...]]:
    """extractBuilderFlags: the leading `--name=value` words (quotes and escapes resolved)
    and the rest of the line."""
    if not line.startswith("--"):
        return line, ()  # no flags: most instructions (the line starts with no space)
    words: list[str] = []
    word: list[str] = []
    in_word = in_quote = blank_ok = False
    quote = ""
    size, pos = len(line), 0
    while pos < size:
        ch = line[pos]
        if not in_word and not in_quote:
            if ch in " \t":
                pos += 1
                continue
            if ch != "-" or pos + 1 == size or line[pos + 1] != "-":
                return line[pos:], tuple(words)
            in_word = True
        if in_quote:
            if ch == quote:
                in_quote = False
                pos += 1
                continue
            if ch == "\\":
                if pos + 1 == size:
                    in_quote = False
                    pos += 1
                    continue
                pos += 1
                ch = line[pos]
            word.append(ch)
            pos += 1
            continue
        if ch in " \t":
            in_word = False
            joined = "".join(word)
            if joined == "--":
                return line[pos:], tuple(words)
            if blank_ok or word:
                words.append(joined)
            word, blank_ok = [], False
            pos += 1
            continue
        if ch in "'\"":
            quote, blank_ok, in_quote = ch, True, True
            pos += 1
            continue
        if ch == "\\":
            if pos + 1 == size:
                pos += 1
                continue
            pos += 1
            ch = line[pos]
        word.append(ch)
        pos += 1
    joined = "".join(word)
    if (in_word or in_quote) and joined != "--" and (blank_ok or word):
        words.append(joined)
    return "", tuple(words)
