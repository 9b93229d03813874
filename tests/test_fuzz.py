"""Fuzzing the loaders with structured-but-wrong input: the result is a value or a UserError.

tests/test_properties.py already feeds free text and random YAML documents to each parser;
this file builds inputs that are nearly right (known keys with wrong value types, grammar
shaped Dockerfiles, glob-shaped ignore files, whole repos of random bytes) and asserts more
than "no crash": an error is one line with exit code 2 and points into the file that
caused it, at the lines of the key at fault.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any, TypeVar

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builder.config import parse_image_config, parse_settings
from builder.dockerfiles import parse_dockerfile
from builder.errors import BuilderError, ConfigError, UserError
from builder.ignore import IgnoreMatcher, parse_ignore_patterns
from builder.model import ImageConfig, Settings
from tests.conftest import load_files
from tests.test_properties import IMAGE_KEYS, SETTINGS_KEYS

# Modest counts: the whole core suite must stay fast on two cores.
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

T = TypeVar("T")


def outcome(call: Callable[[], T]) -> T | UserError:
    """The result, or the one-line exit-2 error raised instead; anything else fails."""
    try:
        return call()
    except BuilderError as exc:
        error = exc
    assert isinstance(error, UserError), error
    assert error.exit_code == 2
    assert "\n" not in error.render()
    return error


# -- configuration: every known key, each with values of the wrong type ---------------------

# Strings that have broken a parser before, or sit on an edge of a validator.
TRICKY = ("[z-a]", "!", "a\\", "../..", "/abs", "Linux/AMD64", "docker.io", "", " ", "..", "*")
scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=False),
    st.text(max_size=10),
    st.sampled_from(TRICKY),
)
anything = st.recursive(
    scalar,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
not_a_string = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.lists(scalar, max_size=3),
    st.dictionaries(st.text(max_size=4), scalar, min_size=1, max_size=2),
)
not_a_list_of_strings = st.one_of(
    not_a_string.filter(lambda v: not isinstance(v, list)),
    st.text(min_size=1, max_size=10),
    st.lists(
        st.one_of(st.integers(), st.booleans(), st.none(), st.lists(scalar, max_size=2)),
        min_size=1,
        max_size=3,
    ),
)
not_build_args = st.one_of(
    st.lists(scalar, max_size=3),
    st.text(min_size=1, max_size=10),
    st.integers(),
    st.dictionaries(
        st.text(alphabet="AB_", min_size=1, max_size=3),
        st.one_of(st.none(), st.booleans(), st.lists(scalar, min_size=1, max_size=2)),
        min_size=1,
        max_size=2,
    ),
    st.dictionaries(st.sampled_from(("1A", "A-B", "", "A B")), st.text(max_size=3), min_size=1),
)

WRONG: dict[str, st.SearchStrategy[Any]] = {
    "registry": not_a_string,
    "namespace": not_a_string,
    "default_branch": not_a_string,
    "name": not_a_string,
    "dockerfile": not_a_string,
    "context": not_a_string,
    "target": not_a_string,
    "image_roots": not_a_list_of_strings,
    "platforms": not_a_list_of_strings,
    "watch": not_a_list_of_strings,
    "depends_on": not_a_list_of_strings,
    "build_args": not_build_args,
    "cache": st.one_of(st.none(), st.integers(), st.text(max_size=5), st.lists(scalar, max_size=2)),
}
RIGHT: dict[str, st.SearchStrategy[Any]] = {
    "registry": st.sampled_from(("docker.io", "ghcr.io", "localhost:5000", "registry.example.com")),
    "namespace": st.sampled_from(("acme", "team/sub", "a-b")),
    "default_branch": st.sampled_from(("main", "trunk", "release/1.x")),
    "image_roots": st.lists(
        st.sampled_from(("images", "base-images", "jobs")), min_size=1, max_size=3
    ),
    "platforms": st.lists(
        st.sampled_from(("linux/amd64", "linux/arm64", "linux/arm/v7")), min_size=1
    ),
    "build_args": st.dictionaries(
        st.sampled_from(("A", "PY_VERSION", "_X")), st.one_of(st.text(max_size=5), st.integers())
    ),
    "cache": st.booleans(),
    "name": st.sampled_from(("api", "etl-base", "a.b_c")),
    "dockerfile": st.sampled_from(("Dockerfile", "docker/Dockerfile.prod", "../shared/Dockerfile")),
    "context": st.sampled_from((".", "..", "../..", "src")),
    "target": st.sampled_from(("prod", "build")),
    "watch": st.lists(st.sampled_from(("libs/**", "*.lock", "!docs/")), max_size=3),
    "depends_on": st.lists(st.sampled_from(("base", "tools")), max_size=2),
}


@st.composite
def one_wrong_key(draw: st.DrawFn, keys: tuple[str, ...]) -> tuple[str, str, bool | None]:
    """A valid document but for one key's value: (YAML, that key, the dump's flow style)."""
    chosen = draw(st.lists(st.sampled_from(keys), min_size=1, max_size=len(keys), unique=True))
    wrong = draw(st.sampled_from(chosen))
    document = {k: draw(WRONG[k] if k == wrong else RIGHT[k]) for k in chosen}
    flow = draw(st.sampled_from((False, None, True)))
    return yaml.safe_dump(document, default_flow_style=flow, sort_keys=False), wrong, flow


def lines_of(text: str, key: str) -> range:
    """The lines a top-level key's value may be reported on: from the key to the next one."""
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    assert isinstance(node, yaml.MappingNode)
    for key_node, value_node in node.value:
        if key_node.value == key:
            return range(key_node.start_mark.line + 1, value_node.end_mark.line + 2)
    raise AssertionError(key)


