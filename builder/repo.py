"""Loading a repo snapshot into settings and an image graph; the decisions are pure."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import Protocol

from builder.config import config_path, parse_image_configs, parse_settings
from builder.dockerfiles import (
    ContextRead,
    DockerfileInfo,
    ParseRequest,
    UnknownTarget,
    parse_dockerfile,
)
from builder.errors import ConfigError, GraphError, UserError
from builder.graph import ImageGraph, compute_graph
from builder.ignore import ignore_problems
from builder.inputs import (
    compute_inputs,
    parse_gitmodules,
    read_ways,
    trigger_read,
    with_links,
    with_parent_triggers,
    with_submodules,
)
from builder.model import (
    CONFIG_FILE,
    PREFIX_ARG,
    Identity,
    Image,
    ImageConfig,
    Settings,
    named_image,
)
from builder.refs import repository_of
from builder.roots import (
    DEFINING,
    compute_image_dirs,
    default_name,
    is_glob,
    listing_root,
    root_of,
)

GITMODULES = ".gitmodules"


class Snapshot(Protocol):
    """A tree of files at one moment: a commit, or the working tree."""

    label: str

    def list_files(self, roots: Sequence[str]) -> tuple[str, ...]: ...

    def read(self, paths: Sequence[str]) -> dict[str, bytes | None]: ...

    def symlinks(self, paths: Sequence[str]) -> frozenset[str]:
        """Which of `paths` are symbolic links."""
        ...

    def linked_directories(self, directories: Sequence[str]) -> frozenset[str]:
        """Which of `directories` (`.`: the root) hold a symbolic link right inside them."""
        ...

    def link_targets(self, paths: Sequence[str]) -> dict[str, str]:
        """For those of `paths` that were read through a link: the file they name."""
        ...

    def gitlinks(self, paths: Sequence[str]) -> frozenset[str]:
        """Which of `paths` are submodules: commits of another repository, no files here."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Overrides:
    """Settings given on the command line or in the environment; they beat builder.yaml."""

    registry: str | None = None
    namespace: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Repo:
    settings: Settings
    graph: ImageGraph


def _decode(data: bytes, path: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            "is not UTF-8 text", file=path, line=line, hint="save it as UTF-8"
        ) from None


class DockerfileParser(Protocol):
    def __call__(
        self,
        text: str,
        *,
        path: str,
        build_args: Mapping[str, str] | None = ...,
        target: str | None = ...,
        platforms: Sequence[str] = ...,
    ) -> DockerfileInfo: ...


def compute_images(
    settings: Settings,
    configs: Sequence[ImageConfig],
    texts: Mapping[str, str | None],
    *,
    parse: DockerfileParser = parse_dockerfile,
    links: Mapping[str, str] | None = None,
    declared: Settings | None = None,
    warm: Callable[[Sequence[ParseRequest]], None] | None = None,
    errors: list[UserError] | None = None,
) -> tuple[Image, ...]:
    """Parse each Dockerfile once and resolve its references against the repo's images.

    `declared` is builder.yaml's own settings when the command line or environment
    overrode the registry or namespace: a Dockerfile that names an image where builder.yaml
    says it lives (`FROM acme/base`) still builds on this run's image. With `errors`, an
    image's own error is added to it and the image left out, so `doctor` can name them all.
    """
    seen: dict[str, ImageConfig] = {}
    for config in configs:
        if config.name in seen:
            blamed, other = config, seen[config.name]
            if blamed.line_of("name") is None and other.line_of("name") is not None:
                blamed, other = other, blamed  # point at the image.yaml that chose the name
            raise ConfigError(
                f"duplicate image name {blamed.name!r}: also used by {other.directory}",
                file=blamed.config_file or blamed.directory,
                line=blamed.line_of("name"),
                hint="set a distinct 'name' in image.yaml",
            )
        seen[config.name] = config
    aliases: dict[str, tuple[str, ...]] = {}
    for config in configs:
        name = config.repository_name or config.name
        own = config.repository or repository_of(settings.registry, settings.namespace, name)
        also = (
            repository_of(declared.registry, declared.namespace, name)
            if declared is not None and config.repository is None
            else own
        )
        aliases[config.name] = (own,) if also == own else (own, also)
    by_repository: dict[Identity, str] = {}
    for config in configs:
        identity = (aliases[config.name][0], config.identity_tag)
        publisher = by_repository.get(identity)
        if publisher is not None:
            raise ConfigError(
                f"images {publisher} and {config.name} both publish {identity[0]}:{identity[1]}",
                file=config.config_file or config.directory,
                line=config.line_of("tag") or config.line_of("name"),
                hint="give one a 'tag' (or 'tag_prefix'/'tag_suffix') of its own, or its own "
                "'repository'",
            )
        for repository in aliases[config.name]:
            by_repository.setdefault((repository, config.identity_tag), config.name)
    requests = []
    readable = []
    for config in configs:
        dockerfile = texts.get(str(config.dockerfile))
        if dockerfile is None:
            missing = ConfigError(
                f"Dockerfile {config.dockerfile} does not exist",
                file=config.config_file or config.directory,
                line=config.line_of("dockerfile"),
                hint="add it, or point 'dockerfile' in image.yaml at the right file",
            )
            if errors is None:
                raise missing
            errors.append(missing)
            continue
        readable.append(config)
        args = dict(config.build_args)
        args.setdefault(PREFIX_ARG, settings.prefix)
        requests.append(
            ParseRequest(dockerfile, str(config.dockerfile), args, config.target, config.platforms)
        )
    if warm is not None:
        warm(requests)
    images = []
    triggers = {}  # image -> its ONBUILD, which runs in its children's builds
    for config, request in zip(readable, requests, strict=True):
        try:
            image, trigger = _image(
                config, request, aliases, by_repository, seen, texts, parse, links
            )
        except UserError as exc:
            if errors is None:
                raise
            errors.append(exc)
            continue
        if trigger is not None:
            triggers[config.name] = trigger
        images.append(image)
    return with_parent_triggers(images, triggers)


