""".dockerignore against the real engine: what BuildKit sends is what IgnoreMatcher keeps.

Every case is a context directory with a .dockerignore and a file tree (files and
symlinks, as git lists them). One `docker buildx bake` builds them all, each with a
Dockerfile outside its context (`FROM scratch` + `COPY . /ctx/`) and a local output; the
files under `ctx/` are the files the BuildKit client sent. The cases: realistic Python,
Node and allow-list files, each special form builder/ignore.py handles (and the walk's
quirks), and pattern sets hypothesis draws with a fixed seed. Then patterns builder
refuses make the real build fail, one build each.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from builder.ignore import IgnoreMatcher, ignore_problems
from tests.integration.conftest import Engine

pytestmark = pytest.mark.engine

DOCKERFILE = "FROM scratch\nCOPY . /ctx/\n"


@dataclass(frozen=True)
class Case:
    name: str
    ignore: str
    files: tuple[str, ...]  # context-relative; a name in LINKS is made a symlink


# A symlink is a file to git and to fsutil's walk (lstat), also when it points at a
# directory; a dangling one is sent too.
LINKS = {"link-to-src": "src", "src/link.py": "app.py", "dangling": "nowhere"}

TREE = (
    "README.md",
    "CHANGELOG.md",
    "docs/guide.md",
    "docs/img/logo.png",
    "docs/api/index.md",
    "docsite/index.html",
    "src/app.py",
    "src/__init__.py",
    "src/__pycache__/app.cpython-311.pyc",
    "src/util/helpers.py",
    "src/util/__pycache__/helpers.cpython-311.pyc",
    "src/app.log",
    "src/build/keep.o",
    "logs/a.log",
    "logs/deep/b.log",
    "build.log",
    "tests/test_app.py",
    "tests/fixtures/data.json",
    "tests/fixtures/keep.md",
    "node_modules/left-pad/index.js",
    "node_modules/.bin/tool",
    "web/node_modules/react/index.js",
    "web/src/index.js",
    "web/package.json",
    "package.json",
    "package-lock.json",
    ".git/HEAD",
    ".env",
    ".env.local",
    ".venv/bin/python",
    "dist/app.tar.gz",
    "build/out.o",
    "images/app/Dockerfile",
    "images/app/main.py",
    "images/other/b.py",
    "shared/c.py",
    "app.py",
    "a1",
    "ab",
    "a.d",
    "[x].txt",
    "*.txt",
    "space name.txt",
    "tab\tname",
    "back\\slash",
    "$dollar",
    "#hash",
    "!bang",
    "café.py",
    "naïve/ü.md",
    "line\nbreak.txt",
    "x\n/y",
    "xa/y",
    "x$/a",
    "xa$",
    "\ufeffbom.py",
    "caf\udce9.bin",  # the byte 0xE9 alone: not UTF-8, as os.fsdecode gives it
    "\x1cREADME.md\x1c",
    *LINKS,
)

PYTHON = """\
# Python service
**/__pycache__
**/*.pyc
*.log
.venv
.git
.env*
*.md
!README.md
tests/
dist
build
"""

NODE = """\
node_modules
**/node_modules
npm-debug.log
.git
*.md
!README.md
dist/
coverage
.env
"""

# (name, .dockerignore text); each runs over TREE. The comments say what each pins.
SPECIAL = [
    ("python", PYTHON),
    ("node", NODE),
    ("allow-list", "*\n!src\n!package.json\n!web/src/**\n"),
    ("allow-list-glob-exception", "*\n!**/*.py\n"),
    ("allow-list-nested", "*\n!images/app/\n**/*.md\n"),
    # patternmatcher: a pattern that starts with `**` and has no other wildcard is a suffix.
    ("star-star-suffix-exception", "*\n!**.py"),
    ("star-star-suffix", "**.log"),
    ("star-star-node-modules", "**node_modules"),
    ("star-star-slash", "**/node_modules\n**/*.md\n"),
    ("prefix-without-slash", "docs**\nsrc/**\n"),
    ("everything", "**"),
    ("everything-but", "**\n!src/util\n"),
    # `\d` is copied into the Go regexp: a digit class, not a `d`.
    ("go-regexp-escape", "a\\d\n"),
    # `|`, `{` and `}` reach the regexp unescaped (patternmatcher's escape bitmap).
    ("alternation", "*.md|*.py\n"),
    ("alternation-everything", "(**{|"),
    ("repeat", "*a{2}\nx{2}\n"),
    ("caret-anchor", "*^x\n^*\n"),
    ("trailing-backslash-regexp", "x*\\"),
    ("quote-meta", "a\\Qb*\n"),
    ("escaped-star", "\\*.txt\n\\[x\\].txt\n"),
    ("class-bracket", "[[]x].txt\n[!a]*\n"),
    ("classes", "?.txt\n[a-c]?\n[^a]*.py\n"),
    ("dollar-hash-bang", "$dollar\n\\#hash\n\\!bang\n"),
    # Go's bufio splits lines on \n only and drops one \r before it.
    ("crlf", "*.md\r\n!README.md\r\nlogs\r\n"),
    # A control character inside a pattern reaches the client only when some pattern has
    # a character beyond ASCII (filesync then URL-encodes the list): the `é` lines.
    ("form-feed-inside-a-line", "logs\x0cbuild.log\né-nothing\n"),
    ("line-separators-inside-a-line", "logs\u2028build.log\nsrc\x85dist\n"),
    # Go's TrimSpace: NBSP and NEL are space, \x1c (which str.strip drops) is not.
    ("go-trim-space", "\xa0README.md\xa0\n\x85build.log\n"),
    ("not-go-space", "\x1cREADME.md\x1c\né-nothing\n"),
    # A BOM is dropped from the first line only; text/scanner drops one that starts a
    # pattern from its regexp (not from an exact or suffix match).
    ("bom-first-line", "\ufeff*.md\n"),
    ("bom-later-regexp", "x\n\ufeff*.py\n"),
    ("bom-later-suffix", "x\n\ufeff**.py\n"),
    ("bom-later-exact", "x\n\ufeffbom.py\n"),
    ("comments", "#*.md\n  #hash\n# README.md\n"),
    ("bang-spaces", "!  README.md\n*.md\n!   docs/guide.md  \n"),
    ("cleaning", "/src/app.py\n./docs\n//build\nx/../dist\nsrc/..\n.\n..\n"),
    # ReadAll cleans, then New trims and cleans again: `docs/ /` is `docs`, and
    # `/ /README.md` becomes `/README.md`, which no relative path equals.
    ("clean-then-trim", "docs/ /\n/ /README.md\n"),
    ("dockerignore-itself", ".dockerignore\n*.md\n"),
    # fsutil's walk: a directory hands its matches down, a pattern tried on a directory
    # is not tried again on its parents, and a matched directory no `!` reaches is skipped.
    ("walk-reinclude-then-exclude", "docs\n!docs/guide.md\ndocs\n"),
    ("walk-skips-matched-directory", "docs/api\n!docs\n"),
    ("walk-descends-for-exception", "docs\n!docs/api/index.md\n"),
    ("walk-glob-exception", "docs\n!docs/*/index.md\n"),
    ("walk-suffix-exception", "src\n!**/helpers.py\n"),
    ("walk-exception-trailing-glob", "node_modules\n!node_modules/left-pad/**\n"),
    ("unicode", "caf?.py\nnaïve/**\n*.bin\n"),
    # A Go regexp's `.` stops at a newline; `?` and `*` (`[^/]`) do not.
    ("newlines", "line?break.txt\nx**/y\n"),
    ("symlinks", "link-to-src/**\nsrc/link.py\n"),
    ("stacked-star-star", "**/**/**/**/**/**/**/**/index.js\n"),
    ("many-stars", "*a*a*a*a*b\n*e*e*e*e*e*e*e*e*x\n"),
    ("long-line", "?" * 60000 + "\n*.md\n"),
    ("many-patterns", "".join(f"gen/*x{i}*\nshared/{i}\n!src/f{i}\n" for i in range(200))),
]

SEGMENT = st.sampled_from(("a", "b", "c", "ab", "x.py", "y.md", "a b", "[a]", "é", "d1"))
PATH = st.lists(SEGMENT, min_size=1, max_size=4).map("/".join)
ATOM = st.sampled_from(
    ("a", "b", "c", ".py", ".md", "*", "**", "?", "/", "[a-c]", "[^a]", "!", "\\", "\\*", "é")
)
PATTERN = st.one_of(
    st.lists(ATOM, min_size=1, max_size=6).map("".join),
    PATH,
    PATH.map(lambda p: "!" + p),
)


def _drawn_cases(count: int) -> list[Case]:
    """Pattern sets and trees hypothesis draws, the same ones every run (a fixed seed,
    no database, generation only), keeping those builder accepts."""
    drawn: list[Case] = []

    @seed(20260501)
    @settings(
        max_examples=count * 3,
        database=None,
        phases=(Phase.generate,),
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(PATTERN, min_size=1, max_size=8), st.lists(PATH, min_size=1, max_size=25))
    def draw(patterns: list[str], paths: list[str]) -> None:
        text = "\n".join(patterns) + "\n"
        files = _files_only(paths)
        if len(drawn) < count and ignore_problems(text) is None:
            drawn.append(Case(f"drawn-{len(drawn)}", text, files))

    draw()
    return drawn


def _files_only(paths: list[str]) -> tuple[str, ...]:
    """Drop a path that is also a directory of another: git cannot hold both."""
    unique = set(paths)
    directories = {p.rsplit("/", 1)[0] for p in unique if "/" in p}
    directories |= {"/".join(d.split("/")[:i]) for d in list(directories) for i in range(1, 4)}
    return tuple(sorted(unique - directories))


def _cases() -> list[Case]:
    cases = [Case(name, text, TREE) for name, text in SPECIAL]
    return cases + _drawn_cases(30)


CASES = _cases()


def _write_context(directory: Path, ignore: str, files: tuple[str, ...]) -> None:
    directory.mkdir(parents=True)
    (directory / ".dockerignore").write_bytes(ignore.encode("utf-8"))
    for name in files:
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if name in LINKS:
            target.symlink_to(LINKS[name])
        else:
            target.write_bytes(b"x\n")


def _sent(output: Path) -> set[str]:
    """The files and symlinks the build wrote under ctx/, context-relative."""
    root = output / "ctx"
    found = set()
    for directory, dirnames, filenames in os.walk(root):
        for name in [*filenames, *(d for d in dirnames if Path(directory, d).is_symlink())]:
            found.add(Path(directory, name).relative_to(root).as_posix())
    return found


def _context_files(case: Case) -> list[str]:
    return sorted({".dockerignore", *case.files})


@dataclass(frozen=True)
class BakeResult:
    sent: Mapping[str, set[str]]
    seconds: float


# What builder refuses (ignore_problems) must fail the real build.
REFUSED = [
    ("bare-bang", "*.md\n!\n"),
    ("bang-slash", "!a\n!/\n"),  # patternmatcher.New cleans `!/` to `!`
    ("unclosed-class", "src/[abc\n"),
    ("class-edge", "[]a]\n"),
    ("trailing-backslash", "tmp\\\n"),
    ("reversed-range", "[z-a]\n"),
    ("go-only-escape", "a\\C\n"),  # RE2 takes `\C`, Go's regexp does not
    ("unknown-escape", "*\\y\n"),
    ("repeat-too-big", "*{1001}\n"),
    ("nested-repeat", "*{2}\n"),
    ("regexp-class-not-closed", "a*[\n"),  # filepath.Match passes it; the regexp fails
    ("line-too-long", "a" * 65536 + "\n"),
    ("control-character", "logs\x0cbuild.log\n"),  # a gRPC header refuses it (see above)
    ("tab-inside", "tab\tname\n"),
    ("comment-too-long", "# " + "a" * 65534 + "\n"),
]


# Builds of one context each, beside the bake: (.dockerignore text, files) by name.
SINGLE = {
    **{name: (text, ("a.txt", "sub/b.txt")) for name, text in REFUSED},
    "longest-line": ("a" * 65535 + "\n*.md\n", ("a.txt", "x.md")),
    "regexp-never-tried": ("*\n[z-a]\n", ("a.txt", "sub/b.txt")),
}


@dataclass(frozen=True)
class Built:
    returncode: int
    stderr: str
    sent: set[str]


def _build_one(engine: Engine, root: Path, name: str) -> tuple[str, Built]:
    text, files = SINGLE[name]
    _write_context(root / name / "context", text, files)
    done = _build(engine, root / name)
    return name, Built(done.returncode, done.stderr, _sent(root / name / "out"))


@dataclass(frozen=True)
class EngineRuns:
    baked: BakeResult
    single: Mapping[str, Built]


@pytest.fixture(scope="module")
def engine_runs(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> EngineRuns:
    """The bake and the single builds, side by side: much of each is waiting."""
    root = tmp_path_factory.mktemp("dockerignore")
    with ThreadPoolExecutor(max_workers=3) as pool:
        single = [pool.submit(_build_one, engine, root / "single", n) for n in SINGLE]
        baked = _bake(engine, root / "bake")
        return EngineRuns(baked=baked, single=dict(f.result() for f in single))


@pytest.fixture(scope="module")
def baked(engine_runs: EngineRuns) -> BakeResult:
    return engine_runs.baked


@pytest.fixture(scope="module")
def built_one_by_one(engine_runs: EngineRuns) -> Mapping[str, Built]:
    return engine_runs.single


def _bake(engine: Engine, root: Path) -> BakeResult:
    """Every case in one `docker buildx bake`: one target per case."""
    root.mkdir(parents=True)
    dockerfile = root / "Dockerfile"
    dockerfile.write_text(DOCKERFILE, encoding="utf-8")
    targets = {}
    for number, case in enumerate(CASES):
        context = root / f"context-{number}"
        _write_context(context, case.ignore, case.files)
        targets[f"case{number}"] = {
            "context": str(context),
            "dockerfile": str(dockerfile),
            "network": "none",
            "output": [f"type=local,dest={root / f'out-{number}'}"],
        }
    bake_file = root / "bake.json"
    bake_file.write_text(
        json.dumps({"group": {"default": {"targets": list(targets)}}, "target": targets}),
        encoding="utf-8",
    )
    started = time.monotonic()
    done = subprocess.run(
        ["docker", "buildx", "bake", "--progress", "plain", "-f", str(bake_file)],
        env=dict(engine.env),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-4000:]
    sent = {case.name: _sent(root / f"out-{n}") for n, case in enumerate(CASES)}
    return BakeResult(sent=sent, seconds=seconds)


def test_enough_cases() -> None:
    assert len(CASES) >= 75
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_kept_is_what_the_engine_sends(baked: BakeResult, case: Case) -> None:
    assert ignore_problems(case.ignore) is None
    kept = IgnoreMatcher.from_text(case.ignore).kept(_context_files(case))
    assert set(kept) == baked.sent[case.name]


def test_the_bake_is_quick(baked: BakeResult) -> None:
    """About 20 s for ~80 contexts on two quiet cores; the bound leaves room for a busy
    machine (`pytest --durations` shows the setup time of the first case)."""
    assert baked.seconds < 120, f"{len(CASES)} contexts baked in {baked.seconds:.1f} s"


@pytest.mark.parametrize(("name", "text"), REFUSED, ids=[n for n, _ in REFUSED])
def test_what_builder_refuses_fails_the_build(
    built_one_by_one: Mapping[str, Built], name: str, text: str
) -> None:
    assert ignore_problems(text) is not None
    built = built_one_by_one[name]
    assert built.returncode != 0
    assert "pattern" in built.stderr or "dockerignore" in built.stderr, built.stderr[-2000:]


def test_the_longest_line_docker_reads_is_fine(built_one_by_one: Mapping[str, Built]) -> None:
    text, files = SINGLE["longest-line"]
    assert ignore_problems(text) is None
    built = built_one_by_one["longest-line"]
    assert built.returncode == 0, built.stderr[-2000:]
    kept = IgnoreMatcher.from_text(text).kept([".dockerignore", *files])
    assert built.sent == set(kept) == {".dockerignore", "a.txt"}


def test_a_bad_regexp_the_walk_never_tries_passes(built_one_by_one: Mapping[str, Built]) -> None:
    """Where builder is stricter than Docker: Go compiles a pattern's regexp when the walk
    first tries it, and after `*` every entry is matched, so `[z-a]` (an include, tried
    only while unmatched) never is. builder refuses the file anyway: another tree would
    reach the pattern and fail."""
    text, _ = SINGLE["regexp-never-tried"]
    assert ignore_problems(text) is not None
    built = built_one_by_one["regexp-never-tried"]
    assert built.returncode == 0, built.stderr[-2000:]
    assert built.sent == set()


def _build(engine: Engine, root: Path) -> subprocess.CompletedProcess[str]:
    dockerfile = root / "Dockerfile"
    dockerfile.write_text(DOCKERFILE, encoding="utf-8")
    argv = ["docker", "buildx", "build", "--network", "none", "--progress", "plain"]
    argv += ["--output", f"type=local,dest={root / 'out'}", "-f", str(dockerfile)]
    return subprocess.run(
        [*argv, str(root / "context")],
        env=dict(engine.env),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
