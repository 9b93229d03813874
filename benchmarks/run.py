"""Time builder on a big generated monorepo: wall clock and peak RSS per scenario.

    .venv/bin/python benchmarks/run.py [--repeat 5] [--fresh] [--profile]

Scenarios: (a) `affected --base HEAD~1 --head HEAD --format names`, the push case;
(h) the same from a fresh clone (no parse cache: every Dockerfile parsed); (b) the same as
json; (c) `graph --format json` (reads the working tree); (g) the same at
`--rev HEAD`; (d) `affected --base HEAD~1` against the working tree with one uncommitted
edit (restored afterwards); (f) `builder --version`, the start-up floor; (e) in process:
where load_repo and select spend their time.

The repo (1000 images, 50,000 files by default) is generated once by make_repo.py into
.bench/repo and reused while its parameters match. Each scenario runs once to warm the
page cache, then --repeat times; the table shows min and median wall time and the largest
peak RSS seen. Peak RSS comes from os.wait4 on the child: the maximum resident set of the
builder process or of any git it ran and waited for (Linux folds waited-for descendants
into a child's ru_maxrss), so it is per run, not cumulative like RUSAGE_CHILDREN.

CPU time (user + system of builder and the git it waited for) is shown next to wall time:
on a busy machine it moves much less than wall clock does.

The in-process scenario imports builder in a fresh interpreter and charges the time of
load_repo and select to the builder functions they call (exclusive time: a phase's own time,
minus the phases it calls), to show where the time goes. CPU time per phase is this
process's plus that of the git commands it waited for.

This is a report, not a test: only a failure to generate the repo exits non-zero.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import inspect
import io
import json
import os
import pstats
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TARGET_WALL_S = 1.0
TARGET_RSS_MB = 200.0
# Variables that would change which range builder picks or how it reports.
SCRUBBED_ENV = ("CI", "GITHUB_ACTIONS", "GITHUB_EVENT_PATH", "GITHUB_EVENT_NAME")


@dataclass
class Run:
    wall_s: float
    cpu_s: float  # user + system, the child's and its waited-for git's
    rss_mb: float
    returncode: int
    stdout: bytes
    stderr: bytes


@dataclass
class Scenario:
    key: str
    label: str
    argv: list[str]
    runs: list[Run] = field(default_factory=list)
    # Remove the parse cache before every run: a fresh clone, as a CI runner has it.
    no_cache: bool = False

    @property
    def good(self) -> list[Run]:
        return [r for r in self.runs if r.returncode == 0]

    @property
    def ok(self) -> bool:
        return bool(self.runs) and len(self.good) == len(self.runs)

    def wall(self, how: Callable[[list[float]], float]) -> float:
        return how([r.wall_s for r in self.good])

    def cpu(self, how: Callable[[list[float]], float]) -> float:
        return how([r.cpu_s for r in self.good])

    @property
    def rss_max(self) -> float:
        return max(r.rss_mb for r in self.good)

    def failure(self) -> str:
        bad = [r for r in self.runs if r.returncode != 0]
        if not bad:
            return ""
        lines = bad[0].stderr.decode(errors="replace").strip().splitlines()
        return f"{len(bad)}/{len(self.runs)} runs failed (rc {bad[0].returncode}): " + (
            lines[-1] if lines else "no stderr"
        )


# -- measuring a child ----------------------------------------------------------------------


def measure(argv: Sequence[str], *, cwd: Path, env: dict[str, str]) -> Run:
    """Run argv to completion; wall clock and the child's own peak RSS via wait4."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen(list(argv), cwd=cwd, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)  # wait4 reaped it already
        out.seek(0)
        err.seek(0)
        return Run(
            wall_s=wall,
            cpu_s=usage.ru_utime + usage.ru_stime,
            rss_mb=usage.ru_maxrss * 1024 / 1e6,  # Linux reports KiB
            returncode=child.returncode,
            stdout=out.read(),
            stderr=err.read(),
        )


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True
    ).stdout


# -- the generated repo ---------------------------------------------------------------------


