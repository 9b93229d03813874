"""Dockerfile parsing with BuildKit's own grammar, reduced to what the graph needs (pure)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import dockerfile

from builder.errors import DockerfileError
from builder.refs import InvalidReference, parse_reference

RefKind = Literal["from", "copy", "mount"]

# `# escape=` must sit among the parser directives at the very top of the file.
_DIRECTIVE_RE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_STAGE_INDEX_RE = re.compile(r"^[0-9]+$")
_SPECIAL_PARAMS = "@*#?-$!0"


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


@dataclass(frozen=True, slots=True, kw_only=True)
class DockerfileInfo:
    stages: tuple[str | None, ...]  # stage names (lowercased) in order; None when unnamed
    references: tuple[ImageReference, ...]
    arg_names: frozenset[str]  # every ARG declared anywhere: the build args that matter
    # The image the built stage (the target, else the last) starts from, following stage
    # names back; None for scratch. What org.opencontainers.image.base.* describe.
    base: ImageReference | None = None
    # Indexes into `references` of those read in stages the build never runs (a test stage
    # beside the target): BuildKit does not pull them, so they are no dependency.
    unreached: frozenset[int] = frozenset()

    @property
    def reached(self) -> tuple[ImageReference, ...]:
        return tuple(r for i, r in enumerate(self.references) if i not in self.unreached)


class _Lexer:
    """One word through BuildKit's shell lexer (frontend/dockerfile/shell/lex.go).

    Quotes are removed, the escape character escapes, and `$NAME`, `${NAME}` and the
    `${NAME:-word}` family are substituted, with nested expansions inside the word.
    """

    def __init__(self, text: str, variables: Mapping[str, str], escape: str) -> None:
        self.text = text
        self.pos = 0
        self.variables = variables
        self.escape = escape

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        ch = self.peek()
        self.pos += len(ch)
        return ch

    def word(self, stop: str = "") -> str:
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
                out.append(self.double_quoted())
            else:
                self.next()
                if ch == self.escape:
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

    def double_quoted(self) -> str:
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
            if ch == self.escape and self.peek() in ('"', "$", self.escape):
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
        if self.peek() in ("", "{", "}", ":"):
            raise ExpansionError("bad substitution")
        name = self.name()
        value = self.variables.get(name)
        op = self.next()
        if op == "}":
            return value or ""
        if not op:
            raise ExpansionError("missing '}'")
        colon = op == ":"
        if colon:
            op = self.next()
        if op in ("#", "%") and not colon:
            longest = self.peek() == op
            if longest:
                self.next()
            return _trim(value or "", self.word("}"), suffix=op == "%", longest=longest)
        if op == "/" and not colon:
            every = self.peek() == "/"
            if every:
                self.next()
            pattern = self.word("/")
            return _replace(value or "", pattern, self.word("}"), every=every)
        if op not in ("-", "+", "?"):
            raise ExpansionError(f"unsupported modifier {op!r} in substitution")
        word = self.word("}")
        is_set = value is not None and (value != "" or not colon)
        if op == "-":
            return value if is_set and value is not None else word
        if op == "+":
            return word if is_set else ""
        if not is_set:
            raise ExpansionError(f"{name}: {word or 'is not set'}")
        return value or ""


def _glob(pattern: str) -> str:
    return "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)


def _trim(value: str, pattern: str, *, suffix: bool, longest: bool) -> str:
    regex = re.compile(_glob(pattern), re.DOTALL)
    cuts = range(len(value) + 1)
    if suffix:
        starts = cuts if longest else reversed(cuts)
        for start in starts:
            if regex.fullmatch(value, start):
                return value[:start]
    else:
        ends = reversed(cuts) if longest else cuts
        for end in ends:
            if regex.fullmatch(value, 0, end):
                return value[end:]
    return value


def _replace(value: str, pattern: str, replacement: str, *, every: bool) -> str:
    if not pattern:
        return value
    regex = re.compile(_glob(pattern), re.DOTALL)
    return regex.sub(lambda _: replacement, value, count=0 if every else 1)


def expand(text: str, variables: Mapping[str, str], *, escape: str = "\\") -> str:
    """Remove quotes and substitute variables as BuildKit does for FROM and ARG values.

    Raises ExpansionError where BuildKit would refuse the word.
    """
    if not any(c in text for c in ("$", "'", '"', escape)):
        return text  # the common case, e.g. `python:3.12-slim`: nothing to lex
    return _Lexer(text, variables, escape).word()


def _escape_token(text: str) -> str:
    """The `# escape=` parser directive, which only counts at the very top of the file."""
    for line in text.lstrip("\ufeff").splitlines():
        match = _DIRECTIVE_RE.match(line)
        if match is None:
            break
        if match.group(1).lower() == "escape" and match.group(2) in ("\\", "`"):
            return match.group(2)
    return "\\"


def _utf8(text: str) -> str:
    """Undo the latin-1 decoding the `dockerfile` binding applies to flags (not to values)."""
    try:
        return text.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return text


def _flag(flags: tuple[str, ...], name: str) -> list[str]:
    prefix = f"--{name}="
    return [_utf8(flag)[len(prefix) :] for flag in flags if flag.startswith(prefix)]


def _mount_froms(flags: tuple[str, ...]) -> list[str]:
    froms = []
    for mount in _flag(flags, "mount"):
        for field in mount.split(","):
            key, _, value = field.partition("=")
            if key.strip().lower() == "from" and value.strip():
                froms.append(value.strip())
    return froms


def _commands(text: str, path: str) -> tuple[dockerfile.Command, ...]:
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
    try:
        # A lone `\` on the last line comes back as a command without an instruction.
        return tuple(c for c in dockerfile.parse_string(text) if c.cmd is not None)
    except dockerfile.GoParseError as exc:
        raise DockerfileError(
            f"cannot parse Dockerfile: {exc}", file=path, line=_error_line(text, str(exc))
        ) from None
    except UnicodeDecodeError:
        # The binding cannot hand back some non-ASCII flags (`COPY --chown=ࠀ`). An image
        # reference is ASCII, so reading a copy with those characters masked loses nothing.
        return _commands("".join(ch if ch.isascii() else "?" for ch in text), path)


def _error_line(text: str, message: str) -> int | None:
    """The line BuildKit's parser gave up on: its errors do not say.

    The first prefix of the file that fails with the same message ends on that line (an
    unterminated heredoc fails where it opens). Only walked on an error, and only so far.
    """
    if message == "file with no instructions":
        return None  # the whole file is to blame, not a line of it
    lines = text.split("\n")  # BuildKit's lines: `str.splitlines` also cuts at \x1c and more
    for end in range(1, min(len(lines), 2000) + 1):
        try:
            dockerfile.parse_string("\n".join(lines[:end]))
        except dockerfile.GoParseError as exc:
            if str(exc) == message:
                return end
        except UnicodeDecodeError:
            return None
    return None


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
    built = stages.index(target.lower()) if target is not None else len(stages) - 1
    reached = reader.reached(built)
    return DockerfileInfo(
        stages=tuple(stages),
        references=tuple(reader.references.values()),
        unreached=frozenset(
            i
            for i, key in enumerate(reader.references)
            if reader.reference_stage[key] not in reached
        ),
        arg_names=frozenset(reader.arg_names),
        base=roots[built],
    )


class _Reader:
    """One walk over the instructions per set of build args; references accumulate."""

    def __init__(self, commands: tuple[dockerfile.Command, ...], *, path: str, escape: str) -> None:
        self.commands = commands
        self.path = path
        self.escape = escape
        froms = [c for c in commands if c.cmd.upper() == "FROM"]
        self.stage_numbers: dict[str, int] = {}
        for number, c in enumerate(froms):
            if len(c.value) == 3 and c.value[1].lower() == "as":
                self.stage_numbers.setdefault(c.value[2].lower(), number)
        self.all_stages = set(self.stage_numbers)
        # Which stage each reference is read in, and which stages each stage needs: BuildKit
        # builds only what the built stage reaches, so only those stages' images count.
        self.reference_stage: dict[tuple[str, str, int], int] = {}
        self.needs: list[set[int]] = [set() for _ in froms]
        self.stages: list[str | None] = []
        self.arg_names: set[str] = set()
        self.references: dict[tuple[str, str, int], ImageReference] = {}
        self.global_args: dict[str, str] = {}
        self.stage_roots: list[ImageReference | None] = []

    def expanded(self, raw: str, line: int) -> str:
        try:
            return expand(raw, self.global_args, escape=self.escape)
        except ExpansionError as exc:
            raise DockerfileError(
                f"cannot expand {raw!r}: {exc}", file=self.path, line=line
            ) from None

    def reference(self, raw: str, kind: RefKind, line: int) -> None:
        name = self.expanded(raw, line)
        if not name:
            if kind != "from":
                return  # BuildKit reads an empty --from as the build context
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
            if lowered in self.stages:
                self.needs[current].add(self.stages.index(lowered))
                return  # an earlier stage of this Dockerfile
            if lowered == "scratch":
                return  # no image at all
        elif lowered in self.all_stages:
            self.needs[current].add(self.stage_numbers[lowered])
            return  # a stage by name, not an image
        elif _STAGE_INDEX_RE.match(lowered):
            self.needs[current].add(int(lowered))
            return  # a stage by index
        try:
            parsed = parse_reference(name)
        except InvalidReference as exc:
            raise DockerfileError(str(exc), file=self.path, line=line) from None
        self.references.setdefault(
            (kind, name, line),
            ImageReference(
                text=name,
                repository=parsed.repository,
                kind=kind,
                line=line,
                tag=parsed.tag,
                digest=parsed.digest,
            ),
        )
        self.reference_stage[kind, name, line] = current

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
        self.stage_roots = []
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
                continue
            if instruction == "FROM":
                self.read_from(command.value, line)
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
            elif instruction == "RUN":
                for source in _mount_froms(command.flags):
                    self.reference(source, "mount", line)

    def read_from(self, values: tuple[str, ...], line: int) -> None:
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
        self.reference(values[0], "from", line)
        name = self.expanded(values[0], line)
        lowered = name.lower()
        if lowered in self.stages:
            root = self.stage_roots[self.stages.index(lowered)]
        elif lowered == "scratch":
            root = None
        else:
            root = self.references.get(("from", name, line))
        self.stage_roots.append(root)
        self.stages.append(alias)
