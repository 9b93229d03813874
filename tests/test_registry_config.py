"""Reading an image's config through the registry: ONBUILD triggers and labels, and the
shapes of answer that must never become a traceback or a silent "no triggers"."""

from __future__ import annotations

from typing import Any

import pytest

from builder.registry import Registry

INDEX = "sha256:" + "1" * 64
AMD64 = "sha256:" + "2" * 64
CONFIG = "sha256:" + "3" * 64
REF = f"127.0.0.1:5000/vendor/onbuild@{INDEX}"


class Canned(Registry):
    """Manifests and blobs from a table keyed by digest: no network."""

    def __init__(self, documents: dict[str, Any]) -> None:
        super().__init__()
        self.documents = documents

    def manifest(self, reference: str) -> dict[str, Any] | None:
        found = self.documents.get(reference.rpartition("@")[2])
        return found if isinstance(found, dict) else None

    def _get_json(self, target: Any, url: str) -> dict[str, Any] | None:  # noqa: ARG002
        found = self.documents.get(url.rpartition("/")[2])
        return found if isinstance(found, dict) else None


def index(*entries: Any) -> dict[str, Any]:
    return {"mediaType": "application/vnd.oci.image.index.v1+json", "manifests": list(entries)}


AMD64_ENTRY = {"digest": AMD64, "platform": {"os": "linux", "architecture": "amd64"}}
ATTESTATION = {"digest": "sha256:" + "4" * 64, "platform": {"os": "unknown"}}
MANIFEST = {"config": {"digest": CONFIG}, "layers": []}


def config(**inner: Any) -> dict[str, Any]:
    return {"architecture": "amd64", "config": inner}


def test_the_triggers_and_labels_of_the_first_real_platform() -> None:
    registry = Canned(
        {
            INDEX: index(ATTESTATION, AMD64_ENTRY),
            AMD64: MANIFEST,
            CONFIG: config(OnBuild=["COPY . /app/"], Labels={"a": "b"}),
        }
    )
    assert registry.triggers(REF) == ("COPY . /app/",)
    assert registry.labels(REF) == {"a": "b"}


def test_a_config_without_triggers_has_none() -> None:
    registry = Canned({INDEX: index(AMD64_ENTRY), AMD64: MANIFEST, CONFIG: config(OnBuild=None)})
    assert registry.triggers(REF) == ()
    single = Canned({INDEX: MANIFEST, CONFIG: config(Env=["A=1"])})  # no index: one manifest
    assert single.triggers(REF) == ()


@pytest.mark.parametrize(
    "documents",
    [
        {},  # not there
        {INDEX: {"manifests": None}},  # neither an index nor a manifest with a config
        {INDEX: index(ATTESTATION)},  # attestations only
        {INDEX: index({"digest": AMD64})},  # entries without a platform
        {INDEX: index({"platform": {"os": "linux"}})},  # an entry without a digest
        {INDEX: index(AMD64_ENTRY), AMD64: {"config": "sha256:x"}},  # a config that is text
        {INDEX: index(AMD64_ENTRY), AMD64: MANIFEST},  # the config blob is missing
        {INDEX: index(AMD64_ENTRY), AMD64: MANIFEST, CONFIG: config(OnBuild="COPY . /")},
    ],
)
def test_a_config_builder_cannot_read_is_no_answer_not_an_empty_one(
    documents: dict[str, Any],
) -> None:
    registry = Canned(documents)
    assert registry.triggers(REF) is None
    assert registry.labels(REF) == {}