def ensure_repo(path: Path, *, images: int, files: int, seed: int, fresh: bool) -> dict[str, Any]:
    sys.path.insert(0, str(HERE))
    from make_repo import read_meta

    meta = None if fresh else read_meta(path)
    wanted = {"images": images, "files": files, "seed": seed}
    if meta is not None and all(meta.get(k) == v for k, v in wanted.items()):
        # Undo whatever an interrupted run may have left in the working tree.
        if git(path, "status", "--porcelain"):
            git(path, "checkout", "-q", "--", ".")
            git(path, "clean", "-fdq")
        print(f"repo: reusing {path} ({meta['tracked_files']} files, {images} images)")
        return meta
    print(f"repo: generating {path} ({files} files, {images} images, seed {seed}) ...")
    argv = [sys.executable, str(HERE / "make_repo.py"), str(path)]
    argv += ["--images", str(images), "--files", str(files), "--seed", str(seed)]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    meta = read_meta(path) if result.returncode == 0 else None
    if meta is None:
        raise RuntimeError(f"make_repo.py failed ({result.returncode}): {result.stderr.strip()}")
    print(f"repo: generated in {meta['seconds_total']} s ({meta['tracked_files']} files)")
    return meta


# -- in-process phases (runs in a child interpreter that has builder installed) ------------


def clocks() -> tuple[float, float]:
    """Wall clock, and CPU time of this process plus the children it has waited for."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = time.process_time() + children.ru_utime + children.ru_stime
    return time.perf_counter(), cpu


class Phases:
    """Exclusive wall and CPU time per label for wrapped functions."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self._stack: list[list[Any]] = []  # [wall, cpu] spent in wrapped callees

    def clear(self) -> None:
        self.wall.clear()
        self.cpu.clear()

    def wrap(self, fn: Callable[..., Any], label: Label) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            name = label if isinstance(label, str) else label(args)
            frame = [0.0, 0.0]
            self._stack.append(frame)
            wall0, cpu0 = clocks()
            try:
                return fn(*args, **kwargs)
            finally:
                wall1, cpu1 = clocks()
                wall, cpu = wall1 - wall0, cpu1 - cpu0
                self._stack.pop()
                self.wall[name] = self.wall.get(name, 0.0) + wall - frame[0]
                self.cpu[name] = self.cpu.get(name, 0.0) + cpu - frame[1]
                if self._stack:
                    self._stack[-1][0] += wall
                    self._stack[-1][1] += cpu

        return timed


Label = str | Callable[[tuple[Any, ...]], str]


def subprocess_label(args: tuple[Any, ...]) -> str:
    """Name a child process by what it does: proc.run(argv, ...)."""
    argv = [str(a) for a in args[0]] if args and isinstance(args[0], (list, tuple)) else []
    if argv[:1] != ["git"] or len(argv) < 2:
        return "other child processes"
    sub = argv[1]
    if sub == "ls-tree":
        if "-r" in argv:
            return "git ls-tree -r (list the image roots)"
        return "git ls-tree (look up paths not in the listing)"
    if sub == "cat-file" and "--batch" in argv:
        return "git cat-file --batch (blobs)"
    if sub in ("ls-files", "diff"):
        return f"git {sub}"
    return "git rev-parse and other small commands"


# (module, attribute, label): exclusive time, so a caller's label gets only its own time
PHASES: tuple[tuple[str, str, Label], ...] = (
    ("builder.workspace", "select", "select: own code (range, change list)"),
    ("builder.repo", "load_repo", "load_repo: own code (decode, config loop)"),
    ("builder.proc", "run", subprocess_label),
    ("builder.git", "Git.changed_paths", "changed paths: decode (Python)"),
    ("builder.git", "RevisionSnapshot.list_files", "list files: decode ls-tree output (Python)"),
    ("builder.git", "WorktreeSnapshot.list_files", "list files: decode ls-files output (Python)"),
    ("builder.git", "RevisionSnapshot.read", "read files: own code (Python)"),
    ("builder.git", "WorktreeSnapshot.read", "read files: filesystem (Python)"),
    ("builder.repo", "compute_image_dirs", "find image directories"),
    ("builder.config", "parse_settings", "parse YAML (builder.yaml, image.yaml)"),
    ("builder.config", "parse_image_config", "parse YAML (builder.yaml, image.yaml)"),
    ("builder.repo", "compute_images", "compute_images: own code (refs, Image objects)"),
    ("builder.dockerfiles", "parse_dockerfile", "parse Dockerfiles"),
    ("builder.graph", "compute_graph", "graph (networkx: cycles, topo order)"),
    ("builder.changes", "compute_affected", "map changed paths to images + dependants"),
    ("builder.changes", "compute_all", "map changed paths to images + dependants"),
    ("builder.render", "render_affected", "render --format names"),
)


