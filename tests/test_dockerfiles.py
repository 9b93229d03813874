"""Dockerfile parsing: the references a Dockerfile makes, as BuildKit would read them."""

from __future__ import annotations

import random

import pytest

from builder.dockerfiles import ExpansionError, expand, parse_dockerfile
from builder.errors import DockerfileError

DIGEST = "sha256:" + "b" * 64


def refs(text: str, **build_args: str) -> list[tuple[str, str]]:
    info = parse_dockerfile(text, path="Dockerfile", build_args=build_args)
    return [(r.kind, r.text) for r in info.references]


@pytest.mark.parametrize(
    ("text", "build_args", "expected"),
    [
        pytest.param("FROM python:3.12\n", {}, [("from", "python:3.12")], id="plain"),
        pytest.param(f"FROM python@{DIGEST}\n", {}, [("from", f"python@{DIGEST}")], id="digest"),
        pytest.param("ARG V=3.12\nFROM python:$V\n", {}, [("from", "python:3.12")], id="$VAR"),
        pytest.param("ARG V=3.12\nFROM python:${V}\n", {}, [("from", "python:3.12")], id="${VAR}"),
        pytest.param(
            "ARG V\nFROM python:${V:-3.11}\n", {}, [("from", "python:3.11")], id="default-unset"
        ),
        pytest.param(
            "ARG V=\nFROM python:${V:-3.11}\n", {}, [("from", "python:3.11")], id="default-empty"
        ),
        pytest.param(
            "ARG V=3.12\nFROM python:${V:-3.11}\n", {}, [("from", "python:3.12")], id="default-set"
        ),
        pytest.param(
            "ARG V=3.12\nFROM python:$V\n",
            {"V": "3.13"},
            [("from", "python:3.13")],
            id="build-arg-overrides-default",
        ),
        pytest.param(
            "ARG V\nFROM python:${V:-3.11}\n",
            {"V": "3.13"},
            [("from", "python:3.13")],
            id="build-arg-fills-declared",
        ),
        pytest.param(
            "FROM python:${V:-3.11}\n",
            {"V": "3.13"},
            [("from", "python:3.11")],
            id="build-arg-of-undeclared-arg-ignored",
        ),
        pytest.param(
            "FROM alpine\nARG V=x\nFROM img:${V:-dflt}\n",
            {"V": "y"},
            [("from", "alpine"), ("from", "img:dflt")],
            id="arg-after-first-from-does-not-reach-from",
        ),
        pytest.param(
            "ARG R=docker.io\nARG IMG=${R}/acme/base\nFROM $IMG\n",
            {},
            [("from", "docker.io/acme/base")],
            id="arg-from-arg",
        ),
        pytest.param(
            "ARG B=base\nFROM ${A:-${B}}:1\n", {}, [("from", "base:1")], id="nested-default"
        ),
        pytest.param(
            "ARG V=1\nFROM img${V:+-slim}\n", {}, [("from", "img-slim")], id="alternative"
        ),
        pytest.param('ARG V="3.12"\nFROM python:$V\n', {}, [("from", "python:3.12")], id="quoted"),
        pytest.param(
            "ARG A=1 B=2\nFROM img:$A.$B\n", {}, [("from", "img:1.2")], id="two-args-one-line"
        ),
        pytest.param(
            # A stage's name is kept lowercased, and FROM looks it up as written: `FROM
            # BUILD` would be an (invalid) image, as on the real engine.
            "FROM golang:1.22 AS Build\nFROM build\nCOPY --from=BUILD /x /y\n",
            {},
            [("from", "golang:1.22")],
            id="stage-names-case-insensitive",
        ),
        pytest.param(
            "from golang:1.22 as build\nfrom alpine\ncopy --from=build /x /y\n",
            {},
            [("from", "golang:1.22"), ("from", "alpine")],
            id="lowercase-instructions",
        ),
        pytest.param(
            "FROM base AS base\nFROM base\n",
            {},
            [("from", "base")],
            id="stage-named-like-its-image",
        ),
        pytest.param(
            "FROM tools\nFROM alpine AS tools\n",
            {},
            [("from", "tools"), ("from", "alpine")],
            id="from-cannot-name-a-later-stage",
        ),
        pytest.param(
            "FROM a AS build\n"
            "FROM scratch\n"  # a stage copying from itself is a cycle to BuildKit
            "COPY --from=build /x /y\n"
            "COPY --from=0 /x /y\n"
            "COPY --from=busybox:1.36 /bin/sh /sh\n",
            {},
            [("from", "a"), ("copy", "busybox:1.36")],
            id="copy-from-stage-index-image",
        ),
        pytest.param(
            "FROM a\nCOPY --from=tools / /\nFROM b AS tools\n",
            {},
            [("from", "a"), ("from", "b")],
            id="copy-from-a-later-stage",
        ),
        pytest.param(
            "ARG T=acme/tools:2\nFROM a\nCOPY --from=$T / /\n",
            {},
            [("from", "a"), ("copy", "acme/tools:2")],
            id="copy-from-arg",
        ),
        pytest.param(
            "FROM a AS builder\n"
            "FROM b\n"
            "RUN --mount=type=bind,from=builder,target=/src true\n"
            "RUN --mount=type=cache,target=/c,from=acme/cache --mount=type=bind,source=x true\n",
            {},
            [("from", "a"), ("from", "b"), ("mount", "acme/cache")],
            id="run-mount-from",
        ),
        pytest.param(
            "FROM a\n"
            "RUN <<EOF\n"
            "FROM evil\n"
            "COPY --from=evil2 / /\n"
            "EOF\n"
            "COPY <<EOF /etc/x\n"
            "FROM evil3\n"
            "EOF\n"
            "RUN cat <<-END\n"
            "\tRUN --mount=from=evil4 x\n"
            "\tEND\n",
            {},
            [("from", "a")],
            id="heredocs",
        ),
        pytest.param(
            "# FROM evil\nFROM a\n# COPY --from=evil2 / /\n  # FROM evil3\nRUN echo # FROM evil4\n",
            {},
            [("from", "a")],
            id="comments",
        ),
        pytest.param(
            "FROM \\\n  python:3.12 \\\n  AS build\n"
            "FROM \\\n  alpine\n"
            "COPY --from=build \\\n  /a /b\n",
            {},
            [("from", "python:3.12"), ("from", "alpine")],
            id="line-continuations",
        ),
        pytest.param(
            "# escape=`\nFROM python:3.12 `\n  AS base\nRUN echo `\n  FROM evil\nFROM base\n",
            {},
            [("from", "python:3.12")],
            id="escape-directive",
        ),
        pytest.param(
            "# syntax=docker/dockerfile:1\n# escape=`\nARG V=1\nFROM img:$V\n",
            {},
            [("from", "img:1")],
            id="escape-directive-keeps-expansion",
        ),
        pytest.param(
            "FROM --platform=$BUILDPLATFORM golang:1.22 AS build\n"
            "FROM --platform=linux/arm64 alpine:3.20\n",
            {},
            [("from", "golang:1.22"), ("from", "alpine:3.20")],
            id="from-platform-flag",
        ),
        pytest.param("FROM scratch\nCOPY app /\n", {}, [], id="scratch"),
        pytest.param("FROM scratch AS s\nFROM s\n", {}, [], id="scratch-stage"),
        pytest.param(
            "FROM a\nONBUILD COPY --from=child-time / /\n", {}, [("from", "a")], id="onbuild"
        ),
        pytest.param(
            "FROM a\nCOPY --from= /x /y\n", {}, [("from", "a")], id="empty-copy-from-is-context"
        ),
        pytest.param(
            "FROM a\nCOPY --chown=\u0800 --from=b / /\nRUN echo h\u00e9llo\n",
            {},
            [("from", "a"), ("copy", "b")],
            id="non-ascii-flag",
        ),
        pytest.param("FROM a\n\\", {}, [("from", "a")], id="trailing-backslash-line"),
    ],
)
def test_references(text: str, build_args: dict[str, str], expected: list[tuple[str, str]]) -> None:
    assert refs(text, **build_args) == expected