@FUZZ
@given(one_wrong_key(SETTINGS_KEYS))
def test_a_wrong_settings_value_is_reported_at_its_key(case: tuple[str, str, bool | None]) -> None:
    text, key, flow = case
    with pytest.raises(ConfigError) as info:
        parse_settings(text)
    error = info.value
    assert error.file == "builder.yaml"
    assert "\n" not in error.render()
    if flow is not True:  # a one-line flow document puts every key on line 1
        assert error.line in lines_of(text, key), (error.render(), text)


@FUZZ
@given(one_wrong_key(IMAGE_KEYS))
def test_a_wrong_image_value_is_reported_at_its_key(case: tuple[str, str, bool | None]) -> None:
    text, key, flow = case
    with pytest.raises(ConfigError) as info:
        parse_image_config(text, directory=PurePosixPath("images/api"), settings=Settings())
    error = info.value
    assert error.file == "images/api/image.yaml"
    assert "\n" not in error.render()
    if flow is not True:
        assert error.line in lines_of(text, key), (error.render(), text)


# The right type with content on an edge: each key's own validator must answer.
tricky_string = st.sampled_from(TRICKY) | st.text(max_size=6)
NEAR: dict[str, st.SearchStrategy[Any]] = {
    key: (
        st.lists(st.sampled_from(TRICKY), min_size=1, max_size=3)
        if key in ("image_roots", "platforms", "watch", "depends_on")
        else st.dictionaries(tricky_string, scalar, max_size=2)
        if key == "build_args"
        else tricky_string
    )
    for key in WRONG
}


@st.composite
def documents(draw: st.DrawFn, keys: tuple[str, ...]) -> str:
    chosen = draw(st.lists(st.sampled_from(keys), max_size=len(keys), unique=True))
    return yaml.safe_dump({k: draw(anything | NEAR[k]) for k in chosen})


@FUZZ
@given(documents(SETTINGS_KEYS))
def test_any_value_for_any_settings_key_is_a_result_or_a_user_error(text: str) -> None:
    result = outcome(lambda: parse_settings(text))
    if isinstance(result, Settings):
        assert result.platforms
        assert result.image_roots


@FUZZ
@given(documents(IMAGE_KEYS))
def test_any_value_for_any_image_key_is_a_result_or_a_user_error(text: str) -> None:
    result = outcome(
        lambda: parse_image_config(text, directory=PurePosixPath("images/api"), settings=Settings())
    )
    if isinstance(result, ImageConfig):
        for path in (result.dockerfile, result.context):
            assert not path.is_absolute()
            assert ".." not in path.parts


YAML_NOISE = (
    "&a ",
    "*a ",
    "!!str ",
    "!!binary ",
    "!!python/name:os.system ",
    "!custom ",
    "? ",
    ": ",
    "- ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "'",
    '"',
    "|\n  ",
    ">-\n  ",
    "\n",
    "\n  ",
    "\t",
    "#",
    "---\n",
    "...\n",
    "%YAML 1.1\n",
    "<<: ",
    "~",
    "0x1F",
    "2001-13-01",
    ".inf",
    "\ufeff",
)


@st.composite
def yaml_shaped(draw: st.DrawFn, keys: tuple[str, ...]) -> str:
    """Known keys with values cut from YAML's own syntax: anchors, tags, merges, blocks."""
    lines = []
    for _ in range(draw(st.integers(1, 5))):
        key = draw(st.sampled_from(keys) | st.text(max_size=4))
        value = "".join(
            draw(st.lists(st.sampled_from(YAML_NOISE) | st.text(max_size=4), max_size=6))
        )
        lines.append(f"{key}: {value}")
    return "\n".join(lines) + "\n"


