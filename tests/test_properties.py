"""Properties over random inputs: graph invariants on random DAGs, parsers that never crash."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, TypeVar

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from builder.changes import compute_affected
from builder.config import parse_image_config, parse_settings
from builder.dockerfiles import ExpansionError, expand, parse_dockerfile
from builder.errors import BuilderError
from builder.ignore import IgnoreMatcher, IncludeMatcher, parse_ignore_patterns
from builder.model import Settings
from tests.conftest import load_files

# Modest counts: the whole core suite must stay fast on two cores.
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

T = TypeVar("T")


def outcome(call: Callable[[], T]) -> T | BuilderError:
    """The result, or the user error raised instead; any other exception fails the test."""
    try:
        return call()
    except BuilderError as exc:
        if exc.exit_code != 2 or "\n" in str(exc):
            raise  # a user error must be one line with exit code 2
        return exc


KINDS = ("from", "arg", "copy", "mount", "depends_on")


@dataclass(frozen=True)
class Dag:
    names: tuple[str, ...]  # names[i] is image i; parents always have smaller indices
    roots: tuple[str, ...]  # the image root each image lives under
    edges: frozenset[tuple[int, int, str]]  # (parent, child, how the child refers to it)

    def files(self) -> dict[str, str]:
        files = {"builder.yaml": "namespace: acme\n"}
        for child, name in enumerate(self.names):
            args, body, depends = [], ["FROM python:3.12 AS start\n"], []
            stages = ["start"]
            for parent, kind in sorted((p, k) for p, c, k in self.edges if c == child):
                ref = f"acme/{self.names[parent]}"
                if kind in ("from", "arg"):
                    stages.append(f"p{parent}")
                if kind == "from":
                    body.append(f"FROM {ref}:latest AS p{parent}\n")
                elif kind == "arg":
                    args.append(f"ARG P{parent}=docker.io/{ref}\n")
                    body.append(f"FROM ${{P{parent}}} AS p{parent}\n")
                elif kind == "copy":
                    body.append(f"COPY --from={ref} /x /x\n")
                elif kind == "mount":
                    body.append(f"RUN --mount=type=bind,from={ref},target=/m true\n")
                else:
                    depends.append(self.names[parent])
            # The built stage needs every other one: BuildKit skips stages nothing reaches.
            body.append("FROM python:3.12\n")
            body.extend(f"COPY --from={stage} / /\n" for stage in stages)
            body.append("COPY src /src\n")  # the context files the build reads
            directory = f"{self.roots[child]}/{name}"
            files[f"{directory}/Dockerfile"] = "".join(args + body)
            if depends:
                files[f"{directory}/image.yaml"] = f"depends_on: [{', '.join(depends)}]\n"
        return files

    def named_edges(self) -> set[tuple[str, str]]:
        return {(self.names[p], self.names[c]) for p, c, _ in self.edges}


@st.composite
def dags(draw: st.DrawFn) -> Dag:
    size = draw(st.integers(min_value=1, max_value=9))
    names = draw(st.permutations([f"img{i}" for i in range(size)]))
    roots = draw(st.lists(st.sampled_from(("images", "base-images")), min_size=size, max_size=size))
    edges = set()
    for child in range(1, size):
        for parent in draw(st.sets(st.integers(0, child - 1), max_size=3)):
            edges.add((parent, child, draw(st.sampled_from(KINDS))))
    return Dag(names=tuple(names), roots=tuple(roots), edges=frozenset(edges))


@FAST
@given(dags())
def test_graph_edges_are_exactly_the_references(dag: Dag) -> None:
    graph = load_files(dag.files()).graph
    assert set(graph.edges()) == dag.named_edges()
    assert set(graph.images) == set(dag.names)


@FAST
@given(dags(), st.data())
def test_order_and_generations_respect_every_edge(dag: Dag, data: st.DataObject) -> None:
    graph = load_files(dag.files()).graph
    position = {name: i for i, name in enumerate(graph.order)}
    assert sorted(position) == sorted(dag.names)
    subset = data.draw(st.sets(st.sampled_from(dag.names)))
    for names in (set(dag.names), subset):
        waves = graph.generations(names)
        wave_of = {name: i for i, wave in enumerate(waves) for name in wave}
        assert sorted(wave_of) == sorted(names)
        for parent, child in graph.edges():
            assert position[parent] < position[child]
            if parent in wave_of and child in wave_of:
                assert wave_of[parent] < wave_of[child]


@FAST
@given(dags(), st.data())
def test_affected_is_closed_under_dependants(dag: Dag, data: st.DataObject) -> None:
    graph = load_files(dag.files()).graph
    changed = data.draw(st.sets(st.integers(0, len(dag.names) - 1)))
    paths = [f"{dag.roots[i]}/{dag.names[i]}/src/file.txt" for i in changed]
    result = compute_affected(graph, paths)
    affected = set(result.names)
    direct = {dag.names[i] for i in changed}
    assert affected == graph.closure(direct)
    for name in affected:
        assert set(graph.children(name)) <= affected
        image = graph.images[name]
        assert name in direct or affected & set(image.parents)
    order = [image.name for image in result.images]
    for parent, child in graph.edges():
        if child in affected:
            assert parent not in affected or order.index(parent) < order.index(child)


FRAGMENTS = (
    "FROM ",
    "from ",
    "ARG ",
    "COPY --from=",
    "RUN --mount=type=bind,from=",
    " AS ",
    " as ",
    "python:3.12",
    "acme/base",
    "$V",
    "${V}",
    "${V:-x}",
    "${",
    "}",
    "V=",
    "scratch",
    "0",
    "\n",
    "\\\n",
    "# escape=`\n",
    "`",
    "<<EOF\n",
    "EOF\n",
    "'",
    '"',
    "@sha256:",
    " ",
    "\t",
    ":",
    "/",
)
dockerfile_texts = st.one_of(
    st.text(max_size=200),
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=5)), max_size=40).map("".join),
)


@FUZZ
@given(
    dockerfile_texts,
    st.dictionaries(st.sampled_from(("V", "A", "B")), st.text(max_size=10), max_size=2),
    st.one_of(st.none(), st.text(max_size=5)),
)
def test_parse_dockerfile_never_crashes(
    text: str, build_args: dict[str, str], target: str | None
) -> None:
    info = outcome(
        lambda: parse_dockerfile(text, path="Dockerfile", build_args=build_args, target=target)
    )
    if not isinstance(info, BuilderError):
        assert info.stages
        assert all(r.repository for r in info.references)


@FUZZ
@given(st.text(max_size=40), st.dictionaries(st.sampled_from("ABV"), st.text(max_size=5)))
def test_expand_never_crashes(word: str, variables: dict[str, str]) -> None:
    with contextlib.suppress(ExpansionError):
        assert isinstance(expand(word, variables), str)


SETTINGS_KEYS = (
    "registry",
    "namespace",
    "image_roots",
    "platforms",
    "default_branch",
    "build_args",
    "cache",
)
IMAGE_KEYS = (
    "name",
    "dockerfile",
    "context",
    "build_args",
    "platforms",
    "target",
    "watch",
    "depends_on",
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from(("docker.io", "acme", "linux/amd64", "../..", "/abs", "a\\", "!", "..")),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


def yaml_texts(keys: tuple[str, ...]) -> st.SearchStrategy[str]:
    documents = st.dictionaries(st.sampled_from(keys) | st.text(max_size=8), values, max_size=4)
    return st.one_of(st.text(max_size=120), documents.map(yaml.safe_dump))


@FUZZ
@given(yaml_texts(SETTINGS_KEYS))
def test_parse_settings_never_crashes(text: str) -> None:
    result = outcome(lambda: parse_settings(text))
    assert isinstance(result, (Settings, BuilderError))


@FUZZ
@given(yaml_texts(IMAGE_KEYS), st.sampled_from(("images/api", "images/My App", "a/b/c")))
def test_parse_image_config_never_crashes(text: str, directory: str) -> None:
    config = outcome(
        lambda: parse_image_config(text, directory=PurePosixPath(directory), settings=Settings())
    )
    if not isinstance(config, BuilderError):
        for path in (config.context, config.dockerfile):
            assert not path.is_absolute()
            assert ".." not in path.parts


@FUZZ
@given(st.text(max_size=60), st.text(min_size=1, max_size=30))
def test_ignore_matcher_never_crashes(patterns: str, path: str) -> None:
    assert isinstance(IgnoreMatcher.from_text(patterns).excludes(path), bool)


@FAST
@given(
    st.lists(st.sampled_from(("a", "b", "*", "**", "?", "!", "/", ".md", "[ab]")), max_size=8).map(
        "".join
    )
)
def test_a_directory_excluded_takes_its_subtree(pattern: str) -> None:
    matcher = IgnoreMatcher.from_text(pattern)
    if matcher.excludes("a") and not pattern.startswith("!"):
        assert matcher.excludes("a/deep/file")


# -- hostile shapes: aliases, depth, repeated wildcards (tests/test_bad_inputs.py has one of
# each through the CLI; these vary them) --------------------------------------------------

PATTERN_TOKENS = ("a", "b", "\n", "*", "?", "\\*", "\\?", "\\\\", "}")
SHELL_VALUES = st.text(alphabet="ab\n*?\\}", max_size=12)
shell_patterns = st.lists(st.sampled_from(PATTERN_TOKENS), max_size=7).map("".join)


def reference_regex(pattern: str) -> str:
    """BuildKit's convertShellPatternToRegex, in Python's `re`: fine for a dozen characters."""
    out, chars = [], iter(pattern)
    for ch in chars:
        if ch == "*":
            out.append("[^\n]*")
        elif ch == "?":
            out.append("[^\n]")
        else:
            out.append(re.escape(next(chars) if ch == "\\" else ch))
    return "".join(out)


def reference_trim(value: str, pattern: str, *, suffix: bool, longest: bool) -> str:
    regex = reference_regex(pattern)
    if suffix:
        starts = [i for i in range(len(value) + 1) if re.fullmatch(regex, value[i:])]
        return value[: (min if longest else max)(starts)] if starts else value
    ends = [i for i in range(len(value) + 1) if re.fullmatch(regex, value[:i])]
    return value[(max if longest else min)(ends) :] if ends else value


def reference_find(value: str, regex: str, search: int) -> tuple[int, int] | None:
    """Go's leftmost match from `search`, the longest there (every star greedy)."""
    for start in range(search, len(value) + 1):
        for end in range(len(value), start - 1, -1):
            if re.fullmatch(regex, value[start:end]):
                return start, end
    return None


