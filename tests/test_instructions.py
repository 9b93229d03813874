"""builder.instructions against the `dockerfile` binding (BuildKit's own parser): for
every text, the port either declines or gives the binding's commands, field for field."""

from __future__ import annotations

import random
from pathlib import Path

import dockerfile
import pytest

from builder import dockerfiles
from builder.dockerfiles import parse_dockerfile
from builder.instructions import Command, parse_plain

ROOT = Path(__file__).resolve().parent.parent

# Lines and pieces of lines chosen for the parser's corners: quotes, escapes, flags, the
# `--` that ends them, JSON that is and is not, both ENV forms, and what the port declines.
INSTRUCTIONS = [
    "FROM a",
    "from a AS b",
    "FROM --platform=$BUILDPLATFORM golang:1.22 as Build",
    "FROM  a:1@sha256:abc   AS  b ",
    "FROM",
    "FROM a b c d",
    "FROM ${BASE:-debian}:${TAG}",
    "RUN x",
    'RUN ["a", "b"]',
    "RUN [ -f x ] && echo",
    "RUN --mount=type=cache,target=/root/.cache pip install -r r.txt",
    'RUN --mount="type=bind,source=a b,target=/x" make',
    "RUN --mount=type=bind,from=build,source=/out,target=/in cp -r /in /o",
    "RUN -- echo",
    "RUN --",
    "RUN --network=none --security=insecure x",
    'run  echo "a \\" b"',
    "RUN ['a']",
    'RUN ["a", 1]',
    'RUN ["a"] trailing',
    'RUN ["\\u0041"]',
    'RUN ["a\\tb", "c\\/d"]',
    'RUN ["a",]',
    "RUN",
    "RUN '--x' y",
    "RUN --x='a b' \"c d\" e",
    "RUN --a\\ b=c d",
    "COPY a b",
    "COPY --from=build /out /app",
    'COPY ["a b", "c"]',
    "COPY --chown=1:1 --chmod=755 a /b/",
    "COPY",
    "COPY --link . .",
    "COPY --from=${IMG} a b",
    "ADD http://example.com/x /z",
    "ADD --checksum=sha256:abc a b",
    "ADD a\\ b c",
    "COPY <<EOF /a\nhi\nEOF",
    "ENV a b c",
    'ENV a=b c="d e"',
    "ENV a='x y' b=\"z\"",
    "ENV a",
    "ENV a= b=",
    'ENV "a"=b',
    "ENV a=b c",
    "ENV a\\ b=c",
    "ENV",
    'LABEL org.opencontainers.image.title="x y" version=1',
    "LABEL a b",
    "ARG a",
    "ARG a=b c",
    'ARG "a=b c"',
    'ARG a=\'x\' b="y\\"z"',
    "ARG",
    "EXPOSE 80 81/tcp",
    "EXPOSE",
    "USER 1000:1000",
    "USER",
    "WORKDIR /a b",
    'CMD ["python", "-m", "app"]',
    "CMD python -m app",
    'ENTRYPOINT ["tini", "--"]',
    'VOLUME ["/data"]',
    "VOLUME /a /b",
    'SHELL ["/bin/bash", "-c"]',
    "STOPSIGNAL SIGTERM",
    "MAINTAINER someone",
    "ONBUILD RUN x",
    "HEALTHCHECK CMD curl -f http://localhost/",
    "FOO bar",
    "COPY --from= a b",
    "RUN echo 'unterminated",
    'RUN echo "a b',
]
PREFIXES = ["", " ", "\t", "  \t "]
SUFFIXES = ["", " ", "\t", " \\", "\\", " \\ ", "\\\\", " \\\t"]
EXTRA_LINES = [
    "# a comment",
    "  # an indented comment",
    "",
    "   ",
    "\\",
    "  && more",
    "--flag=x",
    "# syntax=docker/dockerfile:1",
]
DIRECTIVES = [
    "# syntax=docker/dockerfile:1.7",
    "#syntax = docker/dockerfile:1",
    "# escape=`",
    "# escape=\\",
    "# foo=bar",
    "# check=skip=all",
    "#",
]
NOISE = [
    "\\",
    '"',
    "'",
    "[",
    "]",
    "=",
    "-",
    "--",
    "#",
    "\t",
    " ",
    "\n",
    "$",
    "{",
    "}",
    ",",
    "é",
    "\r",
]


def _generated(rng: random.Random) -> str:
    lines = [rng.choice(DIRECTIVES) for _ in range(rng.choice([0, 0, 1, 2]))]
    for _ in range(rng.randint(1, 8)):
        if rng.random() < 0.2:
            lines.append(rng.choice(EXTRA_LINES))
            continue
        lines.append(rng.choice(PREFIXES) + rng.choice(INSTRUCTIONS) + rng.choice(SUFFIXES))
    text = "\n".join(lines) + rng.choice(["\n", "", "\n\n"])
    for _ in range(rng.choice([0, 0, 0, 1, 2, 3])):  # a few random characters anywhere
        at = rng.randrange(len(text) + 1)
        text = text[:at] + rng.choice(NOISE) + text[at:]
    return text