@pytest.mark.parametrize(
    ("text", "platforms", "build_args", "expected"),
    [
        pytest.param(
            "FROM alpine AS build-amd64\nFROM busybox AS build-arm64\nFROM build-${TARGETARCH}\n",
            ("linux/amd64", "linux/arm64"),
            {},
            ["alpine", "busybox"],
            id="stage-per-arch",
        ),
        pytest.param(
            "FROM acme/base-$TARGETARCH\n",
            ("linux/amd64", "linux/arm64", "linux/amd64"),
            {},
            ["acme/base-amd64", "acme/base-arm64"],
            id="image-per-arch",
        ),
        pytest.param(
            "FROM img:${TARGETOS}-${TARGETARCH}-${TARGETVARIANT:-none}\n",
            ("linux/arm/v7", "linux/arm64"),
            {},
            ["img:linux-arm-v7", "img:linux-arm64-none"],
            id="os-arch-variant",
        ),
        pytest.param(
            "FROM --platform=$BUILDPLATFORM img:$TARGETARCH\n",
            (),
            {},
            ["img:amd64"],
            id="default-platform",
        ),
        pytest.param(
            "ARG TARGETARCH=riscv64\nFROM img:$TARGETARCH\n",
            ("linux/arm64",),
            {},
            ["img:riscv64"],
            id="declared-default-wins",
        ),
        pytest.param(
            "ARG TARGETARCH\nFROM img:$TARGETARCH\n",
            ("linux/arm64",),
            {"TARGETARCH": "s390x"},
            ["img:s390x"],
            id="build-arg-wins",
        ),
        pytest.param(
            "FROM ${BUILDER_PREFIX:-docker.io/acme}/base\n",
            ("linux/arm64",),
            {"BUILDER_PREFIX": "ghcr.io/other"},
            ["docker.io/acme/base"],
            id="build-args-need-a-declared-arg",
        ),
    ],
)
def test_platform_args(
    text: str, platforms: tuple[str, ...], build_args: dict[str, str], expected: list[str]
) -> None:
    info = parse_dockerfile(text, path="D", build_args=build_args, platforms=platforms)
    assert [r.text for r in info.references] == expected