def reference_replace_all(value: str, pattern: str, replacement: str) -> str:
    """Go's ReplaceAllString loop, without `$` in the replacement."""
    regex, out, last, search = reference_regex(pattern), [], 0, 0
    while search <= len(value):
        found = reference_find(value, regex, search)
        if found is None:
            break
        start, end = found
        out.append(value[last:start])
        if end > last or start == 0:
            out.append(replacement)
        last = end
        search = search + 1 if search + 1 > end else end
    return "".join([*out, value[last:]])


@FUZZ
@given(SHELL_VALUES, shell_patterns, st.booleans(), st.booleans())
def test_trims_match_a_regex_reference(
    value: str, pattern: str, suffix: bool, longest: bool
) -> None:
    # A backslash before `}` would escape the escape this test adds: the reference would
    # read another pattern than the lexer does.
    assume("\\}" not in pattern)
    op = ("%" if suffix else "#") * (2 if longest else 1)
    escaped = pattern.replace("}", "\\}")  # inside ${...} the brace must be escaped
    expected = reference_trim(value, pattern.replace("\\}", "}"), suffix=suffix, longest=longest)
    assert expand(f"${{V{op}{escaped}}}", {"V": value}) == expected


@FUZZ
@given(SHELL_VALUES, shell_patterns.filter(lambda p: "\n" not in p))
def test_replacements_match_go_semantics(value: str, pattern: str) -> None:
    assume("\\}" not in pattern)  # see test_trims_match_a_regex_reference
    escaped = pattern.replace("}", "\\}")
    plain = pattern.replace("\\}", "}")
    assert expand(f"${{V//{escaped}/x}}", {"V": value}) == reference_replace_all(value, plain, "x")
    found = reference_find(value, reference_regex(plain), 0)
    once = value if found is None else value[: found[0]] + "x" + value[found[1] :]
    # Through a variable: `${V//x}` would be `//` with the pattern "x".
    assert expand("${V/$P/x}", {"V": value, "P": plain}) == once


