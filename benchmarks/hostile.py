"""Adversarial inputs against builder's planning: wall time and peak RSS per case.

    .venv/bin/python benchmarks/hostile.py [--only NAME] [--keep DIR]

A pull request's author writes builder.yaml, image.yaml, .dockerignore and Dockerfiles,
and CI runs builder on them. Each case below lays one adversarial input over a small repo
in a temp git repository (a base commit, then the input in a second commit), runs
`builder affected --base HEAD~1 --head HEAD --format names` and `builder graph --format
json` in a child process, and checks the budget: every input under 1 MB plans in under
2 s and 300 MB of peak RSS, and ends in exit 0, or exit 2 with one line.

The 2 s are CPU seconds (user + system of builder and the git it waited for, from
os.wait4): on a shared machine wall time also counts the other tenants' work (the same
case measured 0.7 s and 2.4 s of wall time an hour apart); on an idle one the two agree.
Wall time is shown too. Peak RSS is the largest resident set of builder or of any git it
waited for. Both include interpreter start-up (`builder --version` is printed as the
floor).

"parser s" is the time BuildKit's own Dockerfile parser (the `dockerfile` binding) takes on
the case's Dockerfile alone, timed in a child: the floor for a Dockerfile builder hands the
binding. (A plain one, ASCII without heredocs, builder parses with its own port of that
parser, builder/instructions.py, and may go below it.) It is quadratic in a line's length
for ARG, ENV and LABEL (60 KB: about a second) and about 25 us per instruction (1 MB of
short lines: about 1.5 s).

Exit code: 0 when every other case keeps the budget, 1 when one breaks it (named).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BUDGET_S = 2.0
BUDGET_RSS_MB = 300.0
MAX_INPUT = 1_000_000  # bytes: the budget holds for inputs under 1 MB
TIMEOUT_S = 120.0  # a case still running then has broken the budget many times over
GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.invalid",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}
SCRUBBED_ENV = ("CI", "GITHUB_ACTIONS", "GITHUB_EVENT_PATH", "GITHUB_EVENT_NAME")

BASE_FILES = {
    "builder.yaml": "namespace: acme\n",
    "base-images/base/Dockerfile": "FROM python:3.12-slim\n",
    "images/api/Dockerfile": "FROM acme/base\nCOPY . /app\n",
    "images/api/app.py": "print('hi')\n",
    "images/cli/Dockerfile": "FROM alpine:3.20\n",
}

Files = dict[str, str]


@dataclass(frozen=True)
class Case:
    name: str
    what: str
    files: Callable[[], Files]  # laid over BASE_FILES in the second commit


@dataclass
class Result:
    command: str
    code: int
    wall: float
    cpu: float  # user + system of builder and the git it waited for
    rss_mb: float
    stderr: str

    def problem(self) -> str | None:
        if self.code not in (0, 2):
            return f"exit {self.code}"
        lines = self.stderr.splitlines()
        if self.code == 2 and len(lines) != 1:
            return f"exit 2 with {len(lines)} lines"
        if self.cpu > BUDGET_S:
            return f"{self.cpu:.2f} s CPU > {BUDGET_S:.0f} s"
        if self.rss_mb > BUDGET_RSS_MB:
            return f"{self.rss_mb:.0f} MB > {BUDGET_RSS_MB:.0f} MB"
        return None


# -- the inputs ------------------------------------------------------------------------


def billion_laughs() -> Files:
    lines = ["namespace: acme", "lol0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"lol{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    return {"builder.yaml": "\n".join(lines) + "\n"}


def yaml_deep_flow() -> Files:
    return {"images/cli/image.yaml": "name: " + "[" * (MAX_INPUT - 10) + "\n"}


def yaml_deep_block() -> Files:
    lines, size, depth = [], 0, 0
    while size < MAX_INPUT - 2000:
        line = " " * depth + f"k{depth}:\n"
        lines.append(line)
        size += len(line)
        depth += 1
    return {"images/cli/image.yaml": "".join(lines)}


def yaml_aliases_wide() -> Files:
    aliases = ", ".join(["*s"] * ((MAX_INPUT - 100) // 4))
    return {"images/cli/image.yaml": f"x: &s libs/a/**\nwatch: [{aliases}]\n"}


def yaml_big_watch() -> Files:
    count = (MAX_INPUT - 100) // 31
    lines = "".join(f"  - shared/sql/domain{i:06d}/**\n" for i in range(count))
    return {"images/cli/image.yaml": "watch:\n" + lines}


def nested_substitution() -> Files:
    depth = 10_000  # 60 KB: BuildKit's lines stop at 64 KiB
    word = "${V:-" * depth + "}" * depth
    return {"images/cli/Dockerfile": f"ARG V=alpine\nFROM {word}\n"}


def trim_wildcards() -> Files:
    value = "a" * 30_000
    pattern = "*a" * 15_000
    return {"images/cli/Dockerfile": f"ARG V={value}\nFROM alpine:3${{V%%{pattern}}}\n"}


def trim_wildcards_no_match() -> Files:
    value = "a" * 30_000
    pattern = "*a" * 15_000 + "b"
    return {
        "images/cli/Dockerfile": f"ARG V={value}\nFROM alpine:3.20\nLABEL x=${{V##{pattern}}}\n"
    }


def replace_every_character() -> Files:
    value = "a" * 30_000  # long words past 32 KiB are refused before parsing
    return {"images/cli/Dockerfile": f"ARG V={value}\nFROM alpine:3${{V//?/}}\n"}


def dockerfile_many_lines() -> Files:
    line = "RUN echo hello world\n"
    count = (MAX_INPUT - 100) // len(line)
    return {"images/cli/Dockerfile": "FROM alpine:3.20\n" + line * count}


def dockerfile_error_at_the_end() -> Files:
    line = "RUN echo hello world\n"
    count = (MAX_INPUT - 100) // len(line)
    return {"images/cli/Dockerfile": "FROM alpine:3.20\n" + line * count + "ENV ONLY\n"}


def dockerfile_long_line() -> Files:
    # The longest word builder lets BuildKit's parser see (long words past 32 KiB: refused).
    return {"images/cli/Dockerfile": "FROM alpine:3.20\nLABEL a=" + "b" * 32_000 + "\n"}


def dockerfile_long_words() -> Files:
    """Sixteen 60 KB words: BuildKit's parser alone would take about 20 s (the square of
    each word's length); builder refuses the file before parsing it."""
    lines = "".join(f"LABEL a{i}=" + "b" * 60_000 + "\n" for i in range(16))
    return {"images/cli/Dockerfile": "FROM alpine:3.20\n" + lines}