def test_references_carry_normalised_repository_and_line() -> None:
    info = parse_dockerfile(
        "ARG X\n\nFROM index.docker.io/library/python:3\n\nCOPY --from=acme/t@" + DIGEST + " / /\n",
        path="Dockerfile",
    )
    assert [(r.repository, r.line) for r in info.references] == [
        ("docker.io/library/python", 3),
        ("docker.io/acme/t", 5),
    ]


def test_stages_and_declared_args() -> None:
    info = parse_dockerfile("ARG A\nFROM a AS One\nARG B=1\nFROM b\n", path="Dockerfile")
    assert info.stages == ("one", None)
    assert info.arg_names == frozenset({"A", "B"})


@pytest.mark.parametrize("target", ["final", "FINAL", "build"])
def test_known_target_is_accepted(target: str) -> None:
    info = parse_dockerfile("FROM a AS build\nFROM b AS final\n", path="D", target=target)
    assert info.stages == ("build", "final")


@pytest.mark.parametrize(
    ("text", "target", "message"),
    [
        pytest.param("", None, "D: cannot parse Dockerfile: file with no instructions", id="empty"),
        pytest.param(
            "# only a comment\n\n",
            None,
            "D: cannot parse Dockerfile: file with no instructions",
            id="comment-only",
        ),
        pytest.param("ARG A=1\n", None, "D: no FROM instruction (add a FROM line)", id="no-from"),
        pytest.param(
            "RUN echo hi\nFROM a\n",
            None,
            "D:1: RUN before the first FROM "
            "(a Dockerfile must start with FROM; only ARG may precede it)",
            id="instruction-before-from",
        ),
        pytest.param(
            "ARG A\n\nenv X=1\nFROM a\n",
            None,
            "D:3: env before the first FROM "
            "(a Dockerfile must start with FROM; only ARG may precede it)",
            id="instruction-before-from-line",
        ),
        pytest.param(
            "FROM\n",
            None,
            "D:1: FROM names no image (expected FROM IMAGE [AS NAME])",
            id="from-nothing",
        ),
        pytest.param("\\", None, "D: no FROM instruction (add a FROM line)", id="only-a-backslash"),
        pytest.param(
            "FROM a b\n",
            None,
            "D:1: malformed FROM 'a b' (expected FROM IMAGE [AS NAME])",
            id="from-two-words",
        ),
        pytest.param(
            "FROM a\nFROM b AS\n",
            None,
            "D:2: malformed FROM 'b AS' (expected FROM IMAGE [AS NAME])",
            id="from-as-nothing",
        ),
        pytest.param(
            "FROM a AS b c\n",
            None,
            "D:1: malformed FROM 'a AS b c' (expected FROM IMAGE [AS NAME])",
            id="from-as-two",
        ),
        pytest.param(
            "ARG V\nFROM $V\n",
            None,
            "D:2: '$V' expands to an empty image name "
            "(give the ARG a default or set it in build_args)",
            id="empty-expansion",
        ),
        pytest.param(
            "FROM a\nARG V=x\nFROM ${V}\n",
            None,
            "D:3: '${V}' expands to an empty image name "
            "(give the ARG a default or set it in build_args)",
            id="stage-arg-is-not-global",
        ),
        pytest.param(
            "FROM Python:3\n",
            None,
            "D:1: invalid image reference 'Python:3' (repository names must be lowercase)",
            id="invalid-reference",
        ),
        pytest.param(
            "FROM a\n\nCOPY --from=a:b:c / /\n",
            None,
            "D:3: invalid image reference 'a:b:c'",
            id="invalid-copy-from",
        ),
        pytest.param(
            "FROM a\nRUN --mount=type=bind,from=UP,target=/x true\n",
            None,
            "D:2: invalid image reference 'UP' (repository names must be lowercase)",
            id="invalid-mount-from",
        ),
        pytest.param(
            "\n\nFROM ${V\n", None, "D:3: cannot expand '${V': missing '}'", id="unclosed-brace"
        ),
        pytest.param(
            "ARG V\nFROM ${V:?required}\n",
            None,
            "D:2: cannot expand '${V:?required}': V: required",
            id="required-arg",
        ),
        pytest.param(
            "# escape=`\nARG V=1\nFROM img:`$V\n",
            None,
            "D:3: invalid tag '$V' in image reference 'img:$V'",
            id="escaped-dollar-is-not-expanded",
        ),
        pytest.param(
            "FROM a AS build\nFROM b AS final\n",
            "test",
            "D: target stage 'test' is not defined (named stages: build, final)",
            id="unknown-target",
        ),
        pytest.param(
            "FROM a\n",
            "x",
            "D: target stage 'x' is not defined (name a stage with FROM ... AS)",
            id="unknown-target-no-names",
        ),
        pytest.param(
            "FROM a\x00\nFROM b\n",
            None,
            "D:1: contains a NUL character (is it a text file?)",
            id="nul",
        ),
        pytest.param("FROM a\ud800\n", None, "D: is not valid UTF-8 text", id="surrogate"),
        pytest.param(
            "FROM a\nCOPY --from=st\u00e4ge / /\n",
            None,
            "D:2: invalid image reference 'st\u00e4ge'",
            id="non-ascii-reference",
        ),
    ],
)
def test_errors_say_where(text: str, target: str | None, message: str) -> None:
    with pytest.raises(DockerfileError) as info:
        parse_dockerfile(text, path="D", target=target)
    assert str(info.value) == message
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    ("word", "variables", "expected"),
    [
        ("$A", {"A": "x"}, "x"),
        ("${A}", {"A": "x"}, "x"),
        ("$A_B", {"A": "x"}, ""),
        ("${A}_B", {"A": "x"}, "x_B"),
        ("$A.$B", {"A": "1", "B": "2"}, "1.2"),
        ("\\$A", {"A": "x"}, "$A"),
        ("'$A'", {"A": "x"}, "$A"),
        ('"$A"', {"A": "x"}, "x"),
        ('"\\$A"', {"A": "x"}, "$A"),
        ('"a\\b"', {}, "a\\b"),
        ("$", {}, "$"),
        ("a$/b", {}, "a$/b"),
        ("${A:-d}", {}, "d"),
        ("${A:-d}", {"A": ""}, "d"),
        ("${A-d}", {"A": ""}, ""),
        ("${A-d}", {}, "d"),
        ("${A:+w}", {"A": "1"}, "w"),
        ("${A:+w}", {"A": ""}, ""),
        ("${A+w}", {"A": ""}, "w"),
        ("${A:-${B:-c}}", {}, "c"),
        ("${A:-$B}", {"B": "b"}, "b"),
        ("${V%.*}", {"V": "1.2.3"}, "1.2"),
        ("${V%%.*}", {"V": "1.2.3"}, "1"),
        ("${V#*.}", {"V": "1.2.3"}, "2.3"),
        ("${V##*.}", {"V": "1.2.3"}, "3"),
        ("${V/./-}", {"V": "1.2.3"}, "1-2.3"),
        ("${V//./-}", {"V": "1.2.3"}, "1-2-3"),
    ],
)
def test_expand(word: str, variables: dict[str, str], expected: str) -> None:
    assert expand(word, variables) == expected