@FUZZ
@given(
    st.integers(min_value=0, max_value=120),
    st.lists(st.sampled_from(("*a", "*", "?", "a", "*b")), min_size=1, max_size=300).map("".join),
    st.sampled_from(("%", "%%", "#", "##", "/", "//")),
    st.text(alphabet="ab", max_size=400),
)
def test_deep_words_and_many_wildcards_are_a_value_or_one_error(
    depth: int, pattern: str, op: str, value: str
) -> None:
    tail = "/x" if op.startswith("/") else ""
    word = "${V:-" * depth + f"${{V{op}{pattern}{tail}}}" + "}" * depth
    if depth + 1 > 64:  # the substitution itself is one more level
        with pytest.raises(ExpansionError, match="nested more than 64 levels deep"):
            expand(word, {"V": value})
    else:
        assert isinstance(expand(word, {"V": value}), str)


# -- .dockerignore: the indexed matcher against a plain walk -------------------------------
# IgnoreMatcher finds candidate patterns through indexes and literal prefilters; this is
# fsutil's walk written out plainly (every pattern, in order, for every entry), on the same
# compiled patterns. Engine agreement is tests/integration/test_dockerignore_engine.py's job.

GLOB_ATOMS = ("a", "b", "c", ".py", "*", "**", "?", "[a-c]", "[^a]", "!", "\\", "/", "{2}", "|")
GLOB_PATTERNS = st.lists(st.sampled_from(GLOB_ATOMS), min_size=1, max_size=7).map("".join)
TREE_PATHS = st.lists(
    st.sampled_from(("a", "b", "c", "ab", "x.py", "a.py", "[a]", "é", "a b", "1", "2")),
    min_size=1,
    max_size=5,
).map("/".join)