def _binding(text: str) -> tuple[Command, ...] | None:
    try:
        return tuple(Command(*c) for c in dockerfile.parse_string(text))
    except (dockerfile.GoParseError, UnicodeDecodeError):
        return None


def _check(text: str) -> bool:
    """The port agrees with the binding on `text`; True when it did not decline."""
    plain = parse_plain(text)
    if plain is None:
        return False
    assert plain == _binding(text), text
    return True


def test_generated_dockerfiles_parse_as_the_binding_parses() -> None:
    rng = random.Random(20261201)  # noqa: S311 - a fixed seed, not a secret
    texts = [_generated(rng) for _ in range(4000)]
    accepted = sum(_check(text) for text in texts)
    # Most are plain: the comparison is not vacuous.
    assert accepted > len(texts) // 3, accepted


def test_the_repos_own_dockerfiles_are_plain_and_parse_the_same() -> None:
    paths = [
        p
        for folder in ("images", "base-images", "tests")
        for p in (ROOT / folder).rglob("Dockerfile*")
        if p.is_file() and not p.name.endswith(".dockerignore")
    ]
    assert len(paths) >= 5
    for path in paths:
        text = path.read_text(encoding="utf-8")
        if "<<" in text or "ONBUILD" in text.upper() or "HEALTHCHECK" in text.upper():
            continue
        assert _check(text), path


@pytest.mark.parametrize(
    "text",
    [
        "FROM a\nCOPY <<EOF /x\nhi\nEOF\n",  # a heredoc
        "# escape=`\nFROM a\nRUN x `\n  y\n",  # another escape token
        "FROM a\nONBUILD COPY . /app\n",
        "FROM a\nHEALTHCHECK CMD true\n",
        "FROM a\nRUN echo \u00e9\n",  # not ASCII
        "FROM a\r\nRUN x\r\n",  # CRLF
        "FROM a\nFOO bar\n",  # an unknown instruction: the binding's error to give
        "# syntax=a\n# syntax=b\nFROM a\n",  # a repeated directive: an error
        "FROM a\nENV x\n",  # ENV must have two arguments
        'FROM a\nRUN ["a", 1]\n',  # a JSON array of more than strings
        "# just a comment\n",  # no instructions
        "FROM a\n\\\n",  # a lone escape: a command without an instruction
        "FROM a\nRUN " + "[" * 1000 + "\n",  # Python's JSON decoder recurses per level
        "FROM a\nCMD " + "[" * 1000 + "]" * 1000 + "\n",
    ],
)
def test_what_the_port_leaves_to_the_binding(text: str) -> None:
    assert parse_plain(text) is None


def test_continuations_comments_and_flags() -> None:
    text = (
        "# syntax=docker/dockerfile:1.7\n"
        "FROM --platform=$BUILDPLATFORM golang:1.22 AS build\n"
        "RUN --mount=type=cache,target=/root/.cache \\\n"
        "  # a comment inside\n"
        "\n"
        '    go build -o /out "./cmd/x" \\\n'
        "    && ls\n"
        'ENV A=1 B="2 3"\n'
        "COPY --from=build /out /app\n"
    )
    commands = parse_plain(text)
    assert commands is not None
    assert [(c.cmd, c.start_line, c.end_line) for c in commands] == [
        ("FROM", 2, 2),
        ("RUN", 3, 7),
        ("ENV", 8, 8),
        ("COPY", 9, 9),
    ]
    assert commands[1].flags == ("--mount=type=cache,target=/root/.cache",)
    assert commands[1].value == ('go build -o /out "./cmd/x"     && ls',)
    assert commands[2].value == ("A", "1", "B", '"2 3"')
    assert commands == _binding(text)


REAL = sorted((ROOT / "tests" / "data" / "dockerfiles").glob("*.txt"))


@pytest.mark.parametrize("path", REAL, ids=[p.name for p in REAL])
def test_real_monorepo_dockerfiles_reduce_the_same_either_way(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Public monorepos' Dockerfiles: the port's commands are the binding's, and what
    builder reduces them to is the same whichever parsed them."""
    text = path.read_text(encoding="utf-8")
    plain = parse_plain(text)
    if "HEALTHCHECK" in text:
        assert plain is None
    else:
        assert plain is not None
        assert plain == _binding(text)
    platforms = ("linux/amd64", "linux/arm64")
    ported = parse_dockerfile(text, path=path.name, platforms=platforms)
    monkeypatch.setattr(dockerfiles, "parse_plain", lambda _text: None)
    assert parse_dockerfile(text, path=path.name, platforms=platforms) == ported


def test_most_real_monorepo_dockerfiles_are_plain() -> None:
    assert len(REAL) >= 7
    assert sum(parse_plain(p.read_text(encoding="utf-8")) is not None for p in REAL) >= 6