# Each read from a label the real engine (BuildKit 0.13) built: `ARG V` then `LABEL x=WORD`.
@pytest.mark.parametrize(
    ("word", "variables", "expected"),
    [
        ("${V/a/b\\c}", {"V": "xay"}, "xb\\cy"),  # the replacement keeps its escapes
        ("${V//*/x}", {"V": "abc"}, "x"),  # no second, empty match at the end
        ("${V///x}", {"V": "abc"}, "xaxbxcx"),  # an empty pattern matches everywhere
        ("${V/$E/x}", {"V": "abc", "E": ""}, "xabc"),
        ("${V:#a}", {"V": "abc"}, "bc"),
        ("${V:%c}", {"V": "abc"}, "ab"),
        ("${V%\\*}", {"V": "a*"}, "a"),
        ("${V%%'*'}", {"V": "a*"}, ""),  # a quoted star is still a wildcard
        ("${V//a/$R}", {"V": "xay", "R": "$0"}, "xay"),  # `//` expands Go's $0 ...
        ("${V/a/$R}", {"V": "xay", "R": "$0"}, "x$0y"),  # ... `/` does not
        ("${V//a/$R}", {"V": "xay", "R": "[$$][${0}][$1][$x]"}, "x[$][a][][]y"),
        ("${V##*}", {"V": "a\nb"}, "\nb"),  # neither * nor ? matches a newline
        ("${V%%*}", {"V": "a\nb"}, "a\n"),
        ("${V//*/x}", {"V": "a\nb"}, "x\nx"),
        ("${V#a?}", {"V": "a\nb"}, "a\nb"),
        ("${V/a\\/b/x}", {"V": "a/b"}, "x"),
        ("${V%'%'b}", {"V": "a%b"}, "a%"),  # `%%` is read after quotes go
        ("${V#a*b}", {"V": "aXbYb"}, "Yb"),
        ("${V##a*b}", {"V": "aXbYb"}, ""),
        ("${V%b*}", {"V": "aXbYb"}, "aXbY"),
        ("${V%%b*}", {"V": "aXbYb"}, "aX"),
        ("${V/X*b/z}", {"V": "aXbYb"}, "az"),
        ("${V#h?}", {"V": "h\u00e9llo"}, "llo"),
        ("${V//[/x}", {"V": "a[b.c(d"}, "axb.c(d"),
        ("${V%(*}", {"V": "a[b.c(d"}, "a[b.c"),
        ("${V/\\}/x}", {"V": "a}b"}, "axb"),
        ("${V/b/${E:-\\}}}", {"V": "abc"}, "a}c"),
    ],
)
def test_expand_as_buildkit(word: str, variables: dict[str, str], expected: str) -> None:
    assert expand(word, variables) == expected