def plain_evaluate(patterns: list[Any]) -> Callable[[str, list[bool]], tuple[bool, list[bool]]]:
    """patternmatcher's MatchesUsingParentResults written out: every pattern, in order,
    each inheriting its parent directory's match."""
    from builder.ignore import _compile_regexp, _go_text, _Kind

    def matches(pattern: Any, path: str) -> bool:
        if pattern.kind is _Kind.EXACT:
            return bool(path == pattern.literal)
        if pattern.kind is _Kind.PREFIX:
            return bool(path.startswith(pattern.literal))
        if pattern.kind is _Kind.SUFFIX:
            suffix = pattern.literal
            return bool(path.endswith(suffix) or (suffix[:1] == "/" and path == suffix[1:]))
        regexp = _compile_regexp(pattern.regexp)
        return not isinstance(regexp, str) and bool(regexp.search(_go_text(path).encode()))

    def evaluate(path: str, parent: list[bool]) -> tuple[bool, list[bool]]:
        matched, info = False, []
        for pattern, inherited in zip(patterns, parent, strict=True):
            hit = inherited or (pattern.exclusion == matched and matches(pattern, path))
            info.append(hit)
            if hit:
                matched = not pattern.exclusion
        return matched, info

    return evaluate


def plain_walk_kept(text: str, files: list[str]) -> list[str]:
    from builder.ignore import _new, _Pattern

    patterns = [p for p in map(_new, parse_ignore_patterns(text)) if isinstance(p, _Pattern)]
    if not patterns:
        return sorted(files)

    evaluate = plain_evaluate(patterns)

    exceptions = [p.cleaned.removesuffix("/**").removesuffix("/*") for p in patterns if p.exclusion]
    prefix_only = not any(set(e) & set("*[]?^\\") for e in exceptions)
    kept = []
    for file in files:
        parts = file.split("/")
        info, skipped = [False] * len(patterns), False
        for depth in range(1, len(parts)):
            directory = "/".join(parts[:depth])
            matched, info = evaluate(directory, info)
            reached = any((e + "/").startswith(directory + "/") for e in exceptions)
            if matched and prefix_only and not reached:
                skipped = True
                break
        if not skipped and not evaluate(file, info)[0]:
            kept.append(file)
    return sorted(kept)