@FUZZ
@given(yaml_shaped(SETTINGS_KEYS))
def test_yaml_syntax_noise_in_settings(text: str) -> None:
    result = outcome(lambda: parse_settings(text))
    if isinstance(result, UserError) and result.line is not None:
        assert result.file == "builder.yaml"
        assert 1 <= result.line <= text.count("\n") + 2


@FUZZ
@given(yaml_shaped(IMAGE_KEYS))
def test_yaml_syntax_noise_in_image_config(text: str) -> None:
    result = outcome(
        lambda: parse_image_config(text, directory=PurePosixPath("images/api"), settings=Settings())
    )
    if isinstance(result, UserError) and result.line is not None:
        assert result.file == "images/api/image.yaml"
        assert 1 <= result.line <= text.count("\n") + 2


# -- Dockerfiles: shaped like the grammar, wrong in the details -----------------------------

IMAGES = (
    "python:3.12",
    "acme/base",
    "Acme/Bad",
    "x:-tag",
    "a@sha256:beef",
    "scratch",
    "",
    "0",
    "build",
)
WORDS = ("$V", "${V}", "${V:-python}", "${V:?unset}", "${V", "${}", "$", "'q'", '"dq"', "`", "\\")


@st.composite
def dockerfiles(draw: st.DrawFn) -> str:
    out = []
    if draw(st.booleans()):
        out.append(
            draw(st.sampled_from(("# escape=`", "# escape=\\", "# syntax=docker/dockerfile:1")))
        )
    for _ in range(draw(st.integers(0, 8))):
        instruction = draw(
            st.sampled_from(
                (
                    "FROM",
                    "from",
                    "ARG",
                    "COPY",
                    "ADD",
                    "RUN",
                    "ENV",
                    "LABEL",
                    "ONBUILD",
                    "BOGUS",
                    "",
                )
            )
        )
        word = draw(st.sampled_from(IMAGES + WORDS)) + draw(st.sampled_from(("", *WORDS)))
        if instruction.upper() == "FROM":
            tail = draw(
                st.sampled_from(
                    ("", " AS stage", " as Build", " AS", " AS a b", " --platform=$BUILDPLATFORM")
                )
            )
            out.append(f"{instruction} {word}{tail}")
        elif instruction == "ARG":
            out.append(f"ARG V{draw(st.sampled_from(('', '=', '=' + word)))}")
        elif instruction in ("COPY", "ADD"):
            out.append(f"{instruction} --from={word} /a /b")
        elif instruction == "RUN":
            form = draw(
                st.sampled_from(
                    (
                        "--mount=type=bind,from={w},target=/m true",
                        "<<EOF\n{w}\nEOF",
                        "<<EOF",
                        "{w} \\",
                    )
                )
            )
            out.append("RUN " + form.format(w=word))
        else:
            out.append(f"{instruction} {word}")
    separator = draw(st.sampled_from(("\n", "\r\n", "\n\n")))
    return separator.join(out) + draw(st.sampled_from(("", "\n", "\\", "\0", "\ud800")))


@FUZZ
@given(
    dockerfiles(),
    st.dictionaries(
        st.sampled_from(("V", "BUILDER_PREFIX")), st.sampled_from(IMAGES + WORDS), max_size=2
    ),
    st.one_of(st.none(), st.sampled_from(("stage", "build", "nope", "0"))),
    st.lists(
        st.sampled_from(("linux/amd64", "linux/arm64", "linux/arm/v7", "windows/amd64")), max_size=3
    ),
)
def test_grammar_shaped_dockerfiles(
    text: str, build_args: dict[str, str], target: str | None, platforms: list[str]
) -> None:
    info = outcome(
        lambda: parse_dockerfile(
            text,
            path="images/api/Dockerfile",
            build_args=build_args,
            target=target,
            platforms=platforms,
        )
    )
    lines = text.count("\n") + 1
    if isinstance(info, UserError):
        assert info.file == "images/api/Dockerfile"
        assert info.line is None or 1 <= info.line <= lines
        return
    assert info.stages
    assert all(s is None or s == s.lower() for s in info.stages)
    for reference in info.references:
        assert reference.repository
        assert 1 <= reference.line <= lines


# -- whole repos of random bytes --------------------------------------------------------------

CHUNKS = (
    b"FROM python:3.12\n",
    b"FROM acme/a\n",
    b"name: a\n",
    b"depends_on: [a]\n",
    b"\xff",
    b"\0",
    b"\xef\xbb\xbf",
    b"context: ..\n",
    b"*\n",
    b"!Dockerfile\n",
)
blobs = st.one_of(
    st.binary(max_size=40), st.lists(st.sampled_from(CHUNKS), max_size=4).map(b"".join)
)


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(
            (
                "builder.yaml",
                "images/a/Dockerfile",
                "images/a/image.yaml",
                "images/a/.dockerignore",
                "images/a/Dockerfile.dockerignore",
                "images/b/Dockerfile",
                "images/b/image.yaml",
                "base-images/a/Dockerfile",
            )
        ),
        blobs,
        max_size=8,
    )
)
def test_a_repo_of_random_bytes_loads_or_says_which_file(files: dict[str, bytes]) -> None:
    repo = outcome(lambda: load_files(files))
    if isinstance(repo, UserError):
        if repo.file is not None:
            assert any(f.startswith(repo.file) for f in files), repo.render()
        return
    for image in repo.graph.images.values():
        assert set(image.parents) <= set(repo.graph.images)


