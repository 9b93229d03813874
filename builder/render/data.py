"""JSON for machines: the affected set, the graph, plans and the metadata file (pure)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from builder.graph import ImageGraph
from builder.reports import BuildReport, KeyReport, Selection, Signature, TestResult

if TYPE_CHECKING:
    from builder.plan import BuildPlan
    from builder.promotion import PromoteReport


def affected_json(selection: Selection) -> dict[str, Any]:
    rng = selection.range
    return {
        "base": rng.base,
        "head": rng.head,
        "base_label": rng.base_label,
        "head_label": rng.head_label,
        "affected": [
            {
                "name": image.name,
                "path": str(image.path),
                "reasons": [r.to_json() for r in image.reasons],
            }
            for image in selection.affected.images
        ],
        "removed": list(selection.affected.removed),
        "warnings": list(selection.warnings),
    }


def affected_keys_json(keys: KeyReport) -> dict[str, Any]:
    return {name: {"key": key, "present": name in keys.present} for name, key in keys.keys.items()}


def graph_json(graph: ImageGraph) -> dict[str, Any]:
    return {
        "nodes": [
            {
                "name": name,
                "path": str(graph.images[name].directory),
                "repository": graph.images[name].repository,
                "external_parents": list(graph.images[name].external_parents),
            }
            for name in graph.order
        ],
        "edges": [{"from": a, "to": b} for a, b in graph.edges()],
    }


def plan_json(plan: BuildPlan) -> dict[str, Any]:
    return {
        "waves": [list(w) for w in plan.waves],
        "images": [
            {
                "name": b.name,
                "platforms": list(b.platforms),
                "tags": list(b.tags),
                "requires": list(b.requires),
            }
            for b in plan.images
        ],
        "unchanged": list(plan.unchanged),
        "removed": list(plan.removed),
    }


def test_json(test: TestResult) -> dict[str, Any]:
    """One platform's test result: what a JUnit test case or a dashboard needs."""
    data: dict[str, Any] = {
        "platform": test.platform,
        "result": test.verdict,
        "seconds": round(test.seconds, 3),
        "commands": test.commands,
    }
    if test.detail:
        data["detail"] = test.detail
    if test.output:
        data["output"] = test.output
    return data


def metadata_json(report: BuildReport) -> dict[str, Any]:
    """The hand-off to Airflow and Argo: per image, status, tags, digest and `pinned`, and
    its tests per platform (empty when it has none, or this run did not test it); and for
    admission policies, the attestations per platform and the signature with the exact
    `cosign verify` command."""
    images: dict[str, Any] = {}
    for name, result in report.results.items():
        images[name] = {
            "status": result.status,
            "reason": result.reason,
            "repository": result.repository or None,
            "tags": list(result.tags),
            "digest": result.digest,
            "pinned": result.pinned,
            "platforms": list(result.platforms),
            "tests": [test_json(t) for t in result.tests],
            "attestations": {
                a.platform: {
                    "manifest": a.manifest,
                    "provenance": a.provenance,
                    "sbom": list(a.sboms),
                }
                for a in result.attestations
            },
            "signature": signature_json(result.signature),
        }
    return {
        "revision": report.revision.sha,
        "base": report.selection.range.base,
        "push": report.plan.push,
        "images": images,
        "removed": list(report.plan.removed),
    }


def signature_json(signature: Signature | None) -> dict[str, Any] | None:
    if signature is None:
        return None
    return {
        "reference": signature.reference,
        "digest": signature.digest,
        "signer": signature.signer,
        "verify": signature.verify,
    }


# A promotion's verdicts in the metadata file's words, so `builder pin` reads the file as
# it reads a build's: moved and already-there digests pin; anything else holds the set.
_PROMOTED_STATUS = {
    "moved": "tagged",
    "already there": "unchanged",
    "would move": "planned",
    "missing": "failed",
    "incomplete": "failed",
    "failed": "failed",
    "not moved": "skipped",
}


def promote_json(report: PromoteReport) -> dict[str, Any]:
    """The promoted set in the metadata file's shape, with each image's promotion beside."""
    images: dict[str, Any] = {}
    for result in report.results:
        there = result.status in ("moved", "already there")
        images[result.name] = {
            "status": _PROMOTED_STATUS[result.status],
            "promotion": result.status,
            "reason": result.reason,
            "repository": result.repository,
            "tags": [result.target] if there else [],
            "digest": result.digest,
            "pinned": result.pinned,
            "previous": result.previous,
            "platforms": list(result.platforms),
        }
    return {
        # The build's commit when promoting a metadata file; a set from tags has no single
        # commit (each image's last build left its tag), so it says which tag it now is.
        "revision": report.revision or f"tag {report.to}",
        "base": None,
        "push": not report.dry_run,
        "promoted": {"from": report.from_tag or report.source, "to": report.to},
        "images": images,
        "removed": [],
    }