@pytest.mark.parametrize(
    "word",
    [
        "${V%%" + "*a" * 15_000 + "b}",
        "${V##" + "*a" * 15_000 + "}",
        "${V//" + "*a" * 15_000 + "/b}",
        "${V//" + "?" * 15_000 + "/b}",
        "${V//a/b}",
    ],
)
def test_patterns_take_one_pass(word: str) -> None:
    """Python's `re` tried every cut of `${V%%*a*a*a*b}`: seconds for a few wildcards."""
    assert isinstance(expand(word, {"V": "a" * 30_000}), str)


@pytest.mark.parametrize(
    ("word", "expected"),
    [("`$A", "$A"), ("\\$A", "\\x"), ("a``b", "a`b")],
)
def test_expand_with_backtick_escape(word: str, expected: str) -> None:
    assert expand(word, {"A": "x"}, escape="`") == expected


@pytest.mark.parametrize(
    ("word", "message"),
    [
        ("${A", "missing '}'"),
        ("${A:-x", "missing '}'"),
        ("${}", "bad substitution"),
        ("${:-x}", "bad substitution"),
        ("${A?}", "A: is not set"),
        ("${A!x}", "unsupported modifier '!' in substitution"),
        ("'x", "unclosed single quote"),
        ('"x', "unclosed double quote"),
        ("${A:/x/y}", "unsupported modifier ':/' in substitution"),
        ("${A%\\a}", "invalid pattern (\\a) in substitution: invalid escape '\\a'"),
        ("${A%'c\\'}", "invalid pattern (\\c) in substitution: invalid escape '\\c'"),
        ("${A/x}", "missing '/'"),
        ("${A:-" * 65 + "}" * 65, "'${' nested more than 64 levels deep"),
    ],
)
def test_expand_rejects(word: str, message: str) -> None:
    with pytest.raises(ExpansionError) as info:
        expand(word, {})
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("text", "target", "base"),
    [
        ("FROM python:3.12\n", None, "python:3.12"),
        ("FROM scratch\nCOPY x /x\n", None, None),
        (
            "FROM golang:1.22 AS build\nFROM alpine:3.20\nCOPY --from=build /a /a\n",
            None,
            "alpine:3.20",
        ),
        (
            "FROM alpine:3.20 AS runtime\nFROM golang:1.22 AS build\nFROM runtime\n",
            None,
            "alpine:3.20",
        ),
        ("FROM python:3.12 AS app\nFROM alpine:3.20 AS other\n", "app", "python:3.12"),
        ("FROM python:3.12 AS a\nFROM a AS b\nFROM b\n", None, "python:3.12"),
        ("FROM golang AS build\nFROM scratch\nCOPY --from=build /x /x\n", None, None),
    ],
)
def test_base_is_where_the_built_stage_starts(
    text: str, target: str | None, base: str | None
) -> None:
    info = parse_dockerfile(text, path="Dockerfile", target=target)
    assert (info.base.text if info.base else None) == base