def _image(
    config: ImageConfig,
    request: ParseRequest,
    aliases: Mapping[str, tuple[str, ...]],
    by_repository: Mapping[Identity, str],
    seen: Mapping[str, ImageConfig],
    texts: Mapping[str, str | None],
    parse: DockerfileParser,
    links: Mapping[str, str] | None,
) -> tuple[Image, ContextRead | None]:
    """One image from its config and parsed Dockerfile, and the read its ONBUILD makes."""
    args = dict(request.build_args or {})
    try:
        info = parse(
            request.text,
            path=request.path,
            build_args=args,
            target=request.target,
            platforms=request.platforms,
        )
    except UnknownTarget as exc:
        # The value to fix is in image.yaml, not in the Dockerfile.
        raise ConfigError(
            f"'target' {config.target!r} is not a stage of {config.dockerfile}",
            file=config.config_file or config.dockerfile,
            line=config.line_of("target"),
            hint=exc.hint,
        ) from None
    named = {r: named_image(r, by_repository) for r in info.reached}
    parents = {name for name in named.values() if name is not None}
    for name in config.depends_on:
        if name not in seen:
            raise GraphError(
                f"depends_on names unknown image {name!r}",
                file=config.config_file,
                line=config.line_of("depends_on"),
                hint="known images: " + ", ".join(sorted(seen)),
            )
        parents.add(name)
    external = tuple(dict.fromkeys(r.text for r, name in named.items() if name is None))
    ignore_file, ignore_text = None, ""
    for candidate in config.ignore_files:
        text = texts.get(candidate)
        if text is not None:
            ignore_file, ignore_text = PurePosixPath(candidate), text
            break
    if ignore_file is not None:
        check_ignore_file(ignore_file, ignore_text)
    trigger = (
        trigger_read(str(config.dockerfile), info.onbuild, config.name)
        if info.onbuild is not None
        else None
    )
    image = Image(
        config=config,
        repository=aliases[config.name][0],
        aliases=aliases[config.name][1:],
        build_args=tuple(sorted((k, v) for k, v in args.items() if k in info.arg_names)),
        references=info.reached,
        parents=tuple(sorted(parents)),
        external_parents=external,
        base=info.base,
        ignore_file=ignore_file,
        ignore_text=ignore_text,
        links=tuple(
            (p, (links or {})[p])
            for p in (str(config.dockerfile), str(ignore_file))
            if p in (links or {})
        ),
        inputs=compute_inputs(info),
    )
    return image, trigger


# What Go's strings.TrimSpace removes; Python's str.strip also takes \x1c-\x1f.
_GO_SPACE = " \t\n\v\f\r\x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000" + "".join(
    chr(c) for c in range(0x2000, 0x200B)
)
_SCAN_LIMIT = 64 * 1024  # bufio.Scanner's buffer: a longer line is "token too long"


@functools.lru_cache(maxsize=256)  # a monorepo's .dockerignore files are mostly one text
def _unsendable(text: str) -> tuple[int, str, str] | None:
    """What BuildKit fails on before it reads a pattern: a line its reader cannot hold, and
    a control character, which the gRPC header carrying the patterns refuses ("exclude-
    patterns contains value with non-printable ASCII characters", on the real engine)."""
    lines = text.removeprefix("\ufeff").split("\n")
    for number, line in enumerate(lines, 1):
        if len(line.encode("utf-8", "surrogatepass")) >= _SCAN_LIMIT:
            return number, line, "a line longer than 64 KiB (bufio.Scanner: token too long)"
    for number, line in enumerate(lines, 1):
        if line.startswith("#"):
            continue  # a comment is dropped before the patterns travel
        pattern = line.strip(_GO_SPACE)
        bad = next((ch for ch in pattern if ord(ch) < 0x20 or ord(ch) == 0x7F), None)
        if bad is not None:
            return number, pattern, f"contains the control character {bad!r}"
    return None