# -- .dockerignore: glob-shaped patterns -------------------------------------------------------

GLOB = (
    "a",
    "b",
    "*",
    "**",
    "?",
    "/",
    ".",
    "..",
    "[ab]",
    "[^a]",
    "[!a]",
    "[a-",
    "[z-a]",
    "[[:alpha:]]",
    "\\",
    "\\*",
    "!",
    " ",
    "#",
    # Forms the Go regexp reads its own way: a class, a repeat, an alternation, a quote.
    "[a-c]",
    "{2}",
    "|",
    "\\Q",
    "\\d",
    "\ufeff",
    "\t",
)
SAFE = st.lists(st.sampled_from(("a", "b", "c", "x.md", "dir")), min_size=1, max_size=4).map(
    "/".join
)


@FUZZ
@given(
    st.lists(st.lists(st.sampled_from(GLOB), max_size=6).map("".join), max_size=5).map("\n".join),
    st.lists(
        st.lists(st.sampled_from(GLOB[:9]), min_size=1, max_size=5).map("".join),
        min_size=1,
        max_size=3,
    ).map("/".join),
)
def test_glob_shaped_ignore_files(text: str, path: str) -> None:
    patterns = parse_ignore_patterns(text)
    assert all(patterns)  # blank lines and comments are gone
    assert not any(line.startswith("#") for line in text.splitlines() if line in patterns)
    matcher = IgnoreMatcher(patterns)
    assert matcher.excludes(path) in (True, False)


@FUZZ
@given(SAFE, st.lists(SAFE, max_size=3))
def test_a_literal_pattern_excludes_its_path_and_a_negation_restores_it(
    path: str, others: list[str]
) -> None:
    assert IgnoreMatcher.from_text("\n".join([*others, path])).excludes(path)
    assert IgnoreMatcher.from_text(path).excludes(f"{path}/deeper/file")
    assert not IgnoreMatcher.from_text("\n".join([*others, path, f"!{path}"])).excludes(path)


# -- hostile shapes: aliases, depth and control characters ---------------------------------


@st.composite
def aliased_documents(draw: st.DrawFn, keys: tuple[str, ...]) -> str:
    """Anchors of aliases of anchors (a billion laughs, in small), a known key set to one of
    them, and a value nested up to 200 deep."""
    count = draw(st.integers(min_value=1, max_value=9))
    lines = ["a0: &a0 [" + ", ".join(draw(st.lists(st.sampled_from(TRICKY[:6]), max_size=9))) + "]"]
    for index in range(1, count):
        refs = draw(st.lists(st.integers(min_value=0, max_value=index - 1), max_size=9))
        lines.append(f"a{index}: &a{index} [{', '.join(f'*a{r}' for r in refs)}]")
    lines.append(f"{draw(st.sampled_from(keys))}: *a{draw(st.integers(0, count - 1))}")
    depth = draw(st.integers(min_value=0, max_value=200))
    opening, closing = draw(st.sampled_from((("[", "]"), ("{a: ", "}"))))
    lines.append(f"deep: {opening * depth}{closing * depth}")
    return "\n".join(lines) + "\n"


@FUZZ
@given(aliased_documents(SETTINGS_KEYS))
def test_aliases_and_depth_in_settings(text: str) -> None:
    result = outcome(lambda: parse_settings(text))
    assert isinstance(result, (Settings, ConfigError))


@FUZZ
@given(aliased_documents(IMAGE_KEYS))
def test_aliases_and_depth_in_image_config(text: str) -> None:
    result = outcome(
        lambda: parse_image_config(text, directory=PurePosixPath("images/a"), settings=Settings())
    )
    assert isinstance(result, (ImageConfig, ConfigError))


@FUZZ
@given(st.text(alphabet=st.sampled_from("a*?!#/ \t\x00\x01\x1b\x1c\x7f\u00e9\r\n"), max_size=30))
def test_control_characters_in_an_ignore_file(text: str) -> None:
    files = {"images/a/Dockerfile": "FROM alpine\n", "images/a/.dockerignore": text}
    result = outcome(lambda: load_files(files))
    if isinstance(result, UserError):
        assert result.file == "images/a/.dockerignore", result.render()
