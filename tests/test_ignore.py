"""`.dockerignore` semantics, pinned case by case against Docker's (not git's) behaviour."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builder.ignore import IgnoreMatcher, ignore_problems, parse_ignore_patterns, pattern_problem


@pytest.mark.parametrize(
    ("dockerignore", "path", "excluded"),
    [
        # `*.md` is anchored at the context root, unlike in .gitignore.
        ("*.md", "README.md", True),
        ("*.md", "docs/guide.md", False),
        ("**/*.md", "README.md", True),
        ("**/*.md", "docs/guide.md", True),
        ("**/*.md", "a/b/c/guide.md", True),
        ("**/*.md", "docs/guide.txt", False),
        # A matching directory takes its whole subtree with it.
        ("docs", "docs/guide.md", True),
        ("docs", "docs/deep/er/x.png", True),
        ("docs", "docsite/x", False),
        ("docs", "src/docs/x", False),
        ("docs/", "docs/guide.md", True),
        ("**/node_modules", "node_modules/x/index.js", True),
        ("**/node_modules", "web/app/node_modules/x/index.js", True),
        ("**/node_modules", "web/node_modules_old/x", False),
        ("*/tmp", "a/tmp/x", True),
        ("*/tmp", "tmp/x", False),
        ("*/tmp", "a/b/tmp/x", False),
        ("a/**/b", "a/b", True),
        ("a/**/b", "a/x/y/b", True),
        ("a/**/b", "a/x/b/c", True),
        ("a/**/b", "b", False),
        ("a/**", "a/x/y", True),
        ("a/**", "ab/x", False),
        ("**", "anything/at/all", True),
        ("*", "a/b", True),
        # `!` re-includes; the last matching pattern wins.
        ("*\n!keep.txt", "keep.txt", False),
        ("*\n!keep.txt", "other.txt", True),
        ("*\n!src", "src/app/main.py", False),
        ("*\n!src", "tests/test_x.py", True),
        ("docs\n!docs/keep.md", "docs/keep.md", False),
        ("docs\n!docs/keep.md", "docs/drop.md", True),
        ("a.txt\n!a.txt", "a.txt", False),
        ("!a.txt\na.txt", "a.txt", True),
        ("**/*.pyc\n!keep/**\nkeep/bad.pyc", "keep/bad.pyc", True),
        ("**/*.pyc\n!keep/**\nkeep/bad.pyc", "keep/good.pyc", False),
        ("! a.txt\n*.txt\n", "a.txt", True),
        # Leading `/`, `./` and `..` segments are cleaned away.
        ("/build", "build/out.o", True),
        ("/build", "src/build/out.o", False),
        ("./a.txt", "a.txt", True),
        ("x/../a.txt", "a.txt", True),
        # `?` and character classes never cross a `/`... except a class that names it.
        ("?.txt", "a.txt", True),
        ("?.txt", "ab.txt", False),
        ("?.txt", "d/a.txt", False),
        ("[ab].txt", "b.txt", True),
        ("[ab].txt", "c.txt", False),
        ("[a-c]x", "bx", True),
        ("[^a].txt", "a.txt", False),
        ("[^a].txt", "b.txt", True),
        ("[!a].txt", "!.txt", True),  # Go's regexp: `!` is no negation
        ("[!a].txt", "b.txt", False),
        ("\\*.md", "*.md", True),
        ("\\*.md", "a.md", False),
        ("a.*", "a.b", True),
        ("a.*", "axb", False),  # `.` is literal
        ("(x)|y", "(x)|y", True),
        # Comments and blank lines.
        ("# a.txt", "a.txt", False),
        ("\n\n   \n", "a.txt", False),
        ("  #x", "#x", True),  # only a `#` in the first column starts a comment
        ("  a.txt  ", "a.txt", True),
        ("\ufeff*.md", "README.md", True),  # a UTF-8 BOM is not part of the pattern
        ("!", "a.txt", False),
        ("", "a.txt", False),
        ("[[:alpha:]].txt", "7.txt", False),  # never a warning, never a crash
    ],
)
def test_excludes(dockerignore: str, path: str, excluded: bool) -> None:
    assert IgnoreMatcher.from_text(dockerignore).excludes(path) is excluded


@pytest.mark.parametrize(
    ("text", "patterns"),
    [
        ("# comment\n\n*.md\n", ("*.md",)),
        ("  !  docs/  \n", ("!docs",)),
        ("/a/b/\n//c\n", ("a/b", "c")),
        ("./x/../y\n", ("y",)),
        ("!\n", ("!",)),
        ("/\n", ("/",)),
    ],
)
def test_parse_ignore_patterns(text: str, patterns: tuple[str, ...]) -> None:
    assert parse_ignore_patterns(text) == patterns


@pytest.mark.parametrize(("text", "truthy"), [("", False), ("# c\n\n", False), ("x", True)])
def test_an_empty_matcher_is_falsy(text: str, truthy: bool) -> None:
    assert bool(IgnoreMatcher.from_text(text)) is truthy


_SEGMENTS = st.sampled_from(["a", "b", "src", "docs", "x.md", "README.md", "t.py", "tests"])
_PATHS = st.lists(_SEGMENTS, min_size=1, max_size=4).map("/".join)
_PATTERNS = st.one_of(
    st.sampled_from(["*", "**", "**/*", "*.md", "!README.md", "**/tests", "!src", "docs/**"]),
    _PATHS,
    _PATHS.map(lambda p: "!" + p),
    _PATHS.map(lambda p: p.replace("a", "*", 1)),
)


@settings(max_examples=300, deadline=None)
@given(patterns=st.lists(_PATTERNS, max_size=6), paths=st.lists(_PATHS, max_size=30))
def test_kept_agrees_with_excludes(patterns: list[str], paths: list[str]) -> None:
    """The fast whole-context filter decides exactly as the per-path rule does."""
    matcher = IgnoreMatcher.from_text("\n".join(patterns))
    ordered = sorted(set(paths))
    assert matcher.kept(ordered) == [p for p in ordered if not matcher.excludes(p)]


def test_kept_looks_only_under_the_whitelist() -> None:
    matcher = IgnoreMatcher.from_text("*\n!images/app/\n**/*.md\n")
    paths = sorted(["images/app/a.py", "images/app/x.md", "images/other/b.py", "shared/c.py"])
    assert matcher.kept(paths) == ["images/app/a.py"]


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("*.md", None),
        ("[a-z]*.py", None),
        ("[^a]", None),
        ("[\\]]", None),
        ("x\\*", None),
        ("!keep", None),
        ("[a-a]", None),
        ("src/[abc", "its character class is malformed or not closed"),
        ("[]a]", "its character class is malformed or not closed"),
        ("[a-]", "its character class is malformed or not closed"),
        ("[-a]", "its character class is malformed or not closed"),
        ("[^]", "its character class is malformed or not closed"),
        ("[z-a]", "Go's regexp refuses it (invalid character class range: z-a)"),
        ("tmp\\", "it ends in an escaping backslash"),
        ("!", "'!' needs a pattern after it"),
    ],
)
def test_pattern_problem_follows_go(pattern: str, problem: str | None) -> None:
    assert pattern_problem(pattern) == problem


def test_ignore_problems_name_the_first_bad_line() -> None:
    text = "\ufeff# [not a pattern\n*.md\n\n  cache[  \n!\n"
    assert ignore_problems(text) == (4, "cache[", "its character class is malformed or not closed")
    assert ignore_problems("*.md\n!README.md\n") is None


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="ab/[]^-\\*?!", max_size=8))
def test_every_pattern_docker_accepts_compiles(raw: str) -> None:
    """Validation and translation agree: no accepted pattern is silently dropped."""
    for pattern in parse_ignore_patterns(raw):
        if pattern_problem(pattern) is None and pattern.removeprefix("!"):
            assert IgnoreMatcher((pattern,)), pattern
