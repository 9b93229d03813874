"""Image reference parsing and the normalisation that decides whether two names are one image."""

from __future__ import annotations

import pytest

from builder.refs import InvalidReference, parse_reference, repository_of

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "repository", "tag", "digest"),
    [
        ("python", "docker.io/library/python", None, None),
        ("python:3.12-slim", "docker.io/library/python", "3.12-slim", None),
        ("library/python", "docker.io/library/python", None, None),
        ("docker.io/python", "docker.io/library/python", None, None),
        ("docker.io/library/python:3", "docker.io/library/python", "3", None),
        ("index.docker.io/library/python", "docker.io/library/python", None, None),
        ("index.docker.io/python", "docker.io/library/python", None, None),
        ("registry-1.docker.io/acme/api", "docker.io/acme/api", None, None),
        ("acme/api", "docker.io/acme/api", None, None),
        ("acme/team/api:1.0", "docker.io/acme/team/api", "1.0", None),
        (f"acme/api@{DIGEST}", "docker.io/acme/api", None, DIGEST),
        (f"acme/api:1.0@{DIGEST}", "docker.io/acme/api", "1.0", DIGEST),
        ("ghcr.io/acme/api:edge", "ghcr.io/acme/api", "edge", None),
        ("ghcr.io/api", "ghcr.io/api", None, None),  # library/ is Docker Hub only
        ("localhost:5000/api:dev", "localhost:5000/api", "dev", None),
        ("localhost/api", "localhost/api", None, None),
        ("localhost", "docker.io/library/localhost", None, None),
        ("127.0.0.1:5000/a/b", "127.0.0.1:5000/a/b", None, None),
        ("[::1]:5000/api", "[::1]:5000/api", None, None),
        (
            "my-registry.example.com:443/x_y/a.b-c",
            "my-registry.example.com:443/x_y/a.b-c",
            None,
            None,
        ),
    ],
)
def test_parse_reference_normalises(
    text: str, repository: str, tag: str | None, digest: str | None
) -> None:
    ref = parse_reference(text)
    assert (ref.repository, ref.tag, ref.digest) == (repository, tag, digest)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "invalid image reference ''"),
        (" python", "invalid image reference"),
        ("python ", "invalid image reference"),
        ("Python", "repository names must be lowercase"),
        ("acme/API:1", "repository names must be lowercase"),
        ("python:", "invalid tag ''"),
        ("python:has/slash", "invalid registry 'python:has'"),
        ("python:-dash", "invalid tag '-dash'"),
        ("python@sha256:abc", "invalid digest"),
        ("python@", "invalid digest"),
        ("a//b", "invalid image reference"),
        ("-a/b", "invalid image reference"),
        ("a/b/", "invalid image reference"),
        ("bad_host:x/y", "invalid registry"),
        ("$VAR", "invalid image reference"),
    ],
)
def test_parse_reference_rejects(text: str, message: str) -> None:
    with pytest.raises(InvalidReference) as info:
        parse_reference(text)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("registry", "namespace", "name", "repository"),
    [
        ("docker.io", "acme", "api", "docker.io/acme/api"),
        ("docker.io", None, "api", "docker.io/library/api"),
        ("index.docker.io", "acme", "api", "docker.io/acme/api"),
        ("ghcr.io", "acme/team", "api", "ghcr.io/acme/team/api"),
        ("ghcr.io", None, "api", "ghcr.io/api"),
        ("localhost:5000", "acme", "etl-base", "localhost:5000/acme/etl-base"),
    ],
)
def test_repository_of(registry: str, namespace: str | None, name: str, repository: str) -> None:
    assert repository_of(registry, namespace, name) == repository


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("python", "docker.io/library/python:3.12"),
        ("python:3.11", f"index.docker.io/library/python@{DIGEST}"),
        ("acme/api", "docker.io/acme/api:latest"),
    ],
)
def test_spellings_of_one_image_share_a_repository(a: str, b: str) -> None:
    assert parse_reference(a).repository == parse_reference(b).repository
