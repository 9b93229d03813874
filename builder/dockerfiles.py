"""Dockerfile parsing with BuildKit's own grammar, reduced to what the graph needs (pure)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import dockerfile

from builder.errors import DockerfileError
from builder.refs import InvalidReference, parse_reference

RefKind = Literal["from", "copy", "mount"]

# $VAR, ${VAR}, ${VAR:-word}, ${VAR-word}, ${VAR:+word}, ${VAR+word}; `\$` is a literal dollar.
_VAR_RE = re.compile(
    r"\\\$|\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-+])(?P<word>[^}]*))?\}"
    r"|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageReference:
    """An image a Dockerfile pulls: FROM, `COPY --from=` or `RUN --mount=from=`, not a stage."""

    text: str  # as BuildKit sees it, ARGs expanded
    repository: str  # normalised identity
    kind: RefKind
    line: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DockerfileInfo:
    stages: tuple[str | None, ...]  # stage names (lowercased) in order; None when unnamed
    references: tuple[ImageReference, ...]
    arg_names: frozenset[str]  # every ARG declared anywhere: the build args that matter


def expand(text: str, variables: Mapping[str, str]) -> str:
    """Substitute variables as BuildKit's shell lexer does for the forms Dockerfiles use."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "\\$":
            return "$"
        name = match.group("braced") or match.group("plain")
        value = variables.get(name)
        op = match.group("op")
        if op is None:
            return value or ""
        word = expand(match.group("word"), variables)
        is_set = value is not None and (value != "" or not op.startswith(":"))
        if op.endswith("-"):
            return value if is_set and value is not None else word
        return word if is_set else ""

    return _VAR_RE.sub(replace, text)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _flag(flags: tuple[str, ...], name: str) -> list[str]:
    prefix = f"--{name}="
    return [flag[len(prefix) :] for flag in flags if flag.startswith(prefix)]


def _mount_froms(flags: tuple[str, ...]) -> list[str]:
    froms = []
    for mount in _flag(flags, "mount"):
        for field in mount.split(","):
            key, _, value = field.partition("=")
            if key.strip() == "from" and value:
                froms.append(value.strip())
    return froms


def parse_dockerfile(
    text: str,
    *,
    path: str,
    build_args: Mapping[str, str] | None = None,
    target: str | None = None,
) -> DockerfileInfo:
    """Reduce a Dockerfile to its stages, the images it references and the ARGs it declares.

    `build_args` override the defaults of ARGs declared before the first FROM, exactly as
    `--build-arg` does; heredoc bodies and comments never produce references because
    BuildKit's parser keeps them out of the instruction values.
    """
    overrides = dict(build_args or {})
    try:
        commands = dockerfile.parse_string(text)
    except dockerfile.GoParseError as exc:
        raise DockerfileError(f"cannot parse Dockerfile: {exc}", file=path) from None

    global_args: dict[str, str] = {}
    arg_names: set[str] = set()
    stages: list[str | None] = []
    references: list[ImageReference] = []

    def reference(raw: str, kind: RefKind, line: int) -> None:
        expanded = expand(raw, global_args)
        if not expanded:
            raise DockerfileError(
                f"{raw!r} expands to an empty image name",
                file=path,
                line=line,
                hint="give the ARG a default or set it in build_args",
            )
        lowered = expanded.lower()
        if lowered in stages or (lowered.isdigit() and int(lowered) < len(stages)):
            return  # an earlier stage of this Dockerfile, not an image
        if lowered == "scratch" and kind == "from":
            return
        try:
            repository = parse_reference(expanded).repository
        except InvalidReference as exc:
            raise DockerfileError(str(exc), file=path, line=line) from None
        references.append(
            ImageReference(text=expanded, repository=repository, kind=kind, line=line)
        )

    for command in commands:
        line = command.start_line
        if command.cmd == "ARG":
            for item in command.value:
                name, eq, default = item.partition("=")
                arg_names.add(name)
                if not stages:
                    if name in overrides:
                        global_args[name] = overrides[name]
                    elif eq:
                        global_args[name] = expand(_unquote(default), global_args)
            continue
        if command.cmd == "FROM":
            if not command.value:
                raise DockerfileError("FROM names no image", file=path, line=line)
            values = command.value
            alias = None
            if len(values) == 3 and values[1].lower() == "as":
                alias = values[2].lower()
            elif len(values) != 1:
                raise DockerfileError(
                    f"malformed FROM {' '.join(values)!r}",
                    file=path,
                    line=line,
                    hint="expected FROM IMAGE [AS NAME]",
                )
            reference(values[0], "from", line)
            stages.append(alias)
            continue
        if not stages:
            raise DockerfileError(
                f"{command.cmd} before the first FROM",
                file=path,
                line=line,
                hint="a Dockerfile must start with FROM (only ARG may precede it)",
            )
        if command.cmd in ("COPY", "ADD"):
            for source in _flag(command.flags, "from"):
                reference(source, "copy", line)
        elif command.cmd == "RUN":
            for source in _mount_froms(command.flags):
                reference(source, "mount", line)

    if not stages:
        raise DockerfileError("no FROM instruction", file=path, hint="add a FROM line")
    if target is not None and target.lower() not in stages:
        raise DockerfileError(
            f"target stage {target!r} is not defined",
            file=path,
            hint="named stages: " + ", ".join(s for s in stages if s) if any(stages) else None,
        )
    return DockerfileInfo(
        stages=tuple(stages), references=tuple(references), arg_names=frozenset(arg_names)
    )
