"""What a build reads from its context: the reads a Dockerfile makes (as BuildKit's
dockerfile frontend collects them), the include side of fsutil's walk, and the fallbacks
that count the whole context."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from builder.dockerfiles import ContextRead, parse_dockerfile
from builder.ignore import IgnoreMatcher, IncludeMatcher
from builder.inputs import (
    Inputs,
    parse_gitmodules,
    read_ways,
    with_links,
    with_submodules,
)
from tests.conftest import load_files

Read = tuple[int, str] | tuple[int, str, str]  # (line, path) or (line, ".", part of why)


def reads(
    text: str,
    *,
    build_args: dict[str, str] | None = None,
    target: str | None = None,
    platforms: Sequence[str] = ("linux/amd64",),
) -> list[Read]:
    info = parse_dockerfile(
        text, path="Dockerfile", build_args=build_args, target=target, platforms=platforms
    )
    return [(r.line, r.path) if r.why is None else (r.line, r.path, r.why) for r in info.reads]


def check(found: list[Read], expected: list[Read]) -> None:
    """A fallback is expected as (line, ".", a part of its why)."""
    assert len(found) == len(expected), found
    for got, want in zip(found, expected, strict=True):
        assert got[:2] == want[:2], found
        if len(want) == 3:
            assert len(got) == 3, found
            assert want[2] in got[2], found
        else:
            assert len(got) == 2, found


# -- which instructions read which paths -----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("FROM alpine\nCOPY app.py /app/\n", [(2, "app.py")], id="a-file"),
        pytest.param("FROM alpine\nCOPY src/ /app/src\n", [(2, "src")], id="a-folder"),
        pytest.param("FROM alpine\nCOPY *.txt /app/\n", [(2, "*.txt")], id="a-glob"),
        pytest.param(
            "FROM alpine\nCOPY a b/c /dst/\n", [(2, "a"), (2, "b/c")], id="several-sources"
        ),
        pytest.param("FROM alpine\nCOPY . /app\n", [(2, ".")], id="dot-is-everything"),
        pytest.param("FROM alpine\nCOPY ./ /app\n", [(2, ".")], id="dot-slash"),
        pytest.param(
            "FROM alpine\nCOPY ../up ./x/../y /a/\n", [(2, "up"), (2, "y")], id="cleaned-in-root"
        ),
        pytest.param(
            'FROM alpine\nCOPY ["a b", "c", "/dst/"]\n', [(2, "a b"), (2, "c")], id="json"
        ),
        pytest.param("FROM alpine\nCOPY \"a\"'b' /dst/\n", [(2, "ab")], id="quotes-removed"),
        pytest.param("FROM alpine\ncopy x /x\n", [(2, "x")], id="lowercase-instruction"),
        pytest.param(
            "FROM alpine\nCOPY --chown=1:1 --chmod=644 --link x /x\n", [(2, "x")], id="flags"
        ),
        pytest.param("FROM alpine\nADD x.tar.gz /opt/\n", [(2, "x.tar.gz")], id="add-a-file"),
        pytest.param("FROM alpine\nADD https://example.com/f /f\n", [], id="add-a-url"),
        pytest.param(
            # isHTTPSource is case-sensitive: BuildKit reads this from the context (engine-checked).
            "FROM alpine\nADD HTTP://host/f /f\n",
            [(2, "HTTP:/host/f")],
            id="add-an-uppercase-scheme-is-a-path",
        ),
        pytest.param(
            "FROM alpine\nADD https://github.com/a/b.git /b\n", [(2, ".", "git")], id="add-git-url"
        ),
        pytest.param(
            "FROM alpine\nADD git@github.com:a/b.git /b\n", [(2, ".", "git")], id="add-git-scp"
        ),
        pytest.param(
            "FROM alpine\nCOPY vendor/lib.git /b\n", [(2, ".", "git")], id="looks-like-git"
        ),
        pytest.param("FROM alpine\nCOPY ./lib.git /b\n", [(2, "lib.git")], id="dot-slash-is-local"),
        pytest.param("FROM alpine\nCOPY <<EOF /x\nhello\nEOF\n", [], id="heredoc"),
        pytest.param(
            "FROM alpine\nCOPY <<-EOT real.txt /x/\n\tdoc\n\tEOT\n",
            [(2, "real.txt")],
            id="heredoc+file",
        ),
        pytest.param("FROM alpine\nCOPY --from=busybox /bin/sh /sh\n", [], id="from-an-image"),
        pytest.param("FROM alpine AS a\nFROM alpine\nCOPY --from=a /x /x\n", [], id="from-a-stage"),
        pytest.param("FROM alpine\nCOPY --from= x /x\n", [(2, "x")], id="empty-from-is-context"),
        pytest.param(
            "FROM alpine\nCOPY --parents a/./b /x\n", [(2, ".", "--parents")], id="parents"
        ),
        pytest.param(
            'FROM alpine\nCOPY "unclosed /x\n', [(2, ".", "cannot expand")], id="bad-quote"
        ),
        pytest.param("FROM alpine\nCOPY !x /y\n", [(2, ".", "does not model")], id="bang"),
        pytest.param("FROM alpine\nRUN echo hi\nENV A=b\n", [], id="reads-nothing"),
        pytest.param("FROM scratch\n", [], id="scratch-nothing"),
    ],
)
def test_copy_and_add(text: str, expected: list[Read]) -> None:
    check(reads(text), expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "FROM alpine\nRUN --mount=type=bind,source=req.txt,target=/r pip install -r /r\n",
            [(2, "req.txt")],
            id="bind-source",
        ),
        pytest.param(
            "FROM alpine\nRUN --mount=src=data,dst=/d ls /d\n", [(2, "data")], id="default-type"
        ),
        pytest.param(
            "FROM alpine\nRUN --mount=type=bind,target=/ctx ls\n", [(2, ".")], id="no-source"
        ),
        pytest.param(
            "FROM alpine\nRUN --mount=TYPE=BIND,Source=x,target=/x ls\n", [(2, "x")], id="case"
        ),
        pytest.param("FROM alpine\nRUN --mount=type=cache,target=/c ls\n", [], id="cache"),
        pytest.param(
            "FROM alpine\nRUN --mount=type=cache,source=x,target=/c ls\n", [], id="cache-source"
        ),
        pytest.param("FROM alpine\nRUN --mount=type=tmpfs,target=/t ls\n", [], id="tmpfs"),
        pytest.param("FROM alpine\nRUN --mount=type=secret,id=s ls\n", [], id="secret"),
        pytest.param("FROM alpine\nRUN --mount=type=ssh ls\n", [], id="ssh"),
        pytest.param(
            "FROM alpine\nRUN --mount=type=bind,from=busybox,source=/bin,target=/b ls\n",
            [],
            id="from-an-image",
        ),
        pytest.param(
            "FROM alpine\nARG T=bind\nRUN --mount=type=$T,source=s,target=/s ls\n",
            [(3, "s")],
            id="type-by-arg",
        ),
        pytest.param(
            "FROM alpine\nARG T\nRUN --mount=type=$T,source=s,target=/s ls\n",
            [(3, ".", "ARG T has no value")],
            id="type-unknown",
        ),
        pytest.param(
            "FROM alpine\nRUN --mount=type=bind,source=a,target=/a "
            "--mount=type=bind,source=b,target=/b ls\n",
            [(2, "a"), (2, "b")],
            id="two-mounts",
        ),
    ],
)
def test_run_mounts(text: str, expected: list[Read]) -> None:
    check(reads(text), expected)


@pytest.mark.parametrize(
    ("text", "build_args", "expected"),
    [
        pytest.param("FROM alpine\nARG D=src\nCOPY $D/ /x\n", {}, [(3, "src")], id="arg-default"),
        pytest.param(
            "FROM alpine\nARG D=src\nCOPY ${D}/ /x\n", {"D": "lib"}, [(3, "lib")], id="build-arg"
        ),
        pytest.param(
            "FROM alpine\nARG D\nCOPY $D/ /x\n", {"D": "lib"}, [(3, "lib")], id="build-arg-fills"
        ),
        pytest.param(
            "FROM alpine\nARG D\nCOPY $D/ /x\n", {}, [(3, ".", "ARG D has no value")], id="no-value"
        ),
        pytest.param(
            "ARG D=glob\nFROM alpine\nARG D\nCOPY $D/ /x\n", {}, [(4, "glob")], id="global-default"
        ),
        pytest.param(
            "ARG D\nFROM alpine\nARG D\nCOPY $D/ /x\n",
            {},
            [(4, ".", "ARG D has no value")],
            id="global-without-value",
        ),
        pytest.param(
            "ARG D=glob\nFROM alpine\nCOPY $D/ /x\n",
            {},
            [(3, ".", "D is not set by this Dockerfile")],
            id="global-not-redeclared",
        ),
        pytest.param(
            "FROM alpine\nCOPY $HOME/x /x\n",
            {},
            [(2, ".", "base image may set it")],
            id="base-image-env",
        ),
        pytest.param(
            "FROM alpine\nCOPY ${NOPE:-src} /x\n",
            {},
            [(2, ".", "NOPE is not set")],
            id="default-of-unknown",
        ),
        pytest.param("FROM alpine\nENV D=lib\nCOPY $D /x\n", {}, [(3, "lib")], id="env"),
        pytest.param(
            "FROM alpine\nENV D lib\nCOPY $D /x\n", {}, [(3, "lib")], id="env-legacy-form"
        ),
        pytest.param(
            "FROM alpine\nENV A=1\nENV A=2 B=$A\nCOPY $B /x\n", {}, [(4, "1")], id="env-pairs"
        ),
        pytest.param(
            "FROM alpine\nENV B=$HOME/x\nCOPY $B /x\n",
            {},
            [(3, ".", "HOME is not set")],
            id="env-from-unknown",
        ),
        pytest.param(
            "FROM alpine\nARG D=a\nENV D=b\nCOPY $D /x\n", {"D": "c"}, [(4, "b")], id="env-wins"
        ),
        pytest.param(
            "FROM alpine AS base\nENV D=lib\nFROM base\nCOPY $D /x\n",
            {},
            [(4, "lib")],
            id="inherited-from-stage",
        ),
        pytest.param(
            "FROM alpine AS base\nARG D=lib\nFROM base\nCOPY $D /x\n",
            {},
            [(4, "lib")],
            id="stage-arg-inherited",
        ),
        pytest.param(
            # ArgCommand.Expand runs before any is set: B's $A is not this instruction's A
            # (engine-checked: BuildKit read `x`, not `srcx`).
            "FROM scratch\nARG A=src B=${A}x\nCOPY $B /x\n",
            {},
            [(3, ".", "A is not set")],
            id="stage-arg-pairs",
        ),
        pytest.param(
            "FROM scratch\nARG A=src\nARG B=${A}x\nCOPY $B /x\n", {}, [(4, "srcx")], id="stage-args"
        ),
        pytest.param(
            "ARG A=src B=${A}x\nFROM scratch\nARG B\nCOPY $B /x\n",
            {},
            [(4, "srcx")],
            id="global-arg-pairs-see-each-other",
        ),
        pytest.param(
            "FROM alpine AS base\nENV D=lib\nFROM alpine\nCOPY $D /x\n",
            {},
            [(4, ".", "D is not set")],
            id="not-from-another-image",
        ),
        pytest.param(
            "FROM alpine\nARG $K=v\nCOPY $D /x\n", {}, [(3, ".", "by expansion")], id="arg-name"
        ),
        pytest.param(
            "FROM alpine\nARG $K=v\nCOPY plain /x\n", {}, [(3, "plain")], id="no-variable-left"
        ),
        pytest.param(
            "FROM alpine\nARG BUILDARCH\nCOPY bin/$BUILDARCH /x\n",
            {},
            [(3, ".", "machine that builds")],
            id="build-platform",
        ),
        pytest.param(
            "FROM alpine\nARG SOURCE_DATE_EPOCH=1\nCOPY $SOURCE_DATE_EPOCH /x\n",
            {},
            [(3, ".", "SOURCE_DATE_EPOCH")],
            id="epoch",
        ),
        pytest.param(
            "# escape=`\nFROM alpine\nARG D=a\nCOPY `$D $D /x\n",
            {},
            [(4, "$D"), (4, "a")],
            id="esc",
        ),
    ],
)
def test_variables(text: str, build_args: dict[str, str], expected: list[Read]) -> None:
    check(reads(text, build_args=build_args), expected)


@pytest.mark.parametrize(
    ("text", "build_args", "expected"),
    [
        pytest.param(
            "# syntax=docker/dockerfile:1.7\nFROM scratch\nCOPY a /a\n",
            {},
            [(3, "a")],
            id="buildkits-own-frontend",
        ),
        pytest.param(
            "# syntax=docker.io/docker/dockerfile-upstream:master@sha256:" + "a" * 64 + "\n"
            "FROM scratch\nCOPY a /a\n",
            {},
            [(3, "a")],
            id="buildkits-own-frontend-pinned",
        ),
        pytest.param(
            "# syntax = example.com/acme/frontend:2\nFROM scratch\nCOPY a /a\n",
            {},
            [(1, ".", "frontend builder does not model"), (3, "a")],
            id="another-frontend",
        ),
        pytest.param(
            "FROM scratch\nCOPY a /a\n",
            {"BUILDKIT_SYNTAX": "acme/frontend"},
            [(0, ".", "frontend builder does not model"), (2, "a")],
            id="another-frontend-by-build-arg",
        ),
        pytest.param(
            "# a comment ends the directives\n# syntax=acme/frontend\nFROM scratch\nCOPY a /a\n",
            {},
            [(4, "a")],
            id="not-a-directive",
        ),
    ],
)
def test_a_frontend_builder_does_not_model_counts_everything(
    text: str, build_args: dict[str, str], expected: list[Read]
) -> None:
    check(reads(text, build_args=build_args), expected)


def test_a_platform_arg_reads_per_platform() -> None:
    text = "FROM alpine\nARG TARGETARCH\nCOPY bin/${TARGETARCH}/app /app\n"
    info = parse_dockerfile(text, path="D", platforms=("linux/amd64", "linux/arm64"))
    assert [r.path for r in info.reads] == ["bin/amd64/app", "bin/arm64/app"]
    assert info.platform_reads
    one = parse_dockerfile(text, path="D", platforms=("linux/arm64",))
    assert [r.path for r in one.reads] == ["bin/arm64/app"]
    assert not one.platform_reads
    same = parse_dockerfile("FROM alpine\nCOPY x /\n", path="D", platforms=("linux/arm64",))
    assert not same.platform_reads


@pytest.mark.parametrize(
    ("text", "target", "expected"),
    [
        pytest.param(
            "FROM alpine AS test\nCOPY tests/ /t\nFROM alpine\nCOPY src/ /s\n",
            None,
            [(4, "src")],
            id="an-unreached-stage-reads-nothing",
        ),
        pytest.param(
            "FROM alpine AS test\nCOPY tests/ /t\nFROM alpine\nCOPY src/ /s\n",
            "test",
            [(2, "tests")],
            id="the-target-decides",
        ),
        pytest.param(
            "FROM alpine AS deps\nCOPY req.txt /\nFROM alpine\nCOPY --from=deps /req.txt /\n",
            None,
            [(2, "req.txt")],
            id="reached-by-copy-from",
        ),
        pytest.param(
            "FROM alpine AS deps\nCOPY req.txt /\n"
            "FROM alpine\nRUN --mount=from=deps,target=/d ls\n",
            None,
            [(2, "req.txt")],
            id="reached-by-mount-from",
        ),
        pytest.param(
            "FROM alpine AS base\nCOPY a /\nFROM base\nCOPY b /\n",
            None,
            [(2, "a"), (4, "b")],
            id="reached-by-from",
        ),
    ],
)
def test_only_the_stages_the_build_runs(
    text: str, target: str | None, expected: list[Read]
) -> None:
    check(reads(text, target=target), expected)


def test_onbuild() -> None:
    own = parse_dockerfile("FROM alpine\nONBUILD COPY . /app\nCOPY x /x\n", path="D")
    assert own.onbuild == (2, "ONBUILD COPY . /app")
    assert [(r.line, r.path, r.why) for r in own.reads] == [(3, "x", None)]
    # A stage built FROM an earlier stage runs that stage's triggers, in this context.
    check(
        reads("FROM alpine AS base\nONBUILD COPY . /app\nFROM base\nCOPY x /x\n"),
        [(2, ".", "ONBUILD"), (4, "x")],
    )
    # The built stage's triggers are for its children; an earlier stage's are spent.
    child = parse_dockerfile("FROM alpine AS a\nONBUILD COPY . /\nFROM a\n", path="D")
    assert child.onbuild is None


def test_a_read_names_its_instruction() -> None:
    info = parse_dockerfile(
        "FROM alpine\nCOPY   --chown=1  src/ \\\n  /app/src\n", path="images/api/Dockerfile"
    )
    [read] = info.reads
    assert read == ContextRead(
        file="images/api/Dockerfile", line=2, path="src", instruction="COPY --chown=1 src/ /app/src"
    )
    assert read.describe() == "images/api/Dockerfile:2 COPY --chown=1 src/ /app/src"
    [fallback] = parse_dockerfile("FROM alpine\nARG X\nCOPY $X /x\n", path="D").reads
    assert fallback.describe() == "D:3 COPY $X /x (ARG X has no value)"


# -- the include side of fsutil's walk ------------------------------------------------------
# filter.go: an entry passes when a pattern matches it or a directory above it
# (MatchesUsingParentResults); with only plain patterns, a directory no pattern runs
# through is skipped whole. The .dockerignore decides on its own; a file is sent when
# both let it through.


@pytest.mark.parametrize(
    ("patterns", "path", "included"),
    [
        (["src"], "src", True),
        (["src"], "src/a.py", True),
        (["src"], "src/deep/er/a.py", True),
        (["src"], "srcx/a.py", False),
        (["src"], "lib/src/a.py", False),
        (["src/a.py"], "src/a.py", True),
        (["src/a.py"], "src/b.py", False),
        (["src/a.py"], "src", False),
        (["src/*.py"], "src/a.py", True),
        (["src/*.py"], "src/sub/a.py", False),
        (["src/*.py"], "src/a.pyc", False),
        (["*.json"], "a.json", True),
        (["*.json"], "sub/a.json", False),  # `*` stops at a slash
        (["*.json"], "x.json/inner.txt", True),  # a folder the glob matches: all of it
        (["**/*.go"], "a/b/c.go", True),
        (["**/*.go"], "c.go", True),
        (["?.txt"], "a.txt", True),
        (["?.txt"], "ab.txt", False),
        (["[ab].txt"], "b.txt", True),
        (["[ab].txt"], "c.txt", False),
        (["a", "b/c"], "b/c/d", True),
        (["a", "b/c"], "b/d", False),
        (["my dir"], "my dir/f", True),
        (["src/**"], "src/a/b", True),
        (["src/**"], "src", False),
    ],
)
def test_include_patterns(patterns: list[str], path: str, included: bool) -> None:
    assert IncludeMatcher(patterns).includes(path) is included
    assert IncludeMatcher(patterns).included([path], ordered=True) == ([path] if included else [])


@pytest.mark.parametrize(
    ("patterns", "ignore", "path", "sent"),
    [
        (["src"], "src/*.md\n", "src/a.py", True),
        (["src"], "src/*.md\n", "src/a.md", False),
        (["src"], "*\n!src\n", "src/a.py", True),
        (["src"], "*\n!src/keep\n", "src/a.py", False),
        (["src"], "*\n!src/keep\n", "src/keep", True),
        (["src/a.py"], "src\n", "src/a.py", False),  # an ignored folder is skipped whole
        (["*.txt"], "b.txt\n", "a.txt", True),
        (["*.txt"], "b.txt\n", "b.txt", False),
        (["."], "docs\n", "docs/x", False),
    ],
)
def test_include_and_exclude_combine(
    patterns: list[str], ignore: str, path: str, sent: bool
) -> None:
    inputs = Inputs(
        reads=tuple(
            ContextRead(file="D", line=2, path=p, instruction=f"COPY {p} /") for p in patterns
        )
    )
    passes = inputs.includes(path) and not IgnoreMatcher.from_text(ignore).excludes(path)
    assert passes is sent


def test_included_keeps_the_order_and_finds_by_prefix() -> None:
    paths = sorted(["a.txt", "b", "lib/x", "src/a", "src/b/c", "srcx", "z"])
    matcher = IncludeMatcher(["src", "a.txt"])
    assert matcher.included(paths, ordered=True) == ["a.txt", "src/a", "src/b/c"]
    assert matcher.included(list(reversed(paths))) == ["src/b/c", "src/a", "a.txt"]
    # A `|` reaches the Go regexp raw: no literal prefix holds, every path is looked at.
    assert IncludeMatcher(["q*|src*"]).included(paths, ordered=True) == ["src/a", "src/b/c", "srcx"]


# -- an image's inputs -----------------------------------------------------------------------


def read(path: str, line: int = 2, why: str | None = None) -> ContextRead:
    return ContextRead(file="D", line=line, path=path, instruction=f"COPY {path} /", why=why)


def test_inputs_name_the_read_that_made_a_file_an_input() -> None:
    inputs = Inputs(reads=(read("src", 2), read("*.json", 3)))
    assert inputs.whole is None
    assert inputs.patterns == ("*.json", "src")
    assert inputs.source("src/a.py") == read("src", 2)
    assert inputs.source("pkg.json") == read("*.json", 3)
    assert inputs.source("README.md") is None
    assert inputs.describe() == "reads *.json, src"
    assert Inputs(reads=()).describe() == "reads nothing from its context"
    assert not Inputs(reads=()).includes("anything")


def test_a_fallback_counts_everything_and_is_named_first() -> None:
    fallback = read(".", 5, why="ARG X has no value")
    inputs = Inputs(reads=(read(".", 2), read("src", 3), fallback))
    assert inputs.whole == fallback
    assert inputs.includes("anything/at/all")
    assert inputs.source("src/a") == fallback
    assert inputs.describe() == "whole context: D:5 COPY . / (ARG X has no value)"


def test_links_on_the_way_to_a_read_count_the_whole_context() -> None:
    inputs = Inputs(reads=(read("src/app"), read("conf/*.yaml", 3)))
    ways = read_ways("images/api", inputs)
    assert [(paths, directory) for _, paths, directory in ways] == [
        (("images/api/src", "images/api/src/app"), None),
        (("images/api/conf",), "images/api/conf"),
    ]
    assert with_links(inputs, ways, frozenset(), frozenset()) is inputs
    linked = with_links(inputs, ways, frozenset({"images/api/src"}), frozenset())
    assert linked.whole is not None
    assert linked.whole.why == "images/api/src is a symbolic link, which BuildKit follows"
    held = with_links(inputs, ways, frozenset(), frozenset({"images/api/conf"}))
    assert held.whole is not None
    assert held.whole.line == 3
    assert [w[1:] for w in read_ways(".", Inputs(reads=(read("*.txt"),)))] == [((), ".")]
    assert read_ways(".", Inputs(reads=(read("."),))) == []


def test_submodules_a_read_may_reach_into() -> None:
    modules = parse_gitmodules(
        '[submodule "v"]\n\tpath = images/api/vendor\n\turl = x\n'
        '[submodule "o"]\n\tpath = "other/lib"\n'
    )
    assert modules == ("images/api/vendor", "other/lib")
    inputs = Inputs(reads=(read("vendor/lib/x.py"),))
    reached = with_submodules("images/api", inputs, modules)
    assert reached.submodules == ("vendor",)
    assert reached.includes("vendor")
    assert reached.source("vendor") == read("vendor/lib/x.py")
    assert with_submodules("images/api", Inputs(reads=(read("src"),)), modules).submodules == ()
    whole = Inputs(reads=(read("."),))
    assert with_submodules("images/api", whole, modules) == whole


def test_an_in_repo_parent_with_onbuild_counts_the_childs_whole_context() -> None:
    repo = load_files(
        {
            "builder.yaml": "namespace: acme\n",
            "base-images/base/Dockerfile": "FROM alpine\nONBUILD COPY . /app\n",
            "images/child/Dockerfile": "FROM acme/base\nCOPY main.py /\n",
            "images/copier/Dockerfile": "FROM alpine\nCOPY --from=acme/base /x /x\nCOPY y /\n",
        }
    )
    images = repo.graph.images
    whole = images["child"].inputs.whole
    assert whole is not None
    assert whole.describe() == (
        "base-images/base/Dockerfile:2 ONBUILD COPY . /app "
        "(the trigger of in-repo parent base runs in this image's context)"
    )
    # COPY --from does not run triggers; the parent itself does not run its own.
    assert images["copier"].inputs.patterns == ("y",)
    assert images["base"].inputs.reads == ()


def test_a_pattern_buildkit_refuses_counts_everything() -> None:
    repo = load_files(
        {"builder.yaml": "namespace: acme\n", "images/a/Dockerfile": "FROM alpine\nCOPY [z-a] /\n"}
    )
    whole = repo.graph.images["a"].inputs.whole
    assert whole is not None
    assert whole.why is not None
    assert "no include pattern BuildKit takes" in whole.why
