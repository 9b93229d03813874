""".dockerignore matching: how long IgnoreMatcher takes on big and hostile inputs.

    .venv/bin/python benchmarks/ignore.py            # every scenario, one child each
    .venv/bin/python benchmarks/ignore.py --only 50k-context

Each scenario runs in a child process: inputs are generated there first (seeded, not
timed), then the matcher is built and asked, and that is timed. Wall time is the child's
own measurement, and so is CPU time (compare that when the machine is busy); peak RSS
comes from os.wait4 on the child (inputs included). The
adversarial rows come in triples of growing size: linear time shows as times that grow
like the size, not faster. `megabytes-*` are patterns of the shapes real files have,
`soup-*` random globs (the worst case: every path meets many of them). This is a
report, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from builder.ignore import IgnoreMatcher  # noqa: E402 - after the path set-up above

REALISTIC = """\
# build inputs only
.git
.venv
**/__pycache__
**/*.pyc
**/*.pyo
*.log
**/.pytest_cache
.mypy_cache
node_modules
**/node_modules
dist/
build/
coverage
*.md
!README.md
docs/
tests/**/fixtures/*.bin
**/.DS_Store
.env*
"""


def _tree(rng: random.Random, files: int) -> list[str]:
    """A monorepo-shaped file list, about ten files a directory: services and libraries
    with src/tests/docs, Python caches, node_modules, a .git directory."""
    exts = (".py", ".py", ".py", ".pyc", ".md", ".json", ".yaml", ".js", ".sql", ".log", ".bin")
    tops = ("services", "libs", "web", "tools", "docs", "tests", "node_modules", ".git")
    subdirs = ("src", "tests", "fixtures", "__pycache__", "util", "api")
    directories = set()
    while len(directories) < max(1, files // 10):
        parts = [rng.choice(tops), f"pkg{rng.randrange(200)}"]
        parts += [rng.choice(subdirs) for _ in range(rng.randrange(4))]
        directories.add("/".join(parts))
    ordered = sorted(directories)
    paths = {"README.md", "CHANGELOG.md", ".env", "app.log", "setup.py"}
    while len(paths) < files:
        name = f"f{rng.randrange(1000)}{rng.choice(exts)}"
        paths.add(f"{rng.choice(ordered)}/{name}")
    return sorted(paths)


def _many_patterns(rng: random.Random, count: int) -> str:
    """Patterns of every shape, spread over many directories, a tenth of them `!`."""
    shapes: list[Callable[[int], str]] = [
        lambda i: f"services/pkg{i % 120}/data/file{i}.csv",  # exact
        lambda i: f"services/pkg{i % 120}/tmp{i}/**",  # prefix
        lambda i: f"**/name{i}",  # suffix
        lambda i: f"libs/pkg{i % 120}/*.log{i}",  # regexp, literal head
        lambda i: f"**/*.ext{i}",  # regexp, literal tail
        lambda i: f"*/pkg{i}/*",  # regexp, fixed depth
        lambda i: f"!services/pkg{i % 120}/keep{i}",  # exception
    ]
    return "\n".join(rng.choice(shapes)(i) for i in range(count)) + "\n"


def scenario(name: str) -> dict[str, object]:
    rng = random.Random(20260501)
    if name == "10k-patterns-2k-paths":
        text = _many_patterns(rng, 10_000)
        changed = rng.sample(_tree(rng, 20_000), 2_000)
        started = _clocks()
        matcher = IgnoreMatcher.from_text(text)
        excluded = sum(matcher.excludes(p) for p in changed)
        return {**_since(started), "note": f"{excluded} of them excluded (excludes() each)"}
    if name == "50k-context":
        files = _tree(rng, 50_000)
        started = _clocks()
        kept = IgnoreMatcher.from_text(REALISTIC).kept(files)
        lines = len(REALISTIC.splitlines())
        return {**_since(started), "note": f"{lines} lines, {len(files)} files, kept {len(kept)}"}
    if name.startswith("stacked-"):
        # `**/**/.../x/y` against paths of `x/x/...`: near misses, the pattern's component
        # `x` sends every path to RE2; a backtracking engine takes exponential time here.
        depth = int(name.removeprefix("stacked-"))
        directory = "/".join(["x"] * depth)
        return _timed("**/" * depth + "x/y\n", [f"{directory}/f{j}y" for j in range(2_000)])
    if name.startswith("stars-"):
        # `*a*a...*a*b` (n a's) against names of n-1 a's and a b: near misses again.
        stars = int(name.removeprefix("stars-"))
        files = [f"{'a' * (stars - 1)}{j}b" for j in range(2_000)]
        return _timed("*a" * stars + "*b\n", files)
    if name.startswith("megabytes-"):
        size = int(float(name.removeprefix("megabytes-")) * 1_000_000)
        text = _many_patterns(rng, size // 15)  # lines are about 21 bytes: cut to size
        return _timed(text[: text.rfind("\n", 0, size) + 1], _tree(rng, 2_000))
    if name.startswith("soup-"):
        # Random globs, a tenth of them `!`: many match every path, so every path flips
        # between excluded and kept many times, and each flip is a pattern to find.
        size = float(name.removeprefix("soup-")) * 1_000_000
        lines: list[str] = []
        atoms = ("a", "b", "src", "*", "**", "?", "[a-c]", "/", ".py", "x")
        total = 0
        while total < size:
            line = "!" if rng.random() < 0.1 else ""
            line += "".join(rng.choice(atoms) for _ in range(rng.randint(3, 9)))
            lines.append(line)
            total += len(line) + 1
        return _timed("\n".join(lines) + "\n", _tree(rng, 2_000))
    raise SystemExit(f"unknown scenario {name}")


def _timed(text: str, files: list[str]) -> dict[str, object]:
    started = _clocks()
    kept = IgnoreMatcher.from_text(text).kept(files)
    lines = text.count("\n")
    note = f"{lines} patterns ({len(text) / 1e6:.2f} MB), {len(files)} paths, kept {len(kept)}"
    return {**_since(started), "note": note}


def _clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(started: tuple[float, float]) -> dict[str, float]:
    wall, cpu = _clocks()
    return {"seconds": wall - started[0], "cpu": cpu - started[1]}


SCENARIOS = (
    "10k-patterns-2k-paths",
    "50k-context",
    "stacked-25",
    "stacked-50",
    "stacked-100",
    "stars-25",
    "stars-50",
    "stars-100",
    "megabytes-0.25",
    "megabytes-0.5",
    "megabytes-1",
    "soup-0.05",
    "soup-0.1",
    "soup-0.2",
)


def run_child(name: str) -> tuple[dict[str, object], float]:
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", name]
    child = subprocess.Popen(argv, stdout=subprocess.PIPE)
    output = child.stdout.read() if child.stdout is not None else b""
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{name} failed")
    return json.loads(output), usage.ru_maxrss * 1024 / 1e6  # Linux reports KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=SCENARIOS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(scenario(args.child)))
        return
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'scenario':<24} {'wall s':>7} {'CPU s':>7} {'peak RSS MB':>12}  note")
    for name in args.only or SCENARIOS:
        result, rss = run_child(name)
        wall, cpu = result["seconds"], result["cpu"]
        print(f"{name:<24} {wall:>7.3f} {cpu:>7.3f} {rss:>12.0f}  {result['note']}")


if __name__ == "__main__":
    main()