def instrument(phases: Phases) -> list[str]:
    """Wrap each phase function everywhere builder refers to it; return what was missing."""
    missing = []
    modules = [m for n, m in sys.modules.items() if n == "builder" or n.startswith("builder.")]
    for module_name, attribute, label in PHASES:
        try:
            owner: Any = importlib.import_module(module_name)
            *path, name = attribute.split(".")
            for part in path:
                owner = getattr(owner, part)
            original = inspect.getattr_static(owner, name)
        except (ImportError, AttributeError):
            missing.append(f"{module_name}.{attribute}")
            continue
        if isinstance(original, (staticmethod, classmethod)):
            missing.append(f"{module_name}.{attribute}")
            continue
        timed = phases.wrap(original, label)
        setattr(owner, name, timed)
        if not path:  # a module-level function: rebind every `from x import f` copy too
            for module in modules:
                for key, value in vars(module).items():
                    if value is original:
                        setattr(module, key, timed)
    return missing


def phases_child(repo: Path, repeat: int) -> None:
    started = time.perf_counter()
    import builder.cli  # noqa: F401 - what the CLI pays before it does any work
    import builder.repo as repo_module
    from builder import context, workspace
    from builder.render import text as render

    imported = time.perf_counter() - started
    phases = Phases()
    missing = instrument(phases)
    overrides = repo_module.Overrides()

    environ = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    results: dict[str, Any] = {"import_s": imported, "missing": missing}
    results.update(load=[], select=[], worktree=[])

    def record(key: str, keep: bool, started: tuple[float, float]) -> None:
        ended = clocks()
        if keep:
            results[key].append(
                {
                    "wall": {"total": ended[0] - started[0], **phases.wall},
                    "cpu": {"total": ended[1] - started[1], **phases.cpu},
                }
            )
        phases.clear()

    for i in range(repeat + 1):  # the first run warms up and is dropped
        ctx = context.compute_context(repo, environ, head="HEAD")
        git_ = ctx.git
        phases.clear()
        started = clocks()
        head = git_.resolve("HEAD")
        loaded = repo_module.load_repo(workspace.snapshot_of(git_, head), overrides)
        record("load", i > 0, started)
        started = clocks()
        selection = workspace.select(ctx, base="HEAD~1", overrides=overrides)
        render.render_affected(selection, "names")
        record("select", i > 0, started)
        started = clocks()
        worktree = context.compute_context(repo, environ)
        workspace.select(worktree, base="HEAD~1", overrides=overrides)
        record("worktree", i > 0, started)
    results["images"] = len(loaded.graph.images)
    results["affected"] = len(selection.affected.images)
    print(json.dumps(results))


# -- reporting ------------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> str:
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def scenario_rows(scenarios: list[Scenario]) -> list[list[str]]:
    rows = []
    for s in scenarios:
        if not s.runs:
            continue
        if not s.good:
            rows.append([s.label, "0", "-", "-", "-", "-", "FAILED"])
            continue
        rows.append(
            [
                s.label,
                str(len(s.good)),
                f"{s.wall(min):.3f}",
                f"{s.wall(statistics.median):.3f}",
                f"{s.cpu(statistics.median):.3f}",
                f"{s.rss_max:.0f}",
                "ok" if s.ok else f"{len(s.runs) - len(s.good)} FAILED",
            ]
        )
    return rows


def phase_table(runs: list[dict[str, dict[str, float]]]) -> str:
    """Mean wall and CPU time per phase; shares are of the mean CPU total, which a busy
    machine disturbs less than wall clock (on an idle one the two agree closely)."""
    labels = {k for r in runs for k in r["wall"] if k != "total"}

    def mean(kind: str, label: str) -> float:
        return statistics.fmean(r[kind].get(label, 0.0) for r in runs)

    wall_total, cpu_total = mean("wall", "total"), mean("cpu", "total")
    out = []
    for label in sorted(labels, key=lambda label: -mean("cpu", label)):
        cpu = mean("cpu", label)
        out.append(
            [
                label,
                f"{mean('wall', label) * 1000:.0f}",
                f"{cpu * 1000:.0f}",
                f"{cpu / cpu_total:.0%}",
            ]
        )
    wall_rest = wall_total - sum(mean("wall", label) for label in labels)
    cpu_rest = cpu_total - sum(mean("cpu", label) for label in labels)
    out.append(
        [
            "(not attributed)",
            f"{wall_rest * 1000:.0f}",
            f"{cpu_rest * 1000:.0f}",
            f"{cpu_rest / cpu_total:.0%}",
        ]
    )
    out.append(["total", f"{wall_total * 1000:.0f}", f"{cpu_total * 1000:.0f}", "100%"])
    return table(["phase", "wall ms", "CPU ms", "CPU share"], out, right={1, 2, 3})


