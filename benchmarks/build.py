"""builder's own overhead over plain `docker buildx bake`, and one leaf versus everything.

    eval "$(scripts/engine env)"; .venv/bin/python benchmarks/build.py [--repeat 3]

Works on a fresh clone of this repository (its demo images) pushed to a throwaway
namespace of the loopback registry. Needs the engine up and the upstream bases seeded.

1. Overhead: with BuildKit's cache warm, time `docker buildx bake --push` of the bake file
   `builder build --all --dry-run` prints, then `builder build --all --push` of the same
   targets. Both do the same (cached) builds and pushes; the difference is builder's own
   cost: planning, the engine check, one bake invocation per image, reading each pushed
   manifest back.
2. One leaf versus everything, as a fresh CI runner sees it (`--no-cache`): change one ETL
   job's code and time `builder build` (it rebuilds that job), then time
   `builder build --all`.

This is a report, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILDER = [sys.executable, "-m", "builder"]
GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.invalid",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.invalid",
}


def timed(argv: list[str], cwd: Path, env: dict[str, str], attempts: int = 3) -> float:
    """Wall time of one successful run; the loopback registry's rare 500 on a tag being
    rewritten gets a second try, for plain bake as builder's own retry gives itself."""
    for attempt in range(1, attempts + 1):
        started = time.perf_counter()
        done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - started
        if done.returncode == 0:
            return elapsed
        if attempt == attempts:
            sys.exit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
        print(f"retrying after a failure: {done.stderr.strip().splitlines()[-1]}", file=sys.stderr)
    raise AssertionError("unreachable")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    env = {**os.environ, **GIT_ENV, "CI": "true"}
    env.pop("GITHUB_ACTIONS", None)
    with tempfile.TemporaryDirectory(prefix="builder-bench-") as tmp:
        clone = Path(tmp) / "repo"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        namespace = f"bench{uuid.uuid4().hex[:6]}"
        env["BUILDER_NAMESPACE"] = namespace
        # Keys off for the comparison: plain bake has no registry lookups either.
        build_all = [*BUILDER, "build", "--all", "--no-reconcile"]
        timed(build_all, clone, env)  # warm BuildKit's cache and the registry

        plan = subprocess.run(
            [*build_all, "--dry-run"],
            cwd=clone,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        bake_file = Path(tmp) / "docker-bake.json"
        bake_file.write_text(plan[plan.index("{") :], encoding="utf-8")
        bake = ["docker", "buildx", "bake", "-f", str(bake_file), "--progress", "plain"]

        bake_times = [timed(bake, clone, env) for _ in range(args.repeat)]
        builder_times = [timed(build_all, clone, env) for _ in range(args.repeat)]
        bake_median = statistics.median(bake_times)
        builder_median = statistics.median(builder_times)

        leaf = clone / "images/etl-customers/job.py"
        leaf.write_text(leaf.read_text(encoding="utf-8") + "# bench\n", encoding="utf-8")
        subprocess.run(
            ["git", "commit", "-qam", "bench: touch one leaf"], cwd=clone, env=env, check=True
        )
        one_leaf = timed([*BUILDER, "build", "--no-reconcile", "--no-cache"], clone, env)
        everything = timed([*build_all, "--no-cache"], clone, env)

    report = {
        "plain bake, warm (median s)": round(bake_median, 2),
        "builder build --all, warm (median s)": round(builder_median, 2),
        "builder overhead (s)": round(builder_median - bake_median, 2),
        "one leaf changed, --no-cache (s)": round(one_leaf, 2),
        "everything, --no-cache (s)": round(everything, 2),
        "leaf / everything": round(one_leaf / everything, 2),
    }
    width = max(len(k) for k in report)
    for key, value in report.items():
        print(f"{key:<{width}}  {value}")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