def check_ignore_file(path: PurePosixPath, text: str) -> None:
    problem = _unsendable(text) or ignore_problems(text)
    if problem is not None:
        line, pattern, why = problem
        shown = pattern if len(pattern) <= 80 else f"{pattern[:80]}..."
        raise ConfigError(
            f"invalid pattern {shown!r}: {why}",
            file=path,
            line=line,
            hint="Docker refuses the whole file, so every build of this context would fail",
        )


def _context_paths(configs: Sequence[ImageConfig]) -> list[str]:
    """Every context and each directory above it: a link anywhere on the way counts."""
    paths: dict[str, None] = {}
    for context in dict.fromkeys(str(c.context) for c in configs):
        # By string: `parents` builds a path object per level, for thousands of images.
        path = context
        while path not in paths and path != ".":
            paths[path] = None
            path = path.rpartition("/")[0] or "."
    return list(paths)


def check_contexts(configs: Sequence[ImageConfig], symlinks: frozenset[str]) -> None:
    """A context must be a real directory: Docker follows a link, git sees only the link.

    Through a link, a build would send files from outside the repository (or from another
    image's directory) that no diff ever reports, so their changes would rebuild nothing.
    """
    for config in configs:
        for path in (config.context, *config.context.parents):
            if str(path) not in symlinks:
                continue
            where = "is" if path == config.context else f"is inside {path}, which is"
            raise ConfigError(
                f"'context' {config.context} {where} a symbolic link",
                file=config.config_file or config.directory,
                line=config.line_of("context"),
                hint="point 'context' at a real directory inside the repository",
            )


def load_settings(snapshot: Snapshot, overrides: Overrides | None = None) -> Settings:
    return apply_overrides(load_declared_settings(snapshot), overrides)


def apply_overrides(settings: Settings, overrides: Overrides | None) -> Settings:
    if overrides is not None:
        if overrides.registry:
            settings = replace(settings, registry=overrides.registry)
        if overrides.namespace:
            settings = replace(settings, namespace=overrides.namespace)
    return settings


def load_declared_settings(snapshot: Snapshot) -> Settings:
    """builder.yaml as written, before the command line or the environment override it."""
    raw = snapshot.read([str(CONFIG_FILE)]).get(str(CONFIG_FILE))
    if raw is None and snapshot.list_files([str(CONFIG_FILE)]):
        # Files under builder.yaml/: the defaults would silently stand in for the settings.
        raise ConfigError("is a directory", file=CONFIG_FILE, hint="builder.yaml must be a file")
    return parse_settings(_decode(raw, str(CONFIG_FILE))) if raw is not None else Settings()


def check_image_roots(
    settings: Settings,
    files: Sequence[str],
    dirs: Sequence[PurePosixPath],
    gitlinks: frozenset[str],
    *,
    require_images: bool,
) -> None:
    """Builder never builds nothing silently: every root it reads holds images it can see.

    A typo in image_roots, a submodule (whose files this repository does not hold) or a
    directory named Dockerfile would each drop images without a word.
    """
    roots = settings.image_roots
    lines = dict(settings.root_lines)
    for path in sorted(gitlinks):
        if path in roots:
            raise ConfigError(
                f"image root {path!r} is a git submodule",
                file=CONFIG_FILE,
                line=lines.get(path),
                hint="builder reads only this repository's files; build those images "
                "in the submodule's own repository",
            )
        raise ConfigError(
            "is a git submodule: builder cannot see an image inside it",
            file=path,
            hint="build it in its own repository, or move it out of the image roots",
        )
    inner = re.compile("|".join(re.escape(f"/{name}/") for name in DEFINING))
    for path in files:
        if inner.search(path) is None:
            continue  # the common case, checked without splitting tens of thousands of paths
        parts = path.split("/")
        for depth in range(1, len(parts) - 1):
            if parts[depth] in DEFINING and root_of("/".join(parts[:depth]), roots) is not None:
                raise ConfigError(
                    "is a directory",
                    file="/".join(parts[: depth + 1]),
                    hint=f"an image's {parts[depth]} must be a file",
                )
    if not require_images:
        return
    with_images = {root_of(str(d), roots) for d in dirs}
    for root, line in lines.items():
        if root in with_images:
            continue
        if is_glob(root):
            raise ConfigError(
                f"image root {root!r} matches no image folder",
                file=CONFIG_FILE,
                line=line,
                hint="a glob names image folders, one '*' per path component",
            )
        if not any(p.startswith(f"{root}/") for p in files):
            raise ConfigError(
                f"image root {root!r} is not a directory of the repository",
                file=CONFIG_FILE,
                line=line,
                hint="check the name; roots are relative to the repository root",
            )
        raise ConfigError(
            f"image root {root!r} holds no image",
            file=CONFIG_FILE,
            line=line,
            hint="an image is a directory right under a root, with a Dockerfile or image.yaml",
        )
    if not dirs:
        raise ConfigError(
            "no images: no directory under "
            + " or ".join(repr(r) for r in roots)
            + " holds a Dockerfile or image.yaml",
            hint="add one, or list the directories that hold images in builder.yaml's image_roots",
        )