def watch_many_stars() -> Files:
    """A `watch` glob of four stars in one name, and a changed file whose name is 255
    dashes (ext4's longest): Python's `re` backtracks in the fourth power of the name."""
    return {
        "images/cli/image.yaml": "watch: ['*-*-*-*-x']\n",
        "docs/" + "-" * 255: "x\n",
    }


def word_one_variable() -> Files:
    """`FROM $AAAA...` with a quote at the end: 32 KB that the one-variable shortcut, were
    it to backtrack, would retry at every length of the name."""
    return {"images/cli/Dockerfile": "FROM $" + "A" * 30_000 + '"x"\n'}


def directive_spaces() -> Files:
    """A first line shaped like a parser directive, its value a 60 KB run of spaces between
    two letters: BuildKit's directive pattern, run by a backtracking regexp engine, takes
    time in the square of the run (minutes)."""
    return {"images/cli/Dockerfile": "# syntax=x" + " " * 60_000 + "y\nFROM alpine:3.20\n"}


def dockerfile_many_stages() -> Files:
    count = 8_000
    lines = ["FROM alpine:3.20 AS s0"]
    lines += [f"FROM s{i - 1} AS s{i}\nCOPY --from=s{i // 2} /x /x{i}" for i in range(1, count)]
    return {"images/cli/Dockerfile": "\n".join(lines) + "\n"}