@pytest.mark.parametrize(
    ("text", "target", "reached"),
    [
        pytest.param(
            "FROM acme/app AS test\nRUN make test\nFROM alpine AS release\n",
            None,
            ["alpine"],
            id="a-test-stage-beside-the-last",
        ),
        pytest.param(
            "FROM acme/app AS test\nFROM alpine AS release\nFROM release\n",
            "release",
            ["alpine"],
            id="target-skips-what-follows",
        ),
        pytest.param(
            "FROM golang AS build\nFROM acme/unused AS lint\nFROM alpine\n"
            "COPY --from=build /x /x\n",
            None,
            ["golang", "alpine"],
            id="copy-from-a-stage-reaches-it",
        ),
        pytest.param(
            "FROM golang\nFROM acme/unused\nFROM alpine\nCOPY --from=0 /x /x\n",
            None,
            ["golang", "alpine"],
            id="copy-from-an-index-reaches-it",
        ),
        pytest.param(
            "FROM golang AS build\nFROM build AS more\nCOPY --from=acme/tool / /\n"
            "FROM alpine\nRUN --mount=from=more,target=/m true\n",
            None,
            ["golang", "acme/tool", "alpine"],
            id="reached-through-a-mount-and-a-chain",
        ),
        pytest.param(
            "FROM alpine\nCOPY --from=later / /\nFROM acme/x AS later\nFROM scratch AS final\n",
            "final",
            [],
            id="nothing-reached-from-scratch",
        ),
    ],
)
def test_only_stages_the_build_runs_count(
    text: str, target: str | None, reached: list[str]
) -> None:
    info = parse_dockerfile(text, path="Dockerfile", target=target)
    assert [r.text for r in info.reached] == reached


def test_one_variable_shortcut_expands_as_the_lexer_does() -> None:
    from builder.dockerfiles import _Lexer

    rng = random.Random(7)  # noqa: S311 - a fixed seed, not a secret
    alphabet = ["a", "B", "_", "1", "/", ":", ".", "-", "$", "{", "}", "@", "é"]
    variables = {"A": "x", "B": "", "a1": "y/z", "B_": "q"}
    shortcut = 0
    for _ in range(20000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8)))
        try:
            want: str | None = _Lexer(text, variables, "\\").word()
        except ExpansionError:
            want = None
        try:
            got: str | None = expand(text, variables)
        except ExpansionError:
            got = None
        assert got == want, text
        shortcut += text.count("$") == 1 and text.isascii()
    assert shortcut > 1000


def test_directives_read_as_buildkits_pattern_reads_them() -> None:
    import re

    from builder.dockerfiles import _directive

    pattern = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
    rng = random.Random(11)  # noqa: S311 - a fixed seed, not a secret
    alphabet = ["#", " ", "\t", "a", "Z", "1", "=", "x", "-", ":", "/", "\u00a0", "\x1c"]
    for _ in range(20000):
        line = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))).strip()
        match = pattern.fullmatch(line)
        assert _directive(line) == (match.groups() if match else None), repr(line)


def test_a_directive_with_a_long_run_of_spaces_is_read_at_once() -> None:
    # BuildKit's pattern, backtracking, takes minutes on this line; the answer is the point.
    text = "# syntax=x" + " " * 60_000 + "y\nFROM alpine\n"
    info = parse_dockerfile(text, path="Dockerfile")
    assert [r.why for r in info.reads] == ["a frontend builder does not model may read any file"]
    assert len(info.reads[0].instruction) < 200
