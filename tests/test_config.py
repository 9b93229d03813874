"""builder.yaml and image.yaml: defaults, every key, and one-line errors that say where."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

import pytest

from builder.config import (
    parse_image_config,
    parse_settings,
    validate_namespace,
    validate_platform,
    validate_registry,
)
from builder.errors import ConfigError
from builder.model import ImageConfig, Settings

API = PurePosixPath("images/api")


def test_settings_defaults() -> None:
    settings = parse_settings("")
    assert settings == Settings()
    assert (settings.registry, settings.namespace, settings.image_roots) == (
        "docker.io",
        None,
        ("base-images", "images"),
    )
    assert settings.platforms == ("linux/amd64", "linux/arm64")
    assert settings.default_branch == "main"
    assert settings.prefix == "docker.io"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("# nothing but a comment\n", Settings()),
        ("registry: ghcr.io\n", Settings(registry="ghcr.io")),
        ("registry: localhost:5000\n", Settings(registry="localhost:5000")),
        ("namespace: acme\n", Settings(namespace="acme")),
        ("namespace: acme/team\n", Settings(namespace="acme/team")),
        ("image_roots: [apps, ./libs/images/]\n", Settings(image_roots=("apps", "libs/images"))),
        ("image_roots: [a, a]\n", Settings(image_roots=("a",))),
        ("platforms: [linux/arm64]\n", Settings(platforms=("linux/arm64",))),
        (
            "platforms: [linux/arm/v7, linux/arm/v7, linux/amd64]\n",
            Settings(platforms=("linux/arm/v7", "linux/amd64")),
        ),
        ("default_branch: trunk\n", Settings(default_branch="trunk")),
        (
            "build_args:\n  PY: '3.12'\n  N: 2\n  F: 1.5\n",
            Settings(build_args=(("F", "1.5"), ("N", "2"), ("PY", "3.12"))),
        ),
        ("cache: false\n", Settings(cache=False)),
    ],
)
def test_settings_keys(text: str, expected: Settings) -> None:
    assert parse_settings(text) == expected


def test_settings_prefix() -> None:
    assert parse_settings("registry: ghcr.io\nnamespace: acme\n").prefix == "ghcr.io/acme"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "registy: x\n",
            "builder.yaml:1: unknown key 'registy' (did you mean 'registry'?)",
            id="did-you-mean",
        ),
        pytest.param(
            "registry: ghcr.io\nplatform: [linux/amd64]\n",
            "builder.yaml:2: unknown key 'platform' (did you mean 'platforms'?)",
            id="did-you-mean-line",
        ),
        pytest.param(
            "zzz: 1\n",
            "builder.yaml:1: unknown key 'zzz' (known keys: registry, namespace, image_roots, "
            "platforms, default_branch, build_args, cache, builder, consumers, smoke_test, "
            "not_images, provenance, sbom, signing)",
            id="unknown-key",
        ),
        pytest.param(
            "registry: [a]\n",
            "builder.yaml:1: 'registry' must be a non-empty string, got a list",
            id="registry-type",
        ),
        pytest.param(
            "registry: 12\n",
            "builder.yaml:1: 'registry' must be a non-empty string, got int 12",
            id="registry-int",
        ),
        pytest.param(
            "default_branch: ''\n",
            "builder.yaml:1: 'default_branch' must be a non-empty string, got an empty string",
            id="empty-string",
        ),
        pytest.param(
            "namespace:\n",
            "builder.yaml:1: 'namespace' must be a non-empty string, got nothing",
            id="null",
        ),
        pytest.param(
            "platforms: linux/amd64\n",
            "builder.yaml:1: 'platforms' must be a list of non-empty strings, got a string",
            id="platforms-type",
        ),
        pytest.param(
            "image_roots: {a: b}\n",
            "builder.yaml:1: 'image_roots' must be a list of non-empty strings, got a mapping",
            id="roots-type",
        ),
        pytest.param(
            "cache: 1\n", "builder.yaml:1: 'cache' must be true or false, got int 1", id="cache"
        ),
        pytest.param(
            "build_args: [A]\n",
            "builder.yaml:1: 'build_args' must be a mapping of NAME: value, got a list",
            id="build-args-type",
        ),
        pytest.param(
            "build_args: {A: [1]}\n",
            "builder.yaml:1: build arg 'A' must be a string or number, got a list",
            id="build-arg-value",
        ),
        pytest.param(
            "build_args: {A: true}\n",
            "builder.yaml:1: build arg 'A' must be a string or number, got a boolean",
            id="build-arg-bool",
        ),
        pytest.param(
            "build_args: {1A: x}\n",
            "builder.yaml:1: invalid build arg name '1A'",
            id="build-arg-name",
        ),
        pytest.param(
            "\n\nplatforms: [linux]\n",
            "builder.yaml:3: invalid platform 'linux' "
            "(expected os/arch[/variant], e.g. linux/arm64)",
            id="platform",
        ),
        pytest.param(
            "platforms: []\n", "builder.yaml:1: 'platforms' must not be empty", id="no-platforms"
        ),
        pytest.param(
            "image_roots: []\n", "builder.yaml:1: 'image_roots' must not be empty", id="no-roots"
        ),
        pytest.param(
            "image_roots: [../x]\n",
            "builder.yaml:1: image root '../x' must be a directory inside the repository",
            id="root-outside",
        ),
        pytest.param(
            "image_roots: [/abs]\n",
            "builder.yaml:1: image root '/abs' must be a directory inside the repository",
            id="root-absolute",
        ),
        pytest.param(
            "image_roots: [.]\n",
            "builder.yaml:1: image root '.' must be a directory inside the repository",
            id="root-dot",
        ),
        pytest.param(
            "registry: acme\n",
            "builder.yaml:1: invalid registry 'acme' (a host name such as docker.io, ghcr.io or "
            "localhost:5000; put an organisation in 'namespace')",
            id="registry-without-host",
        ),
        pytest.param(
            "registry: 'ghcr.io/Acme'\n",
            "builder.yaml:1: invalid registry 'ghcr.io/Acme' (a host name such as docker.io, "
            "ghcr.io or localhost:5000; put an organisation in 'namespace')",
            id="registry-invalid",
        ),
        pytest.param(
            "namespace: Acme\n",
            "builder.yaml:1: invalid namespace 'Acme' "
            "(lowercase letters, digits and separators, e.g. acme)",
            id="namespace",
        ),
        pytest.param(
            "registry: docker.io\nnamespace: [acme\n",
            "builder.yaml:3: invalid YAML: while parsing a flow sequence started on line 2, "
            "expected ',' or ']', but got '<stream end>'",
            id="yaml-unclosed",
        ),
        pytest.param(
            "registry: ghcr.io\n  namespace: acme\n",
            "builder.yaml:2: invalid YAML: mapping values are not allowed here",
            id="yaml-indent",
        ),
        pytest.param(
            "\tregistry: x\n",
            "builder.yaml:1: invalid YAML: found character '\\t' that cannot start any token",
            id="yaml-tab",
        ),
        pytest.param(
            "a: &x 1\nb: *y\n",
            "builder.yaml:2: invalid YAML: found undefined alias 'y'",
            id="alias",
        ),
        pytest.param(
            "registry: a\n---\nregistry: b\n",
            "builder.yaml:2: invalid YAML: expected a single document in the stream, "
            "but found another document",
            id="two-documents",
        ),
        pytest.param(
            "- registry\n",
            "builder.yaml:1: expected a mapping of settings at the top level",
            id="not-a-mapping",
        ),
        pytest.param(
            "just text\n",
            "builder.yaml:1: expected a mapping of settings at the top level",
            id="scalar",
        ),
        pytest.param("[a]: b\n", "builder.yaml:1: keys must be plain strings", id="complex-key"),
        pytest.param(
            "cache: true\ncache: false\n", "builder.yaml:2: duplicate key 'cache'", id="duplicate"
        ),
        pytest.param(
            "build_args:\n  A: 1\n  A: 2\n",
            "builder.yaml:3: duplicate key 'A'",
            id="nested-duplicate",
        ),
        pytest.param(
            "registry: 2001-13-01\n",
            "builder.yaml:1: invalid value for 'registry': month must be in 1..12",
            id="bad-date",
        ),
        pytest.param(
            "cache: !!python/object:os.system x\n",
            "builder.yaml:1: invalid value for 'cache': could not determine a constructor for "
            "the tag 'tag:yaml.org,2002:python/object:os.system'",
            id="unsafe-tag",
        ),
    ],
)
def test_settings_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(text)
    assert str(info.value) == message
    assert info.value.exit_code == 2


def image(text: str | None, directory: PurePosixPath = API, **settings: object) -> ImageConfig:
    return parse_image_config(text, directory=directory, settings=Settings(**settings))  # type: ignore[arg-type]


def test_image_defaults() -> None:
    assert image(None) == ImageConfig(
        name="api",
        directory=API,
        dockerfile=API / "Dockerfile",
        context=API,
        platforms=("linux/amd64", "linux/arm64"),
    )


@pytest.mark.parametrize("text", ["", "# only a comment\n", "{}\n"])
def test_empty_image_yaml_is_defaults_with_a_file(text: str) -> None:
    config = image(text)
    assert config.config_file == API / "image.yaml"
    assert (config.name, config.dockerfile, config.context) == ("api", API / "Dockerfile", API)


@pytest.mark.parametrize(
    ("text", "field", "value"),
    [
        ("name: web\n", "name", "web"),
        ("name: web.v2_x-y\n", "name", "web.v2_x-y"),
        ("dockerfile: Dockerfile.prod\n", "dockerfile", API / "Dockerfile.prod"),
        (
            "dockerfile: ../shared/Dockerfile\n",
            "dockerfile",
            PurePosixPath("images/shared/Dockerfile"),
        ),
        ("dockerfile: ./build/../Dockerfile\n", "dockerfile", API / "Dockerfile"),
        ("context: ../..\n", "context", PurePosixPath(".")),
        ("context: ..\n", "context", PurePosixPath("images")),
        ("context: src\n", "context", API / "src"),
        ("platforms: [linux/arm64]\n", "platforms", ("linux/arm64",)),
        ("target: prod\n", "target", "prod"),
        (
            "watch: ['libs/common/**', '!libs/common/*.md']\n",
            "watch",
            ("libs/common/**", "!libs/common/*.md"),
        ),
        ("depends_on: [web, base, web]\n", "depends_on", ("base", "web")),
        ("build_args: {PY: 3.12}\n", "build_args", (("PY", "3.12"),)),
    ],
)
def test_image_keys(text: str, field: str, value: object) -> None:
    assert getattr(image(text), field) == value


def test_image_platforms_default_to_settings() -> None:
    assert image(None, platforms=("linux/riscv64",)).platforms == ("linux/riscv64",)


def test_image_build_args_override_settings_build_args() -> None:
    config = image("build_args:\n  B: from-image\n  C: 3\n", build_args=(("A", "1"), ("B", "2")))
    assert config.build_args == (("A", "1"), ("B", "from-image"), ("C", "3"))


@pytest.mark.parametrize(
    ("text", "directory", "message"),
    [
        pytest.param(
            "dependson: [a]\n",
            API,
            "images/api/image.yaml:1: unknown key 'dependson' (did you mean 'depends_on'?)",
            id="did-you-mean",
        ),
        pytest.param(
            "name: api\nbuild-args: {}\n",
            API,
            "images/api/image.yaml:2: unknown key 'build-args' (did you mean 'build_args'?)",
            id="did-you-mean-line",
        ),
        pytest.param(
            "name: api\nname: web\n",
            API,
            "images/api/image.yaml:2: duplicate key 'name'",
            id="duplicate",
        ),
        pytest.param(
            "name: API\n",
            API,
            "images/api/image.yaml:1: invalid image name 'API' "
            "(lowercase letters, digits, '.', '_' and '-'; set 'name' in image.yaml)",
            id="invalid-name",
        ),
        pytest.param(
            None,
            PurePosixPath("images/My Image"),
            "images/My Image: invalid image name 'My Image' "
            "(lowercase letters, digits, '.', '_' and '-'; set 'name' in image.yaml)",
            id="invalid-directory-name",
        ),
        pytest.param(
            "name: [a]\n",
            API,
            "images/api/image.yaml:1: 'name' must be a non-empty string, got a list",
            id="name-type",
        ),
        pytest.param(
            "context: ../../..\n",
            API,
            "images/api/image.yaml:1: 'context' '../../..' points outside the repository",
            id="context-outside",
        ),
        pytest.param(
            "context: ../../../repo/images\n",
            API,
            "images/api/image.yaml:1: 'context' '../../../repo/images' "
            "points outside the repository",
            id="context-outside-and-back",
        ),
        pytest.param(
            "context: /srv/app\n",
            API,
            "images/api/image.yaml:1: 'context' must be relative to the image directory, "
            "got absolute '/srv/app'",
            id="context-absolute",
        ),
        pytest.param(
            "\ndockerfile: ../../../Dockerfile\n",
            API,
            "images/api/image.yaml:2: 'dockerfile' '../../../Dockerfile' "
            "points outside the repository",
            id="dockerfile-outside",
        ),
        pytest.param(
            "dockerfile: /Dockerfile\n",
            API,
            "images/api/image.yaml:1: 'dockerfile' must be relative to the image directory, "
            "got absolute '/Dockerfile'",
            id="dockerfile-absolute",
        ),
        pytest.param(
            "platforms: [linux/amd64, windows]\n",
            API,
            "images/api/image.yaml:1: invalid platform 'windows' "
            "(expected os/arch[/variant], e.g. linux/arm64)",
            id="platform",
        ),
        pytest.param(
            "watch: libs/**\n",
            API,
            "images/api/image.yaml:1: 'watch' must be a list of non-empty strings, got a string",
            id="watch-type",
        ),
        pytest.param(
            "watch: ['a\\']\n",
            API,
            "images/api/image.yaml:1: invalid watch pattern 'a\\\\' "
            "(use gitignore-style globs relative to the repo root, e.g. libs/common/**)",
            id="watch-pattern",
        ),
        pytest.param(
            "depends_on: base\n",
            API,
            "images/api/image.yaml:1: 'depends_on' must be a list of non-empty strings, "
            "got a string",
            id="depends-on-type",
        ),
        pytest.param(
            "target: ''\n",
            API,
            "images/api/image.yaml:1: 'target' must be a non-empty string, got an empty string",
            id="target-empty",
        ),
        pytest.param(
            "build_args:\n  A: 1\n  A: 2\n",
            API,
            "images/api/image.yaml:3: duplicate key 'A'",
            id="nested-duplicate",
        ),
        pytest.param(
            "name: [unclosed\n",
            API,
            "images/api/image.yaml:2: invalid YAML: while parsing a flow sequence "
            "started on line 1, expected ',' or ']', but got '<stream end>'",
            id="yaml",
        ),
    ],
)
def test_image_errors(text: str | None, directory: PurePosixPath, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        image(text, directory)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "value", ["docker.io", "ghcr.io", "localhost", "localhost:5000", "r.io/org"]
)
def test_validate_registry_accepts(value: str) -> None:
    assert validate_registry(value) == value


@pytest.mark.parametrize("value", ["acme", "", "Ghcr.io/X", "a b", "docker.io/"])
def test_validate_registry_rejects(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_registry(value, source="--registry")
    assert str(info.value).startswith(f"--registry: invalid registry {value!r}")


@pytest.mark.parametrize(
    ("value", "ok"), [("acme", True), ("a/b", True), ("Acme", False), ("a//b", False)]
)
def test_validate_namespace(value: str, ok: bool) -> None:
    if ok:
        assert validate_namespace(value) == value
    else:
        with pytest.raises(ConfigError):
            validate_namespace(value)


@pytest.mark.parametrize(
    ("value", "ok"),
    [("linux/amd64", True), ("linux/arm/v7", True), ("linux", False), ("Linux/AMD64", False)],
)
def test_validate_platform(value: str, ok: bool) -> None:
    if ok:
        assert validate_platform(value) == value
    else:
        with pytest.raises(ConfigError):
            validate_platform(value)


def test_watch_globs_on_re2_match_as_pathspecs_own_backend() -> None:
    import random
    import warnings

    import pathspec

    from builder.config import compile_watch

    rng = random.Random(5)  # noqa: S311 - a fixed seed, not a secret
    pieces = ["a", "b", "-", "*", "**", "/", "?", "[ab]", "!", ".", "x", "\\*", " "]
    pieces += ["[[:space:]]", "[[:digit:]]", "[a-z[:digit:]]", "[![:alpha:]]", "[", "]", "\ud800"]
    names = ["a", "b", "-", "x", ".", "/", "ab", "a-b", " ", "\u00e9", "\udcff", "5", "[", "]"]
    agree = 0
    for _ in range(600):
        globs = [
            "".join(rng.choice(pieces) for _ in range(rng.randint(1, 6)))
            for _ in range(rng.randint(1, 3))
        ]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # re: "Possible nested set"
            try:
                python = pathspec.GitIgnoreSpec.from_lines(globs, backend="simple")
            except (ValueError, re.error):
                continue
            ours = compile_watch(globs)
        for _ in range(20):
            path = "".join(rng.choice(names) for _ in range(rng.randint(1, 8))).strip("/")
            if path:
                assert ours.match_file(path) == python.match_file(path), (globs, path)
                agree += 1
    assert agree > 5000


def test_a_watch_glob_with_many_stars_meets_a_long_file_name() -> None:
    from builder.config import compile_watch

    # Python's re took seconds here (a power of the name's length); the answer is the point.
    spec = compile_watch(["*-*-*-*-x"])
    assert not spec.match_file("docs/" + "-" * 255)
    assert spec.match_file("docs/a-b-c-d-x")
