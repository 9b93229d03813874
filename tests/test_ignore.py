"""`.dockerignore` semantics, pinned case by case against Docker's (not git's) behaviour.

The cases come from moby/patternmatcher's patternmatcher_test.go and
ignorefile/ignorefile_test.go, from tonistiigi/fsutil's walk (filter.go), and from the
real engine: tests/integration/test_dockerignore_engine.py builds the same forms and
compares what BuildKit sends. Where the engine and a reading of the sources disagreed,
the engine won and the case says so.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builder.ignore import (
    IgnoreMatcher,
    _compile_regexp,
    _Kind,
    _new,
    _Pattern,
    ignore_problems,
    literal_prefix,
    parse_ignore_patterns,
    pattern_problem,
)


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
        ("(x)|y", "(x)|y", True),  # no wildcard: compared as it is
        # Comments and blank lines.
        ("# a.txt", "a.txt", False),
        ("\n\n   \n", "a.txt", False),
        ("  #x", "#x", True),  # only a `#` in the first column starts a comment
        ("  a.txt  ", "a.txt", True),
        ("\ufeff*.md", "README.md", True),  # a UTF-8 BOM is not part of the pattern
        ("!", "a.txt", False),  # Docker fails the build (ignore_problems says so)
        ("", "a.txt", False),
        ("[[:alpha:]].txt", "7.txt", False),  # never a warning, never a crash
        ("[[:alpha:]].txt", "x.txt", True),
        # -- patternmatcher_test.go, TestMatches (one pattern, one path) --------------
        ("**", "file", True),
        ("**/", "file", True),
        ("**/", "dir/file", True),
        ("**/**", "dir/file", True),
        ("dir/**", "dir/file", True),
        ("dir/**", "dir/dir2/file", True),
        ("**/dir", "dir", True),
        ("**/dir", "dir/file", True),
        ("**/dir2/*", "dir/dir2/file", True),
        ("**/dir2/**", "dir/dir2/dir3/file", True),
        ("**file", "file", True),
        ("**file", "dir/file", True),
        ("**/file", "dir/file", True),
        ("**file", "dir/dir/file", True),
        ("**/file", "dir/dir/file", True),
        ("**/file*", "dir/dir/file", True),
        ("**/file*", "dir/dir/file.txt", True),
        ("**/file*txt", "dir/dir/file.txt", True),
        ("**/file*.txt", "dir/dir/file.txt", True),
        ("**/file*.txt*", "dir/dir/file.txt", True),
        ("**/**/*.txt", "dir/dir/file.txt", True),
        ("**/**/*.txt2", "dir/dir/file.txt", False),
        ("**/*.txt", "file.txt", True),
        ("**/**/*.txt", "file.txt", True),
        ("a**/*.txt", "a/file.txt", True),
        ("a**/*.txt", "a/dir/file.txt", True),
        ("a**/*.txt", "a/dir/dir/file.txt", True),
        ("a/*.txt", "a/dir/file.txt", False),
        ("a/*.txt", "a/file.txt", True),
        ("a/*.txt**", "a/file.txt", True),
        ("a[b-d]e", "ae", False),
        ("a[b-d]e", "ace", True),
        ("a[b-d]e", "aae", False),
        ("a[^b-d]e", "aze", True),
        (".*", ".foo", True),
        (".*", "foo", False),
        ("abc.def", "abcdef", False),
        ("abc.def", "abc.def", True),
        ("abc.def", "abcZdef", False),
        ("abc?def", "abcZdef", True),
        ("abc?def", "abcdef", False),
        ("a\\\\", "a\\", True),
        ("**/foo/bar", "foo/bar", True),
        ("**/foo/bar", "dir/foo/bar", True),
        ("**/foo/bar", "dir/dir2/foo/bar", True),
        ("abc/**", "abc", False),
        ("abc/**", "abc/def", True),
        ("abc/**", "abc/def/ghi", True),
        ("**/.foo", ".foo", True),
        ("**/.foo", "bar.foo", False),
        ("a(b)c/def", "a(b)c/def", True),
        ("a(b)c/def", "a(b)c/xyz", False),
        ("a.|)$(}+{bc", "a.|)$(}+{bc", True),
        ("dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", True),
        ("a\\*b", "a*b", True),
        # multiPatternTests
        ("**\n!util/docker/web", "util/docker/web/foo", False),
        ("**\n!util/docker/web\nutil/docker/web/foo", "util/docker/web/foo", True),
        ("**\n!dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", False),
        # TestMatch (filepath.Match's own table, through the matcher)
        ("a*", "ab/c", True),  # the directory `ab` matches
        ("a*/b", "abc/b", True),
        ("a*/b", "a/c/b", False),
        ("a*b*c*d*e*/f", "axbxcxdxe/f", True),
        ("a*b*c*d*e*/f", "axbxcxdxexxx/f", True),
        ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", False),
        ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", False),
        ("a*b?c*x", "abxbbxdbxebxczzx", True),
        ("a*b?c*x", "abxbbxdbxebxczzy", False),
        ("ab[^e-g]", "abc", True),
        ("a?b", "a☺b", True),
        ("a[^a]b", "a☺b", True),
        ("a???b", "a☺b", False),
        ("[a-ζ]*", "α", True),
        ("*[a-ζ]", "A", False),
        ("a?b", "a/b", False),
        ("a*b", "a/b", False),
        ("[\\]a]", "]", True),
        ("[x\\-]", "-", True),
        ("[\\-x]", "a", False),
        ("*x", "xxx", True),
        # TestPatternMatchesFolderExclusions and friends
        ("docs\n!docs/README.md", "docs/README.md", False),
        ("docs/\n!docs/README.md", "docs/README.md", False),
        ("docs/*\n!docs/README.md", "docs/README.md", False),
        ("!fileutils.go\n*.go", "fileutils.go", True),
        ("*.go\n!fileutils.go", "fileutils.go", False),
        # -- the bugs of the regex translation this module replaced ------------------
        # `**` first and no other wildcard: a plain suffix match, so `**.py` is any
        # path ending in `.py`, at any depth (the old code read it as `.*\.py` at the
        # root only... and then `!**.py` re-included nothing below it).
        ("*\n!**.py", "app.py", False),
        ("*\n!**.py", "src/app.py", False),
        ("*\n!**.py", "src/app.txt", True),
        ("**.log", "build.log", True),
        ("**.log", "logs/deep/b.log", True),
        ("**.log", "xlog", False),
        ("**node_modules", "web/xnode_modules/a", True),  # a suffix, no `/` needed
        # `\d` is copied into the Go regexp: a digit class.
        ("a\\d", "a1", True),
        ("a\\d", "ad", False),
        # The engine, against patternmatcher's source: its escape list says `.+()|{}$`,
        # but its bitmap keeps only characters below 64, so `|`, `{` and `}` reach the
        # regexp raw. `*.md|*.py` is an alternation (anything ending in .py), `*a{2}` a
        # repeat; without a wildcard the pattern is still compared as it is.
        ("*.md|*.py", "src/app.py", True),
        ("*.md|*.py", "README.md/x", True),  # `^[^/]*\.md` has no end anchor
        ("*.md|*.py", "src/README.md", False),
        ("(**{|", "anything", True),  # `|$` matches every path
        ("*a{2}", "xaa", True),
        ("*a{2}", "xa", False),
        ("a{2}", "aa", False),
        # `^` stays an anchor: in the middle it never matches, first it is harmless.
        ("*^x", "a^x", False),
        ("^*", "anything", True),
        # A trailing backslash is copied as one, before the `$`: `\$`, a literal dollar
        # with no end anchor. Valid for the engine's filepath.Match (see below).
        ("x*\\", "xa$", True),
        ("x*\\", "x$/deeper", True),
        ("x*\\", "xa", False),
        ("a\\Qb*", "ab[^/]*$", True),  # \Q quotes the rest, `$` included
        ("a\\Qb*", "abc", False),
        # A regexp's `.` stops at a newline; `?` and `*` (`[^/]`) do not.
        ("x**/y", "xa/y", True),
        ("x**/y", "x\n/y", False),
        ("line?break", "line\nbreak", True),
        # Bytes that are not UTF-8 (os.fsdecode's surrogates) read as U+FFFD, one each.
        ("caf?.bin", "caf\udce9.bin", True),
        ("caf??.bin", "caf\udce9.bin", False),
        ("*.bin", "\udcff\udcfe.bin", True),
        ("caf\udce9.bin", "caf\udce9.bin", True),  # an exact match compares bytes
        # A BOM is dropped from the first line only; Go's text/scanner then drops one that
        # starts a pattern from its regexp, not from an exact or `**` suffix match (whose
        # literal Go slices by bytes: the BOM's last byte stays).
        ("x\n\ufeff*.py", "app.py", True),
        ("x\n\ufeff**.py", "app.py", False),
        ("x\n\ufeffbom.py", "\ufeffbom.py", True),
        ("x\n\ufeffbom.py", "bom.py", False),
        # Go's TrimSpace and line splitting, not Python's strip and splitlines.
        ("\xa0README.md\xa0", "README.md", True),
        ("\x85README.md", "README.md", True),
        ("\x1cREADME.md", "README.md", False),
        ("logs\x0cbuild.log", "logs/a.log", False),
        ("logs\x0cbuild.log", "build.log", False),
        ("logs\u2028build.log", "build.log", False),
        ("*.md\r\n!README.md\r\n", "README.md", False),
        ("*.md\r\n!README.md\r\n", "CHANGELOG.md", True),
        ("docs/ /", "docs/x", True),  # ReadAll cleans to `docs/ `, New trims it: `docs`
        ("/ /README.md", "README.md", False),  # New: `/README.md`, never a relative path
        # -- fsutil's walk: each directory hands its matches down ---------------------
        # A pattern a directory matched holds for everything under it without a test, and
        # a pattern tried on a path is not tried on its parents again. After `docs`,
        # `!docs/guide.md` re-includes the file; the second `docs` is tried on
        # `docs/guide.md` only (not its parent, as MatchesOrParentMatches would): sent.
        ("docs\n!docs/guide.md\ndocs", "docs/guide.md", False),
        # A matched directory is skipped when no `!` pattern's literal path runs through it,
        # even though `!docs` would re-include the file by its parent.
        ("docs/api\n!docs", "docs/api/index.md", True),
        ("docs/api\n!docs", "docs/guide.md", False),
        # ...but a `!` with a wildcard anywhere makes the walk look inside every directory.
        ("docs\n!docs/*/index.md", "docs/api/index.md", False),
        ("docs\n!docs/*/index.md", "docs/api/other.md", True),
        ("src\n!**/helpers.py", "src/util/helpers.py", False),
        ("node_modules\n!node_modules/left-pad/**", "node_modules/left-pad/index.js", False),
        ("node_modules\n!node_modules/left-pad/**", "node_modules/.bin/tool", True),
        # Stacked `**` and many stars: RE2 answers in linear time.
        ("**/**/**/**/**/**/**/**/**/**/**/**/x", "a/b/c/d/e/f/g/h/i/j/k/l/m/n/y", False),
        ("*a*a*a*a*a*a*a*a*a*a*b", "a" * 200, False),
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
        # ignorefile_test.go, TestReadAll
        (
            (
                "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n"
                "! /inverted/abs/path\n!\n! "
            ),
            ("test1", "test2", "a/file/here", "lastfile", "!inverted/abs/path", "!", "!"),
        ),
        # Go's filepath.Clean, not posixpath.normpath (which keeps a leading `//`).
        ("//a\n", ("a",)),
        ("a/../../b\n", ("../b",)),
        ("/..\n", ("/",)),
        # bufio splits on \n only and drops one \r before it; nothing else breaks a line.
        ("a\r\nb\r\n", ("a", "b")),
        ("c\r\r\n", ("c",)),  # `c\r`, then trimmed
        ("a\x0cb\nc\x0bd\n", ("a\x0cb", "c\x0bd")),
        ("p\u2028q\nr\x85s\nt\x1cu\n", ("p\u2028q", "r\x85s", "t\x1cu")),
        # Go's TrimSpace: NBSP, NEL and the Unicode spaces go; \x1c-\x1f stay.
        ("\xa0a\xa0\n\x85b\u3000\n", ("a", "b")),
        ("\x1ca\x1f\n", ("\x1ca\x1f",)),
        # A BOM starts only the first line; a comment is a `#` in the first column.
        ("\ufeff# c\n\ufeffx\n", ("\ufeffx",)),
        ("  # not a comment\n", ("# not a comment",)),
    ],
)
def test_parse_ignore_patterns(text: str, patterns: tuple[str, ...]) -> None:
    assert parse_ignore_patterns(text) == patterns


@pytest.mark.parametrize(("text", "truthy"), [("", False), ("# c\n\n", False), ("x", True)])
def test_an_empty_matcher_is_falsy(text: str, truthy: bool) -> None:
    assert bool(IgnoreMatcher.from_text(text)) is truthy


@pytest.mark.parametrize(
    ("pattern", "kind", "regexp"),
    [
        # patternmatcher_test.go, TestCompile
        ("*", _Kind.REGEXP, "^[^/]*$"),
        ("file*", _Kind.REGEXP, "^file[^/]*$"),
        ("*file", _Kind.REGEXP, "^[^/]*file$"),
        ("a*/b", _Kind.REGEXP, "^a[^/]*/b$"),
        ("**", _Kind.SUFFIX, ""),
        ("**/**", _Kind.REGEXP, "^(.*/)?.*$"),
        ("dir/**", _Kind.PREFIX, ""),
        ("**/dir", _Kind.SUFFIX, ""),
        ("**/dir2/*", _Kind.REGEXP, "^(.*/)?dir2/[^/]*$"),
        ("**/dir2/**", _Kind.REGEXP, "^(.*/)?dir2/.*$"),
        ("**file", _Kind.SUFFIX, ""),
        ("**/file*txt", _Kind.REGEXP, "^(.*/)?file[^/]*txt$"),
        ("**/**/*.txt", _Kind.REGEXP, "^(.*/)?(.*/)?[^/]*\\.txt$"),
        ("a[b-d]e", _Kind.REGEXP, "^a[b-d]e$"),
        (".*", _Kind.REGEXP, "^\\.[^/]*$"),
        ("abc.def", _Kind.EXACT, ""),
        ("abc?def", _Kind.REGEXP, "^abc[^/]def$"),
        ("**/foo/bar", _Kind.SUFFIX, ""),
        ("a(b)c/def", _Kind.EXACT, ""),
        ("a.|)$(}+{bc", _Kind.EXACT, ""),
        # and the forms above
        ("foo**", _Kind.PREFIX, ""),
        ("**.py", _Kind.SUFFIX, ""),
        ("**\\.py", _Kind.REGEXP, "^(.*/)?\\.py$"),  # an escape makes it a regexp
        ("**[a]", _Kind.REGEXP, "^(.*/)?[a]$"),
        ("a\\d", _Kind.REGEXP, "^a\\d$"),
        ("*.md|*.py", _Kind.REGEXP, "^[^/]*\\.md|[^/]*\\.py$"),
        ("[*]", _Kind.REGEXP, "^[[^/]*]$"),  # `*` inside a class still becomes `[^/]*`
        ("x*\\", _Kind.REGEXP, "^x[^/]*\\$"),
        ("\ufeff*.py", _Kind.REGEXP, "^[^/]*\\.py$"),
        ("caf\udce9*", _Kind.REGEXP, "^caf\ufffd[^/]*$"),
    ],
)
def test_compile_follows_patternmatcher(pattern: str, kind: _Kind, regexp: str) -> None:
    compiled = _new(pattern)
    assert isinstance(compiled, _Pattern)
    assert (compiled.kind, compiled.regexp) == (kind, regexp)


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
    """The whole-context filter decides exactly as the per-path rule does."""
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
        ("[a-b-c]", "its character class is malformed or not closed"),
        ("[", "its character class is malformed or not closed"),
        ("[^bc", "its character class is malformed or not closed"),
        ("a[", "its character class is malformed or not closed"),
        ("tmp\\", "it ends in an escaping backslash"),
        ("\\", "it ends in an escaping backslash"),
        ("!", "'!' needs a pattern after it"),
        ("!/", "'!' needs a pattern after it"),  # New cleans `!/` to `!`
        # filepath.Match passes these; the Go regexp does not compile.
        ("[z-a]", "Go's regexp refuses it (invalid character class range: z-a)"),
        ("*\\y", "Go's regexp refuses it (invalid escape sequence: \\y)"),
        ("*{1001}", "Go's regexp refuses it (bad repetition operator: *{1001})"),
        ("*{2}", "Go's regexp refuses it (bad repetition operator: *{2})"),
        ("*[[:foo:]]", "Go's regexp refuses it (invalid character class range: [:foo:])"),
        ("a\\C", "Go's regexp refuses it (invalid escape sequence: \\C)"),  # RE2 takes it
        # The engine, against current Go: the buildx it runs does not check a pattern past
        # the first chunk that fails to match "." (newer Go does), so `a*[` passes New and
        # fails as a regexp, and `x*\` is a valid pattern (see test_excludes).
        ("a*[", "Go's regexp refuses it (missing ]: [$)"),
        ("x*\\", None),
        ("a\\Qb*", None),
        ("*\\x{D800}", None),
        ("a\\Cb", "Go's regexp refuses it (invalid escape sequence: \\C)"),
        ("*\\Qa\\Cb", None),  # quoted: only text
        ("?" * 65535, None),  # RE2's default memory budget would refuse it; Go does not
    ],
)
def test_pattern_problem_follows_go(pattern: str, problem: str | None) -> None:
    assert pattern_problem(pattern) == problem


def test_ignore_problems_name_the_first_bad_line() -> None:
    text = "\ufeff# [not a pattern\n*.md\n\n  cache[  \n!\n"
    assert ignore_problems(text) == (4, "cache[", "its character class is malformed or not closed")
    assert ignore_problems("*.md\n!README.md\n") is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        # bufio.Scanner's 64 KiB token limit fails the read, comments and the BOM included.
        ("a" * 65535 + "\n", None),
        ("a" * 65535, None),
        (
            "*.md\n" + "a" * 65536 + "\n",
            (2, "a" * 40 + "...", "it is longer than Docker reads (64 KiB)"),
        ),
        (
            "# " + "a" * 65534,
            (1, "# " + "a" * 38 + "...", "it is longer than Docker reads (64 KiB)"),
        ),
        ("\ufeff" + "a" * 65532, None),
        (
            "\ufeff" + "a" * 65533,
            (1, "\ufeff" + "a" * 39 + "...", "it is longer than Docker reads (64 KiB)"),
        ),
        ("é" * 32768, (1, "é" * 40 + "...", "it is longer than Docker reads (64 KiB)")),
        # The engine: a control character inside a pattern fails the transfer (a gRPC
        # header takes printable ASCII), unless a pattern has a character beyond ASCII,
        # when buildkit URL-encodes them all.
        (
            "ok\nlogs\x0cbuild.log\n",
            (
                2,
                "logs\x0cbuild.log",
                "it holds a control character, which Docker cannot pass on to BuildKit",
            ),
        ),
        (
            "tab\tname\n",
            (
                1,
                "tab\tname",
                "it holds a control character, which Docker cannot pass on to BuildKit",
            ),
        ),
        ("tab\tname\nnaïve\n", None),
        ("\ttab\t\n", None),  # trimmed away
        # A read problem comes first, then New's, then a regexp's.
        ("[z-a]\n[\n", (2, "[", "its character class is malformed or not closed")),
        ("[\n" + "a" * 70000, (2, "a" * 40 + "...", "it is longer than Docker reads (64 KiB)")),
    ],
)
def test_ignore_problems_follow_docker_order(text: str, problem: tuple[int, str, str] | None):
    assert ignore_problems(text) == problem


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet="ab/[]^-\\*?!{}|.+()$ é", max_size=10))
def test_every_pattern_docker_accepts_compiles(raw: str) -> None:
    """Validation and translation agree: an accepted pattern's regexp compiles."""
    for pattern in parse_ignore_patterns(raw):
        if pattern_problem(pattern) is None and pattern.removeprefix("!"):
            compiled = _new(pattern)
            assert isinstance(compiled, _Pattern), pattern
            if compiled.kind is _Kind.REGEXP:
                assert not isinstance(_compile_regexp(compiled.regexp), str)


@pytest.mark.parametrize(
    ("pattern", "prefix"), [("src/*.py", "src/"), ("a\\*", "a"), ("plain", "plain"), ("*", "")]
)
def test_literal_prefix(pattern: str, prefix: str) -> None:
    assert literal_prefix(pattern) == prefix