@FUZZ
@given(st.lists(GLOB_PATTERNS, min_size=1, max_size=8), st.lists(TREE_PATHS, max_size=25))
def test_ignore_matcher_is_the_plain_walk(patterns: list[str], paths: list[str]) -> None:
    text = "\n".join(patterns)
    unique = set(paths)
    directories = {"/".join(p.split("/")[:i]) for p in unique for i in range(1, p.count("/") + 1)}
    files = sorted(unique - directories)  # git cannot hold a file that is also a directory
    assert sorted(IgnoreMatcher.from_text(text).kept(files)) == plain_walk_kept(text, files)


@FAST
@given(st.lists(GLOB_PATTERNS, min_size=20, max_size=120), st.lists(TREE_PATHS, max_size=15))
def test_many_patterns_are_the_plain_walk(patterns: list[str], paths: list[str]) -> None:
    """Enough patterns that the regexp buckets fill and check in chunks."""
    text = "\n".join(f"{i % 7}/{p}" if i % 3 else p for i, p in enumerate(patterns))
    unique = set(paths)
    directories = {"/".join(p.split("/")[:i]) for p in unique for i in range(1, p.count("/") + 1)}
    files = sorted(unique - directories)
    assert sorted(IgnoreMatcher.from_text(text).kept(files)) == plain_walk_kept(text, files)


# -- include patterns (a build's FollowPaths): the indexed matcher against a plain walk -----


def plain_walk_included(patterns: list[str], files: list[str]) -> list[str]:
    """fsutil filter.go's include side written out plainly: every pattern, in order, for
    every entry, each directory handing down its matches, and a directory no pattern
    matches skipped whole when every pattern is plain and none runs through it."""
    from builder.ignore import _new, _Pattern

    compiled = [p for p in map(_new, patterns) if isinstance(p, _Pattern)]

    evaluate = plain_evaluate(compiled)

    plain = [p.cleaned.removesuffix("/**").removesuffix("/*") for p in compiled if not p.exclusion]
    prefix_only = not any(set(e) & set("*[]?^\\") for e in plain)
    included = []
    for file in files:
        parts = file.split("/")
        info, skipped = [False] * len(compiled), False
        for depth in range(1, len(parts)):
            directory = "/".join(parts[:depth])
            matched, info = evaluate(directory, info)
            reached = any((e + "/").startswith(directory + "/") for e in plain)
            if not matched and prefix_only and not reached:
                skipped = True
                break
        if not skipped and evaluate(file, info)[0]:
            included.append(file)
    return sorted(included)


@FUZZ
@given(st.lists(GLOB_PATTERNS, min_size=1, max_size=6), st.lists(TREE_PATHS, max_size=25))
def test_include_matcher_is_the_plain_walk(patterns: list[str], paths: list[str]) -> None:
    unique = set(paths)
    directories = {"/".join(p.split("/")[:i]) for p in unique for i in range(1, p.count("/") + 1)}
    files = sorted(unique - directories)
    expected = plain_walk_included(patterns, files)
    matcher = IncludeMatcher(patterns)
    assert matcher.included(files, ordered=True) == expected
    assert sorted(IncludeMatcher(patterns).included(list(reversed(files)))) == expected
