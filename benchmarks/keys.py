"""Content keys on the big generated repo: computing them, and asking the registry.

    eval "$(scripts/engine env)"; .venv/bin/python benchmarks/keys.py [--repeat 5]

Uses the repo benchmarks/run.py generates (.bench/repo: 1,000 images, 50,000 files; made
here too when missing). Reports:

1. computing every image's key without the registry (git listing of object ids, context
   hashes with .dockerignore applied, the graph walk): the 1 s target of issue 5;
2. reconcile against the loopback registry: how many HEAD requests, how long, with the
   lookups batched on a thread pool (every key is missing: the worst case, one request
   per image plus one per external base);
3. reconcile that scales: the state artifact a push records (image -> key -> digest, and
   the external bases' digests) as the previous commit's push would have left it, read
   first, then only the images whose key it lacks asked about. Target for a push touching
   a base: at most 2 + affected requests, under 0.8 s.

This is a report, not a test.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.run import ensure_repo  # noqa: E402 - after the path set-up above
from builder.context import compute_context  # noqa: E402
from builder.keys import compute_keys  # noqa: E402
from builder.reconcile import (  # noqa: E402
    State,
    fetch_key_report,
    load_state,
    save_state,
    state_tags,
)
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


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (git): a shared machine's wall
    clock says more about the neighbours than about builder."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


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

    # The state the previous commit's push left: every key of HEAD~1 built, every external
    # base recorded (the generated repo's bases live on Docker Hub, which cannot be asked
    # here: stand-in digests, the same for both commits).
    namespace = f"bench{os.getpid()}"
    overrides = Overrides(namespace=namespace)
    before_ctx = compute_context(repo, {**os.environ, "CI": "true"}, head="HEAD~1")
    before = select(before_ctx, base="HEAD~2", overrides=overrides, everything="--all")
    externals = {r for i in before.repo.graph.images.values() for r in i.external_parents}
    bases = {
        r: r.partition("@")[2] or "sha256:" + hashlib.sha256(r.encode()).hexdigest()
        for r in externals
    }
    before_keys = compute_keys(
        before.repo.graph, git.file_ids(before.range.head), base_digests=bases
    )
    state = State(
        images={n: (k, "sha256:" + "0" * 64) for n, k in before_keys.items()},
        bases=bases,
        revision=before.range.head,
        keys=before_keys,
        onbuild=dict.fromkeys(bases, False),  # what that push read in each base's config
    )
    client = LoopbackClient()
    settings = before.repo.settings
    save_state(client, settings.prefix, "main", state)
    client.close()
    now = select(ctx, base="HEAD~1", overrides=overrides)
    rounds = []
    for _ in range(args.repeat):
        client = LoopbackClient()
        started, cpu = time.perf_counter(), cpu_seconds()
        loaded = load_state(client, settings.prefix, state_tags("main", "main"))
        report = fetch_key_report(git, now, client, state=loaded, fresh_bases=False)
        rounds.append((time.perf_counter() - started, cpu_seconds() - cpu, client.requests, report))
        client.close()
    seconds = statistics.median(r[0] for r in rounds)
    cpu = statistics.median(r[1] for r in rounds)
    requests, report = rounds[-1][2], rounds[-1][3]
    changed = sorted(n for n in report.keys if n not in report.present)
    print(
        f"reconcile with the state artifact: {requests} requests ({requests - report.requests} "
        f"for the state, {report.requests} for {len(changed)} changed keys; "
        f"git affected {len(now.affected.images)}) in median {seconds:.2f} s wall, "
        f"{cpu:.2f} s CPU with git's (target: 2 + affected, < 0.8 s)"
    )


if __name__ == "__main__":
    main()