def ignore_many_patterns() -> Files:
    files = {
        "images/api/.dockerignore": "".join(f"src/module{i}/**/*.tmp\n" for i in range(10_000)),
    }
    files.update({f"images/api/src/module{i}/deep/file{i}.py": "x\n" for i in range(2_000)})
    return files


def ignore_stacked_doublestar() -> Files:
    patterns = "".join("**/" * depth + f"x{depth}\n" for depth in range(1, 400))
    files = {"images/api/.dockerignore": patterns}
    deep = "/".join(f"d{i}" for i in range(60))
    files.update({f"images/api/{deep}/f{i}.py": "x\n" for i in range(200)})
    return files


CASES = (
    Case("yaml-billion-laughs", "9 aliases of 9, under an unknown key", billion_laughs),
    Case("yaml-deep-flow", "1 MB of '[' in image.yaml", yaml_deep_flow),
    Case("yaml-deep-block", "mappings nested by indentation, 1 MB", yaml_deep_block),
    Case("yaml-wide-aliases", "250,000 aliases in one list, 1 MB", yaml_aliases_wide),
    Case("yaml-big-watch", "a valid watch list of 35,000 globs, 1 MB", yaml_big_watch),
    Case("df-nested-substitution", "${V:-...} nested 10,000 deep", nested_substitution),
    Case("df-trim-wildcards", "${V%%*a*a...} with 15,000 stars on 30 KB", trim_wildcards),
    Case("df-trim-no-match", "${V##*a*a...b} with 15,000 stars, no match", trim_wildcards_no_match),
    Case("df-replace-all", "${V//?/} over 30 KB", replace_every_character),
    Case("df-1mb-lines", "a 1 MB Dockerfile of 47,000 RUN lines", dockerfile_many_lines),
    Case(
        "df-1mb-error-at-end",
        "the same, with an error on the last line",
        dockerfile_error_at_the_end,
    ),
    Case("df-long-line", "one 32 KB LABEL line", dockerfile_long_line),
    Case("df-directive-spaces", "a `# syntax=` line with 60 KB of spaces", directive_spaces),
    Case("df-one-variable", "FROM $A... (30 KB) ending in a quote", word_one_variable),
    Case("watch-many-stars", "watch '*-*-*-*-x' against a 255-dash name", watch_many_stars),
    Case(
        "df-long-words",
        "sixteen 60 KB words (refused: long words past 32 KiB)",
        dockerfile_long_words,
    ),
    Case(
        "df-many-stages", "8,000 stages, each copying from an earlier one", dockerfile_many_stages
    ),
    Case(
        "ignore-10k-patterns",
        "10,000 .dockerignore patterns, 2,000 changed files",
        ignore_many_patterns,
    ),
    Case(
        "ignore-stacked-doublestar",
        "patterns of up to 399 stacked **/, 200 changed files 60 deep",
        ignore_stacked_doublestar,
    ),
)

COMMANDS = (
    ("affected", ("affected", "--base", "HEAD~1", "--head", "HEAD", "--format", "names")),
    ("graph", ("graph", "--format", "json")),
)


# -- running ---------------------------------------------------------------------------


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, env={**os.environ, **GIT_ENV}
    )


def write(repo: Path, files: Files) -> None:
    for relative, text in files.items():
        path = repo / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def make_repo(directory: Path, files: Files) -> Path:
    repo = directory / "repo"
    repo.mkdir()
    git(repo, "init", "--quiet")
    write(repo, BASE_FILES)
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "--message", "base")
    write(repo, files)
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "--message", "the pull request")
    return repo


def builder_argv() -> list[str]:
    script = Path(sys.executable).parent / "builder"
    return [str(script)] if script.exists() else [sys.executable, "-m", "builder"]


