"""Content keys on the big generated repo: computing them, and asking the registry.

    eval "$(scripts/engine env)"; .venv/bin/python benchmarks/keys.py [--repeat 5]

Uses the repo benchmarks/run.py generates (.bench/repo: 1,000 images, 50,000 files; made
here too when missing). Reports:

1. computing every image's key without the registry (git listing of object ids, context
   hashes with .dockerignore applied, the graph walk): the 1 s target of issue 5;
2. reconcile against the loopback registry: how many HEAD requests, how long, with the
   lookups batched on a thread pool (every key is missing: the worst case, one request
   per image plus one per external base).

This is a report, not a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.run import ensure_repo  # noqa: E402 - after the path set-up above
from builder.context import compute_context  # noqa: E402
from builder.keys import compute_keys  # noqa: E402
from builder.reconcile import fetch_key_report  # noqa: E402
from builder.registry import Registry  # noqa: E402
from builder.repo import Overrides  # noqa: E402
from builder.workspace import select  # noqa: E402


class LoopbackClient(Registry):
    """Sends every lookup to the loopback registry: the generated repo names docker.io,
    which this machine cannot reach; the paths and the request count stay the same."""

    address = ""

    @staticmethod
    def endpoint(domain: str) -> str:  # noqa: ARG004 - same signature as the real one
        return f"http://{LoopbackClient.address}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--registry", default=os.environ.get("BUILDER_TEST_REGISTRY", ""))
    args = parser.parse_args()
    repo = ROOT / ".bench" / "repo"
    ensure_repo(repo, images=1000, files=50_000, seed=1, fresh=False)
    ctx = compute_context(repo, {**os.environ, "CI": "true"}, head="HEAD")
    git = ctx.git
    selection = select(ctx, base="HEAD~1", overrides=Overrides())
    graph = selection.repo.graph

    listing, computing = [], []
    for _ in range(args.repeat):
        started = time.perf_counter()
        ids = git.file_ids(selection.range.head)
        listed = time.perf_counter()
        keys = compute_keys(graph, ids)
        listing.append(listed - started)
        computing.append(time.perf_counter() - listed)
    print(f"images: {len(graph.images)}, files: {len(ids)}, keys: {len(keys)}")
    print(f"git object ids (ls-tree):   median {statistics.median(listing):.3f} s")
    print(f"compute_keys:               median {statistics.median(computing):.3f} s")
    total = [a + b for a, b in zip(listing, computing, strict=True)]
    print(f"keys without the registry:  median {statistics.median(total):.3f} s (target < 1 s)")

    if not args.registry:
        print("no registry (set BUILDER_TEST_REGISTRY or --registry): lookups not measured")
        return
    LoopbackClient.address = args.registry
    for jobs in (1, 16):
        client = LoopbackClient()
        report = fetch_key_report(git, selection, client, jobs=jobs)
        client.close()
        print(
            f"reconcile, {jobs:>2} at once: {report.requests} HEAD requests in "
            f"{report.seconds:.2f} s ({len(report.present)} keys present)"
        )


if __name__ == "__main__":
    main()