def profile(builder: list[str], repo: Path, env: dict[str, str], python: str) -> None:
    """cProfile scenario (a) once and print the heaviest functions."""
    with tempfile.TemporaryDirectory() as tmp:
        stats_file = Path(tmp) / "a.prof"
        command = [*builder, "affected", "--base", "HEAD~1", "--head", "HEAD", "--format", "names"]
        argv = [python, "-m", "cProfile", "-o", str(stats_file), *command]
        subprocess.run(argv, cwd=repo, env=env, capture_output=True, check=False)
        if not stats_file.exists():
            print("profile: cProfile produced no output")
            return
        imports = subprocess.run(
            [python, "-X", "importtime", *command],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        ).stderr
        rows = []
        for line in imports.splitlines():
            fields = line.removeprefix("import time:").split("|")
            if len(fields) == 3 and fields[1].strip().isdigit():
                rows.append((int(fields[1]), fields[2].rstrip()))
        print("\n== slowest imports of (a) (-X importtime, cumulative; nesting shown by indent)")
        for micros, name in sorted(rows, reverse=True)[:15]:
            print(f"  {micros / 1000:7.1f} ms  {name}")
        for order, count in (("cumulative", 30), ("tottime", 20)):
            buffer = io.StringIO()
            stats = pstats.Stats(str(stats_file), stream=buffer)
            stats.strip_dirs().sort_stats(order).print_stats(count)
            text = buffer.getvalue()
            print(f"\n== cProfile of (a), by {order} (profiling overhead inflates Python code)")
            print(text[text.find("   ncalls") :].rstrip())


# -- main -----------------------------------------------------------------------------------


def default_builder() -> str:
    local = ROOT / ".venv" / "bin" / "builder"
    return str(local) if local.exists() else (shutil.which("builder") or "builder")