def run(argv: list[str], cwd: Path) -> Result:
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    env["HOME"] = str(cwd)  # no user git config, and nothing written outside the temp dir
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        child = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        deadline = start + TIMEOUT_S
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                child.kill()
                pid, status, usage = os.wait4(child.pid, 0)
                break
            time.sleep(0.005)
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    code = child.returncode if wall <= TIMEOUT_S else -9
    cpu = usage.ru_utime + usage.ru_stime
    return Result(" ".join(argv[1:]), code, wall, cpu, usage.ru_maxrss / 1024, stderr)


_FLOOR_SCRIPT = """
import contextlib, sys, time, dockerfile
texts = [open(p, encoding="utf-8").read() for p in sys.argv[1:]]
start = time.perf_counter()
for text in texts:
    with contextlib.suppress(dockerfile.GoParseError):
        dockerfile.parse_string(text)
print(time.perf_counter() - start)
"""


def parser_floor(repo: Path, files: Files) -> float | None:
    """Seconds BuildKit's own parser (the `dockerfile` binding) takes on the Dockerfiles
    alone: the part of a case builder cannot go below. Timed in a child of its own, so
    this process stays small (a forked child's peak RSS starts at its parent's)."""
    paths = [str(repo / p) for p in files if p.endswith("Dockerfile")]
    if not paths:
        return None
    done = subprocess.run(
        [sys.executable, "-c", _FLOOR_SCRIPT, *paths], capture_output=True, text=True, check=True
    )
    return float(done.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", help="run just these cases (repeatable)")
    parser.add_argument("--keep", type=Path, help="leave each case's repo under this directory")
    args = parser.parse_args()
    cases = [c for c in CASES if not args.only or c.name in args.only]
    builder = builder_argv()
    floor = run([*builder, "--version"], ROOT)
    print(
        f"budget: under {BUDGET_S:.0f} s CPU and {BUDGET_RSS_MB:.0f} MB, exit 0 or 2 with one line"
    )
    print(
        f"floor: `builder --version` {floor.cpu:.2f} s CPU, {floor.wall:.2f} s wall, "
        f"{floor.rss_mb:.0f} MB"
    )
    print()
    header = (
        f"{'case':<26} {'input':>9} {'command':<9} {'exit':>4} {'CPU s':>6} {'wall s':>7} "
        f"{'RSS MB':>7} {'parser s':>8}  verdict"
    )
    print(header)
    print("-" * len(header))
    broken: list[str] = []
    for case in cases:
        files = case.files()
        size = sum(len(t.encode()) for t in files.values())
        with tempfile.TemporaryDirectory(prefix=f"builder-hostile-{case.name}-") as tmp:
            repo = make_repo(Path(tmp), files)
            floor_s = parser_floor(repo, files)
            parser = f"{floor_s:>8.2f}" if floor_s is not None else f"{'-':>8}"
            for label, command in COMMANDS:
                result = run([*builder, *command, "-C", str(repo)], Path(tmp))
                problem = result.problem()
                if size >= MAX_INPUT and problem and "CPU >" in problem:
                    problem = None  # over 1 MB: outside the time budget
                verdict = "ok" if problem is None else f"BROKEN ({problem})"
                if problem is not None:
                    broken.append(f"{case.name} {label}: {problem}")
                print(
                    f"{case.name:<26} {size:>9,} {label:<9} {result.code:>4} {result.cpu:>6.2f} "
                    f"{result.wall:>7.2f} {result.rss_mb:>7.0f} {parser}  {verdict}"
                )
                if result.code == 2:
                    first = result.stderr.strip().splitlines()[:1]
                    print(f"{'':<26} {'':>9} {'':<9} {'':>4} -> {first[0][:110] if first else ''}")
            if args.keep is not None:
                args.keep.mkdir(parents=True, exist_ok=True)
                shutil.copytree(repo, args.keep / case.name, symlinks=True, dirs_exist_ok=True)
    print()
    for case in cases:
        print(f"{case.name}: {case.what}")
    if broken:
        print("\nbudget broken by: " + "; ".join(broken))
        return 1
    print("\nevery case kept the budget")
    return 0


if __name__ == "__main__":
    sys.exit(main())