def load_repo(
    snapshot: Snapshot,
    overrides: Overrides | None = None,
    *,
    parse: DockerfileParser = parse_dockerfile,
    warm: Callable[[Sequence[ParseRequest]], None] | None = None,
    require_images: bool = True,
    errors: list[UserError] | None = None,
) -> Repo:
    """The settings and image graph of a snapshot. `require_images=False` reads a base
    revision, which may predate the first image. With `errors`, each image's own error is
    added to it before the first is raised (see compute_images)."""
    declared = load_declared_settings(snapshot)
    settings = apply_overrides(declared, overrides)
    files = snapshot.list_files(list(dict.fromkeys(listing_root(r) for r in settings.image_roots)))
    dirs = compute_image_dirs(files, settings.image_roots)
    roots = settings.image_roots
    # Submodules that would be images or roots: a root itself, or a folder a root names.
    plain = {r for r in roots if not is_glob(r)}
    globbed = len(plain) < len(roots)
    candidates = [
        p
        for p in files
        if p in plain
        or p.rpartition("/")[0] in plain
        or (globbed and root_of(p, roots) is not None)
    ]
    gitlinks = snapshot.gitlinks(candidates) if candidates else frozenset()
    check_image_roots(settings, files, dirs, gitlinks, require_images=require_images)
    yaml_paths = [config_path(d) for d in dirs]
    yaml_texts = snapshot.read(yaml_paths)
    configs: list[ImageConfig] = []
    for directory, yaml_path in zip(dirs, yaml_paths, strict=True):
        raw = yaml_texts[yaml_path]
        text = _decode(raw, yaml_path) if raw is not None else None
        configs.extend(
            parse_image_configs(
                text,
                directory=directory,
                settings=settings,
                default_name=default_name(str(directory), settings.image_roots),
            )
        )
    check_contexts(configs, snapshot.symlinks(_context_paths(configs)))
    wanted = []
    for config in configs:
        wanted.append(str(config.dockerfile))
        wanted.extend(config.ignore_files)
    # .gitmodules rides along: a read inside a submodule depends on its commit.
    raw_texts = snapshot.read([*dict.fromkeys(wanted), GITMODULES])
    gitmodules = raw_texts.pop(GITMODULES, None)
    texts = {p: (_decode(b, p) if b is not None else None) for p, b in raw_texts.items()}
    links = snapshot.link_targets([p for p, b in raw_texts.items() if b is not None])
    images = compute_images(
        settings,
        configs,
        texts,
        parse=parse,
        links=links,
        declared=declared if declared != settings else None,
        warm=warm,
        errors=errors,
    )
    if errors:
        raise errors[0]
    images = check_reads(snapshot, images, gitmodules=gitmodules)
    return Repo(settings=settings, graph=compute_graph(images))


def check_reads(
    snapshot: Snapshot, images: Sequence[Image], *, gitmodules: bytes | None = None
) -> tuple[Image, ...]:
    """Each image's inputs with what only the tree can tell: a read that meets a symbolic
    link counts the whole context, and a read inside a submodule counts its commit."""
    ways = [read_ways(str(image.config.context), image.inputs) for image in images]
    paths = {p for way in ways for _, on_the_way, _ in way for p in on_the_way}
    directories = {d for way in ways for _, _, d in way if d is not None}
    if not paths and not directories:
        return tuple(images)
    links = snapshot.symlinks(sorted(paths)) if paths else frozenset()
    linked = snapshot.linked_directories(sorted(directories)) if directories else frozenset()
    submodules = parse_gitmodules(gitmodules.decode("utf-8", "replace")) if gitmodules else ()
    out = []
    for image, way in zip(images, ways, strict=True):
        inputs = with_links(image.inputs, way, links, linked) if links or linked else image.inputs
        if submodules:
            inputs = with_submodules(str(image.config.context), inputs, submodules)
        out.append(replace(image, inputs=inputs) if inputs is not image.inputs else image)
    return tuple(out)