def default_python() -> str:
    local = ROOT / ".venv" / "bin" / "python"
    return str(local) if local.exists() else sys.executable


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo-dir", type=Path, default=ROOT / ".bench" / "repo")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--files", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per scenario")
    parser.add_argument("--fresh", action="store_true", help="regenerate the repo")
    parser.add_argument("--scenarios", default="abcdefgh", help="letters to run (default all)")
    parser.add_argument("--profile", action="store_true", help="also cProfile scenario (a)")
    parser.add_argument("--builder", default=default_builder(), help="the builder executable")
    parser.add_argument("--python", default=default_python(), help="interpreter with builder")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--phases-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phases_child is not None:
        phases_child(args.phases_child, args.repeat)
        return 0
    repeat = max(1, args.repeat)
    repo = args.repo_dir.resolve()
    try:
        meta = ensure_repo(
            repo, images=args.images, files=args.files, seed=args.seed, fresh=args.fresh
        )
    except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"error: cannot build the benchmark repo: {exc}", file=sys.stderr)
        return 1

    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    env.pop("BUILDER_DEBUG", None)
    # An installed package has its bytecode; a checkout under PYTHONDONTWRITEBYTECODE (set
    # on some CI images) would compile every changed module on every run and charge it to
    # start-up. Write it once, as pip install does.
    subprocess.run(
        [args.python, "-m", "compileall", "-q", str(ROOT / "builder")],
        check=False,
        capture_output=True,
        env={k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"},
    )
    builder = [args.builder]
    affected = [*builder, "affected", "--base", "HEAD~1"]
    push = [*affected, "--head", "HEAD", "--format"]
    graph = [*builder, "graph", "--format", "json"]
    scenarios = [
        Scenario("a", "(a) affected HEAD~1..HEAD --format names", [*push, "names"]),
        Scenario(
            "h", "(h) the same, no parse cache (fresh clone)", [*push, "names"], no_cache=True
        ),
        Scenario("b", "(b) affected HEAD~1..HEAD --format json", [*push, "json"]),
        Scenario("c", "(c) graph --format json (working tree)", [*graph]),
        Scenario("g", "(g) graph --rev HEAD --format json", [*graph, "--rev", "HEAD"]),
        Scenario("d", "(d) affected HEAD~1..worktree, 1 edit", [*affected, "--format", "names"]),
        Scenario("f", "(f) builder --version (startup floor)", [*builder, "--version"]),
    ]
    print(
        f"machine: {os.cpu_count()} cpus, python {sys.version.split()[0]}, load average "
        f"{os.getloadavg()[0]:.2f}; {repeat} timed runs per scenario after 1 warm-up"
    )
    edited = repo / str(meta["worktree_file"])
    for scenario in scenarios:
        if scenario.key not in args.scenarios:
            continue
        original = edited.read_bytes() if scenario.key == "d" else None
        try:
            if original is not None:
                edited.write_bytes(original + b"# uncommitted edit\n")
            for i in range(repeat + 1):
                if scenario.no_cache:
                    (repo / ".git" / "builder" / "dockerfiles.json").unlink(missing_ok=True)
                run = measure(scenario.argv, cwd=repo, env=env)
                if i:
                    scenario.runs.append(run)
        except OSError as exc:  # builder missing or not executable: report, go on
            print(f"  {scenario.label}: cannot run {scenario.argv[0]}: {exc}")
            continue
        finally:
            if original is not None:
                edited.write_bytes(original)
        if scenario.good:
            lines = len(scenario.good[-1].stdout.splitlines())
            median = scenario.wall(statistics.median)
            print(f"  {scenario.label}: {median:.3f} s median, {lines} lines of output")
        if not scenario.ok:
            print(f"  {scenario.label}: {scenario.failure()}")

    load = os.getloadavg()[0]
    busy = " (the machine is busy: expect noisy timings)" if load > 0.5 else ""
    print(f"load average now {load:.2f}{busy}\n")
    print(
        table(
            [
                "scenario",
                "runs",
                "wall min s",
                "wall median s",
                "CPU median s",
                "peak RSS MB",
                "status",
            ],
            scenario_rows(scenarios),
            right={1, 2, 3, 4, 5},
        )
    )

    results: dict[str, Any] = {"meta": meta, "scenarios": {}}
    for s in scenarios:
        if s.runs:
            results["scenarios"][s.key] = {
                "label": s.label,
                "failure": s.failure(),
                "wall_s": [r.wall_s for r in s.runs],
                "cpu_s": [r.cpu_s for r in s.runs],
                "rss_mb": [r.rss_mb for r in s.runs],
                "returncodes": [r.returncode for r in s.runs],
            }

    first = scenarios[0]
    if first.good:
        names = set(first.good[-1].stdout.decode().split())
        expected = {str(meta["push_leaf_image"]), str(meta["push_base_image"])}
        print(
            f"\n(a) affects {len(names)} of {args.images} images; includes the touched leaf "
            f"and base image: {'yes' if expected <= names else 'NO'}"
        )
        json_run = next((s.good[-1] for s in scenarios if s.key == "b" and s.good), None)
        md = [p for p in meta["push_changed"] if str(p).endswith(".md")]
        if json_run is not None and md:
            try:
                hits = [
                    image["name"]
                    for image in json.loads(json_run.stdout)["affected"]
                    if any(reason.get("path") == md[0] for reason in image["reasons"])
                ]
            except (ValueError, KeyError, TypeError, AttributeError):
                hits = ["(cannot read the json output)"]
            print(f"the .dockerignore'd {md[0]} affects: {', '.join(hits) or 'nothing (right)'}")
        wall, rss = first.wall(statistics.median), first.rss_max
        verdict = {True: "meets", False: "MISSES"}
        print("targets for (a):")
        print(f"  wall  {wall:.3f} s median < {TARGET_WALL_S:g} s: {verdict[wall < TARGET_WALL_S]}")
        best = first.wall(min)
        print(f"        {best:.3f} s fastest run: {verdict[best < TARGET_WALL_S]}")
        print(f"  RSS   {rss:.0f} MB peak < {TARGET_RSS_MB:g} MB: {verdict[rss < TARGET_RSS_MB]}")

    if "e" in args.scenarios:
        argv_e = [args.python, str(Path(__file__).resolve()), "--phases-child", str(repo)]
        argv_e += ["--repeat", str(repeat)]
        run = measure(argv_e, cwd=repo, env=env)
        try:
            phases = json.loads(run.stdout)
        except ValueError:  # the child printed a traceback instead
            print(f"\n(e) in-process run failed: {run.stderr.decode(errors='replace')[-2000:]}")
        else:
            results["phases"] = phases
            print(
                f"\n(e) in process, mean of {repeat} runs after 1 warm-up "
                f"(importing builder.cli took {phases['import_s'] * 1000:.0f} ms; "
                f"child peak RSS {run.rss_mb:.0f} MB)"
            )
            if phases["missing"]:
                print("  not instrumented (renamed?): " + ", ".join(phases["missing"]))
            print(f"\nload_repo at HEAD ({phases['images']} images): what `graph` does")
            print(phase_table(phases["load"]))
            print(f"\nselect HEAD~1..HEAD + render ({phases['affected']} affected): what (a) does")
            print(phase_table(phases["select"]))
            print("\nselect HEAD~1..working tree: what (d) does (without the edit)")
            print(phase_table(phases["worktree"]))

    if args.profile:
        profile(builder, repo, env, args.python)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
