"""builder.yaml and image.yaml: strict parsing with file:line errors (pure)."""

from __future__ import annotations

import contextlib
import difflib
import functools
import posixpath
import re
import shlex
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

import yaml

from builder.errors import ConfigError
from builder.model import (
    DEFAULT_SBOM_GENERATOR,
    DEFAULT_TEST_TIMEOUT,
    IMAGE_FILE,
    PROVENANCE_MODES,
    TEST_NETWORKS,
    BuildArgs,
    ImageConfig,
    Settings,
    Signing,
    TestSpec,
)
from builder.refs import COMPONENT_RE, TAG_RE, InvalidReference, parse_reference

if TYPE_CHECKING:
    import pathspec

_PLATFORM_RE = re.compile(r"^[a-z0-9_]+/[a-z0-9_]+(?:/[a-z0-9_.]+)?$")
_ARG_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NAMESPACE_RE = re.compile(rf"^{COMPONENT_RE.pattern[1:-1]}(?:/{COMPONENT_RE.pattern[1:-1]})*$")


@dataclass(frozen=True, slots=True)
class _Entry:
    value: Any
    line: int  # the key's line
    items: dict[Any, int] = field(default_factory=dict)  # a block value's entries' lines
    node: yaml.Node | None = field(default=None, compare=False)  # for nested values' lines

    def line_of(self, item: Any) -> int:
        return self.items.get(item, self.line)

    def line_at(self, *path: Any) -> int:
        """The line of a nested value (mapping keys and list positions), or the closest
        enclosing one's."""
        line, node = self.line, self.node
        for step in path:
            child: yaml.Node | None = None
            if isinstance(node, yaml.MappingNode):
                for key_node, value_node in node.value:
                    if isinstance(key_node, yaml.ScalarNode) and key_node.value == step:
                        line, child = key_node.start_mark.line + 1, value_node
                        break
            elif (
                isinstance(node, yaml.SequenceNode)
                and isinstance(step, int)
                and 0 <= step < len(node.value)
            ):
                child = node.value[step]
                line = child.start_mark.line + 1
            if child is None:
                break
            node = child
        return line


# libyaml parses ten times faster; its error words differ, so a failure is parsed again by
# the pure-Python loader, whose messages the tests pin, when it lies early enough in the
# text for that to be quick. Both parsers are loops: only composing recurses.
_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_PURE_RETRY_LIMIT = 128 * 1024  # characters: the pure loader reads about 1 MB in 3 s
# Bounds that keep loading linear in the text (tests/test_bad_inputs.py, benchmarks/hostile.py).
# builder's files nest three levels deep; the composer, the constructor and the checks below
# all recurse per level, so a file nested past this would end in a RecursionError.
MAX_YAML_DEPTH = 64
# Aliases let 500 bytes stand for a billion values (the "billion laughs"): what they add
# is counted before anything walks the values.
MAX_ALIASED_VALUES = 10_000
MAX_WATCH_PATTERNS = 1_000


class _EventComposer(yaml.composer.Composer, yaml.resolver.Resolver):
    """PyYAML's composer fed with events already parsed and checked, not with text."""

    def __init__(self, events: list[yaml.Event]) -> None:
        yaml.composer.Composer.__init__(self)
        yaml.resolver.Resolver.__init__(self)
        self._events = events
        self._next = 0

    def check_event(self, *choices: type[yaml.Event]) -> bool:
        if self._next >= len(self._events):
            return False
        return not choices or isinstance(self._events[self._next], choices)

    def peek_event(self) -> yaml.Event:
        return self._events[self._next]

    def get_event(self) -> yaml.Event:
        event = self._events[self._next]
        self._next += 1
        return event


def _checked_events(events: Iterable[yaml.Event], path: str) -> list[yaml.Event]:
    """The events of a document whose values nest at most MAX_YAML_DEPTH deep and whose
    aliases add at most MAX_ALIASED_VALUES values, counted without expanding anything:
    each anchor's size and height are kept when it closes, and an alias adds them."""
    kept: list[yaml.Event] = []
    stack: list[list[int]] = []  # per open collection: [values in it, its height]
    anchors: dict[str, tuple[int, int]] = {}  # anchor -> (values, height)
    open_anchors: list[str | None] = []
    aliased = 0

    def add(size: int, height: int) -> None:
        if stack:
            stack[-1][0] += size
            stack[-1][1] = max(stack[-1][1], height + 1)

    for event in events:
        kept.append(event)
        line = event.start_mark.line + 1 if event.start_mark is not None else None
        if isinstance(event, yaml.CollectionStartEvent):
            if len(stack) >= MAX_YAML_DEPTH:
                raise ConfigError(
                    f"invalid YAML: nested more than {MAX_YAML_DEPTH} levels deep",
                    file=path,
                    line=line,
                )
            stack.append([1, 1])
            open_anchors.append(event.anchor)
        elif isinstance(event, yaml.CollectionEndEvent):
            size, height = stack.pop()
            anchor = open_anchors.pop()
            if anchor is not None:
                anchors[anchor] = (size, height)
            add(size, height)
        elif isinstance(event, yaml.ScalarEvent):
            if event.anchor is not None:
                anchors[event.anchor] = (1, 0)
            add(1, 0)
        elif isinstance(event, yaml.AliasEvent):
            if event.anchor in open_anchors:
                raise ConfigError(
                    f"invalid YAML: alias *{event.anchor} is inside the value it names",
                    file=path,
                    line=line,
                    hint="a value cannot contain itself",
                )
            # An unknown anchor is the composer's error to report.
            size, height = anchors.get(event.anchor or "", (1, 0))
            aliased += size
            if aliased > MAX_ALIASED_VALUES:
                raise ConfigError(
                    "expands to too many values through YAML aliases",
                    file=path,
                    line=line,
                    hint=f"aliases may add at most {MAX_ALIASED_VALUES} values; "
                    "write the values out",
                )
            if len(stack) + height > MAX_YAML_DEPTH:
                raise ConfigError(
                    f"invalid YAML: nested more than {MAX_YAML_DEPTH} levels deep "
                    f"through alias *{event.anchor}",
                    file=path,
                    line=line,
                )
            add(size, height)
    return kept


def _compose(text: str, path: str) -> yaml.Node | None:
    """The document's node tree, after its events passed the bounds above."""
    if _plainly_small(text):
        # The common image.yaml: a few lines, no anchors, shallow. Nothing in it can blow
        # up, so libyaml composes it directly (a thousand of them are on planning's path).
        try:
            node: yaml.Node | None = yaml.compose(text, Loader=_FAST_LOADER)
        except yaml.YAMLError:
            pass  # the careful path below says what is wrong, with the pure loader's words
        else:
            return node
    try:
        events = _checked_events(yaml.parse(text, Loader=_FAST_LOADER), path)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        if "maximum nesting depth" in str(getattr(exc, "problem", "")):
            # libyaml stops at 1000 levels, deeper than ours; the pure scanner would take a
            # second to get there (its simple keys cost the square of the depth).
            line = mark.line + 1 if mark is not None else None
            raise ConfigError(
                f"invalid YAML: nested more than {MAX_YAML_DEPTH} levels deep",
                file=path,
                line=line,
            ) from None
        if mark is not None and mark.index > _PURE_RETRY_LIMIT:
            raise  # the pure loader would take seconds to get there
        events = _checked_events(yaml.parse(text, Loader=yaml.SafeLoader), path)
    composed: yaml.Node | None = _EventComposer(events).get_single_node()
    return composed


_SMALL = 8192  # bytes: block nesting in this much text stays far from recursion limits


def _plainly_small(text: str) -> bool:
    """Small, without anchors (so without aliases) and without deep flow nesting."""
    if len(text) > _SMALL or "&" in text:
        return False
    if text.count("[") + text.count("{") <= 16:
        return True
    depth = deepest = 0
    for char in text:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest <= 16


def _load_node(text: str, path: str) -> yaml.Node | None:
    """The YAML document, composed, with its syntax errors as one line at their line."""
    try:
        return _compose(text, path)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.problem and exc.context and exc.context != "while scanning for the next token":
            # "found unexpected end of stream" alone says little; "while scanning a quoted
            # scalar started on line 1, ..." says what was left open, and where.
            context = exc.context
            opened = exc.context_mark.line + 1 if exc.context_mark is not None else line
            if opened != line and context.startswith("while "):
                context = f"{context} started on line {opened}"
            problem = f"{context}, {problem}"
        raise ConfigError(f"invalid YAML: {problem}", file=path, line=line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", file=path) from None


def _load_mapping(text: str, path: str) -> dict[str, _Entry]:
    """A YAML mapping whose values keep the line they were written on."""
    node = _load_node(text, path)
    if node is None:
        return {}
    if not isinstance(node, yaml.MappingNode):
        raise ConfigError(
            "expected a mapping of settings at the top level",
            file=path,
            line=node.start_mark.line + 1,
        )
    return _entries(node, path)


def _entries(node: yaml.MappingNode, path: str) -> dict[str, _Entry]:
    _check_duplicates(node, path)
    constructor = yaml.SafeLoader("")
    entries: dict[str, _Entry] = {}
    for key_node, value_node in node.value:
        line = key_node.start_mark.line + 1
        if not isinstance(key_node, yaml.ScalarNode):
            raise ConfigError("keys must be plain strings", file=path, line=line)
        key = str(key_node.value)
        try:
            value = constructor.construct_object(value_node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
            # PyYAML's constructors raise ValueError for e.g. the date 2001-13-01.
            problem = getattr(exc, "problem", None) or str(exc)
            raise ConfigError(
                f"invalid value for {key!r}: {problem}", file=path, line=line
            ) from None
        entries[key] = _Entry(value, line, _item_lines(value_node), value_node)
    return entries


def _item_lines(node: yaml.Node) -> dict[Any, int]:
    """Where each entry of a block value starts: a mapping's keys, a list's positions."""
    if isinstance(node, yaml.MappingNode):
        return {
            k.value: k.start_mark.line + 1 for k, _ in node.value if isinstance(k, yaml.ScalarNode)
        }
    if isinstance(node, yaml.SequenceNode):
        return {i: item.start_mark.line + 1 for i, item in enumerate(node.value)}
    return {}


def _check_duplicates(root: yaml.Node, path: str) -> None:
    """PyYAML keeps the last of two equal keys silently; a nested duplicate is an error too.

    A walk with its own stack, each node once: an alias shares its node, it is not a copy.
    """
    seen_nodes: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend(reversed(node.value))
        elif isinstance(node, yaml.MappingNode):
            keys: set[str] = set()
            for key_node, _ in node.value:
                if isinstance(key_node, yaml.ScalarNode):
                    if key_node.value in keys:
                        raise ConfigError(
                            f"duplicate key {key_node.value!r}",
                            file=path,
                            line=key_node.start_mark.line + 1,
                        )
                    keys.add(key_node.value)
            stack.extend(value for _, value in reversed(node.value))


def _check_keys(entries: dict[str, _Entry], known: tuple[str, ...], path: str) -> None:
    for key, entry in entries.items():
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else "known keys: " + ", ".join(known)
            raise ConfigError(f"unknown key {key!r}", file=path, line=entry.line, hint=hint)


def _string(entry: _Entry, key: str, path: str) -> str:
    if not isinstance(entry.value, str) or not entry.value.strip():
        raise ConfigError(
            f"{key!r} must be a non-empty string, got {_describe(entry.value)}",
            file=path,
            line=entry.line,
        )
    return entry.value.strip()


def _string_list(entry: _Entry, key: str, path: str) -> tuple[str, ...]:
    value = entry.value
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(
            f"{key!r} must be a list of non-empty strings, got {_describe(value)}",
            file=path,
            line=entry.line,
        )
    return tuple(v.strip() for v in value)


def _build_args(entry: _Entry, path: str) -> BuildArgs:
    value = entry.value
    if not isinstance(value, dict):
        raise ConfigError(
            f"'build_args' must be a mapping of NAME: value, got {_describe(value)}",
            file=path,
            line=entry.line,
        )
    args = []
    for name, arg in value.items():
        if not isinstance(name, str) or not _ARG_NAME_RE.fullmatch(name):
            raise ConfigError(
                f"invalid build arg name {name!r}", file=path, line=entry.line_of(name)
            )
        if isinstance(arg, bool) or not isinstance(arg, (str, int, float)):
            raise ConfigError(
                f"build arg {name!r} must be a string or number, got {_describe(arg)}",
                file=path,
                line=entry.line_of(name),
            )
        args.append((name, str(arg)))
    return tuple(sorted(args))


def _watch(entry: _Entry, path: str) -> tuple[str, ...]:
    return _globs(entry, "watch", path)


def _globs(entry: _Entry, key: str, path: str) -> tuple[str, ...]:
    """A list of gitignore-style globs relative to the repo root (`watch`, `not_images`)."""
    patterns = _string_list(entry, key, path)
    if len(patterns) > MAX_WATCH_PATTERNS:
        # Each glob becomes a regex, compiled in Python at ~0.1 ms, for every image, on
        # every run: 35,000 of them (1 MB) took 10 s to plan.
        raise ConfigError(
            f"'{key}' lists {len(patterns)} patterns, more than {MAX_WATCH_PATTERNS}",
            file=path,
            line=entry.line,
            hint="watch directories with broader globs, e.g. shared/sql/**",
        )
    try:
        # One spec for the list: a spec per pattern cost a millisecond each (35 s for a
        # watch list of 35,000 globs). Only a failure looks for the pattern at fault.
        compile_watch(patterns)
    except (ValueError, re.error):
        pass
    else:
        return patterns
    for index, pattern in enumerate(patterns):
        try:
            compile_watch([pattern])
        except (ValueError, re.error):  # `[z-a]` reaches the regex compiler
            raise ConfigError(
                f"invalid {key} pattern {pattern!r}",
                file=path,
                line=entry.line_of(index),
                hint="use gitignore-style globs relative to the repo root, e.g. libs/common/**",
            ) from None
    return patterns


def compile_watch(globs: Sequence[str]) -> pathspec.GitIgnoreSpec:
    """`watch` globs as git matches them. pathspec's own regex backend, never its RE2 one:
    pathspec picks RE2 when google-re2 is installed (builder's .dockerignore matcher needs
    it), and its RE2 sets behave differently on big lists. Each pattern's regex then runs
    on RE2 by itself (_Linear)."""
    return _compile_watch(tuple(globs))


# Images of one domain share their watch lists: a monorepo of thousands compiles dozens.
@functools.lru_cache(maxsize=4096)
def _compile_watch(globs: tuple[str, ...]) -> pathspec.GitIgnoreSpec:
    import pathspec  # 25 ms to import: only a repo with watch or not_images globs pays it

    spec = pathspec.GitIgnoreSpec.from_lines(globs, backend="simple")
    for pattern in spec.patterns:
        if isinstance(pattern.regex, re.Pattern):
            # pathspec calls only `search` (and reads `pattern`): a stand-in serves.
            pattern.regex = _Linear(pattern.regex)  # type: ignore[assignment]
    return spec


class _Linear:
    """A glob's regex on RE2, which takes time linear in the path. Python's `re` backtracks
    in a power of a name's length for `*-*-*-x` (seconds on a 255-byte file name). Python
    keeps a regex RE2 would read otherwise (pathspec writes `[[:space:]]` as
    `[[:space:]\\]`, a POSIX class to RE2, where `re` has matched since builder began) or
    cannot compile, and a path RE2 cannot take (a byte git gave that is not UTF-8)."""

    __slots__ = ("_python", "_re2", "pattern")

    def __init__(self, python: re.Pattern[str]) -> None:
        import re2

        self._python = python
        self.pattern = python.pattern
        self._re2: Any = None
        if "[:" in python.pattern:
            return
        options = re2.Options()
        options.log_errors = False  # a regex RE2 refuses is Python's, not a line on stderr
        try:
            self._re2 = re2.compile(python.pattern, options)
        except (re2.error, UnicodeEncodeError):
            self._re2 = None

    def search(self, text: str) -> Any:
        if self._re2 is not None:
            with contextlib.suppress(UnicodeEncodeError):
                return self._re2.search(text)
        return self._python.search(text)


def _platforms(entry: _Entry, path: str, *, key: str = "platforms") -> tuple[str, ...]:
    platforms = _string_list(entry, key, path)
    if not platforms:
        raise ConfigError(f"'{key}' must not be empty", file=path, line=entry.line)
    for index, platform in enumerate(platforms):
        if not _PLATFORM_RE.fullmatch(platform):
            raise ConfigError(
                f"invalid platform {platform!r}",
                file=path,
                line=entry.line_of(index),
                hint="expected os/arch[/variant], e.g. linux/arm64",
            )
    return tuple(dict.fromkeys(platforms))


def _describe(value: object) -> str:
    names = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "nothing"
    if isinstance(value, str) and not value.strip():
        return "an empty string"
    return names.get(type(value), f"{type(value).__name__} {value!r}")


def validate_platform(text: str, *, source: str | None = None) -> str:
    if not _PLATFORM_RE.fullmatch(text):
        raise ConfigError(
            f"invalid platform {text!r}",
            file=source,
            hint="expected os/arch[/variant], e.g. linux/arm64",
        )
    return text


def validate_registry(text: str, *, source: str = "registry", line: int | None = None) -> str:
    # Docker reads `acme/x` as docker.io/acme/x: a registry must look like a host name
    # (a dot, a port or localhost) or it would silently become a Docker Hub namespace.
    host = text.partition("/")[0]
    try:
        parse_reference(f"{text}/x")
        looks_like_host = "." in host or ":" in host or host == "localhost"
    except InvalidReference:
        looks_like_host = False
    if not looks_like_host:
        raise ConfigError(
            f"invalid registry {text!r}",
            file=source,
            line=line,
            hint="a host name such as docker.io, ghcr.io or localhost:5000; "
            "put an organisation in 'namespace'",
        )
    return text


def validate_namespace(text: str, *, source: str = "namespace", line: int | None = None) -> str:
    if not _NAMESPACE_RE.fullmatch(text):
        raise ConfigError(
            f"invalid namespace {text!r}",
            file=source,
            line=line,
            hint="lowercase letters, digits and separators, e.g. acme",
        )
    return text


_SETTINGS_KEYS = (
    "registry",
    "namespace",
    "image_roots",
    "platforms",
    "default_branch",
    "build_args",
    "cache",
    "builder",
    "consumers",
    "smoke_test",
    "not_images",
    "provenance",
    "sbom",
    "signing",
)


def parse_settings(text: str, *, path: str = "builder.yaml") -> Settings:
    entries = _load_mapping(text, path)
    _check_keys(entries, _SETTINGS_KEYS, path)
    values: dict[str, Any] = {}
    if "registry" in entries:
        entry = entries["registry"]
        values["registry"] = validate_registry(
            _string(entry, "registry", path), source=path, line=entry.line
        )
    if "namespace" in entries:
        entry = entries["namespace"]
        values["namespace"] = validate_namespace(
            _string(entry, "namespace", path), source=path, line=entry.line
        )
    if "image_roots" in entries:
        entry = entries["image_roots"]
        lines: dict[str, int] = {}
        for index, root in enumerate(_string_list(entry, "image_roots", path)):
            line = entry.line_of(index)
            lines.setdefault(_clean_root(root, path, line), line)
        if not lines:
            raise ConfigError("'image_roots' must not be empty", file=path, line=entry.line)
        values["image_roots"] = tuple(lines)
        values["root_lines"] = tuple(lines.items())
    if "platforms" in entries:
        values["platforms"] = _platforms(entries["platforms"], path)
    if "default_branch" in entries:
        values["default_branch"] = _string(entries["default_branch"], "default_branch", path)
    if "build_args" in entries:
        values["build_args"] = _build_args(entries["build_args"], path)
    if "cache" in entries:
        entry = entries["cache"]
        if not isinstance(entry.value, bool):
            raise ConfigError(
                f"'cache' must be true or false, got {_describe(entry.value)}",
                file=path,
                line=entry.line,
            )
        values["cache"] = entry.value
    if "builder" in entries:
        values["builder"] = _string(entries["builder"], "builder", path)
    if "smoke_test" in entries:
        values["smoke_test"] = _smoke_test(entries["smoke_test"], path)
    if "not_images" in entries:
        values["not_images"] = _globs(entries["not_images"], "not_images", path)
    if "consumers" in entries:  # checked by builder.consumers.config, when pinning
        entry = entries["consumers"]
        values["consumers"] = entry.value
        values["consumers_lines"] = (entry.line, *entry.items.values())
    if "provenance" in entries:
        values["provenance"] = _provenance(entries["provenance"], path)
    if "sbom" in entries:
        values["sbom_generator"] = _sbom(entries["sbom"], path)
    if "signing" in entries:
        values["signing"] = _signing(entries["signing"], path)
    values["key_lines"] = tuple((key, entry.line) for key, entry in entries.items())
    return Settings(**values)


def _provenance(entry: _Entry, path: str) -> str:
    value = entry.value
    if value is False:  # YAML reads a bare `off` as false
        return "off"
    if value not in PROVENANCE_MODES:
        raise ConfigError(
            f"'provenance' must be max, min or off, got {_describe(value)}",
            file=path,
            line=entry.line,
            hint="max records the build's inputs and arguments; min only its materials",
        )
    return str(value)


def _sbom(entry: _Entry, path: str) -> str | None:
    """`sbom: false` (none), `true` (Docker's syft scanner) or `{generator: IMAGE}`."""
    value = entry.value
    if isinstance(value, bool):
        return DEFAULT_SBOM_GENERATOR if value else None
    if not isinstance(value, dict):
        raise ConfigError(
            f"'sbom' must be true, false or a mapping with 'generator', got {_describe(value)}",
            file=path,
            line=entry.line,
        )
    for key in value:
        if key != "generator":
            raise ConfigError(
                f"unknown key {key!r} in 'sbom'",
                file=path,
                line=entry.line_of(key),
                hint="known keys: generator",
            )
    generator = value.get("generator", DEFAULT_SBOM_GENERATOR)
    line = entry.line_of("generator")
    if not isinstance(generator, str) or not generator.strip():
        raise ConfigError(
            f"'sbom.generator' must be an image reference, got {_describe(generator)}",
            file=path,
            line=line,
        )
    try:
        parse_reference(generator.strip())
    except InvalidReference as exc:
        raise ConfigError(
            f"'sbom.generator': {exc}",
            file=path,
            line=line,
            hint="an image that follows BuildKit's SBOM generator protocol, e.g. "
            + DEFAULT_SBOM_GENERATOR,
        ) from None
    return generator.strip()


_SIGNING_KEYS = ("key", "identity", "issuer", "tlog")


def _signing(entry: _Entry, path: str) -> Signing:
    value = entry.value
    if not isinstance(value, dict):
        raise ConfigError(
            f"'signing' must be a mapping, got {_describe(value)}",
            file=path,
            line=entry.line,
            hint="key: PATH (the public key), or identity: and issuer: (keyless)",
        )
    for key in value:
        if key not in _SIGNING_KEYS:
            close = difflib.get_close_matches(str(key), _SIGNING_KEYS, n=1)
            raise ConfigError(
                f"unknown key {key!r} in 'signing'",
                file=path,
                line=entry.line_of(key),
                hint=f"did you mean {close[0]!r}?"
                if close
                else "known keys: " + ", ".join(_SIGNING_KEYS),
            )
    texts: dict[str, str] = {}
    for key in ("key", "identity", "issuer"):
        if key in value:
            text = value[key]
            if not isinstance(text, str) or not text.strip():
                raise ConfigError(
                    f"'signing.{key}' must be a non-empty string, got {_describe(text)}",
                    file=path,
                    line=entry.line_of(key),
                )
            texts[key] = text.strip()
    if "identity" in texts:
        try:
            re.compile(texts["identity"])
        except re.error as exc:
            raise ConfigError(
                f"'signing.identity' is not a regular expression: {exc}",
                file=path,
                line=entry.line_of("identity"),
            ) from None
    if "key" in texts and ("identity" in texts or "issuer" in texts):
        raise ConfigError(
            "'signing' names both a key and a keyless identity",
            file=path,
            line=entry.line,
            hint="key: for key-based signing, identity: and issuer: for keyless; not both",
        )
    if ("identity" in texts) != ("issuer" in texts):
        missing = "issuer" if "identity" in texts else "identity"
        raise ConfigError(
            f"'signing' needs '{missing}' too for keyless verification",
            file=path,
            line=entry.line,
            hint="e.g. identity: ^https://github\\.com/acme/monorepo/ and "
            "issuer: https://token.actions.githubusercontent.com",
        )
    if not texts:
        raise ConfigError(
            "'signing' names neither a key nor a keyless identity",
            file=path,
            line=entry.line,
            hint="key: PATH (the public key), or identity: and issuer: (keyless)",
        )
    tlog = value.get("tlog")
    if tlog is not None and not isinstance(tlog, bool):
        raise ConfigError(
            f"'signing.tlog' must be true or false, got {_describe(tlog)}",
            file=path,
            line=entry.line_of("tlog"),
        )
    key = None
    if "key" in texts:
        key = _inside_repo(
            PurePosixPath("."), texts["key"], "signing.key", path, entry.line_of("key")
        )
    return Signing(key=key, identity=texts.get("identity"), issuer=texts.get("issuer"), tlog=tlog)


def _clean_root(root: str, path: str, line: int) -> str:
    if "**" in root:
        raise ConfigError(
            f"image root {root!r}: '**' is not supported",
            file=path,
            line=line,
            hint="a glob names the image folders one level each, e.g. debian/*/*",
        )
    cleaned = posixpath.normpath(root)
    if root.startswith("/") or cleaned == ".." or cleaned.startswith("../") or cleaned == ".":
        raise ConfigError(
            f"image root {root!r} must be a directory inside the repository",
            file=path,
            line=line,
        )
    return cleaned


def _inside_repo(
    base: PurePosixPath, relative: str, key: str, path: str, line: int
) -> PurePosixPath:
    if relative.startswith("/"):
        raise ConfigError(
            f"{key!r} must be relative to the image directory, got absolute {relative!r}",
            file=path,
            line=line,
        )
    joined = posixpath.normpath(posixpath.join(str(base), relative))
    if joined == ".." or joined.startswith("../"):
        raise ConfigError(
            f"{key!r} {relative!r} points outside the repository",
            file=path,
            line=line,
        )
    return PurePosixPath(joined)


_IMAGE_KEYS = (
    "name",
    "dockerfile",
    "context",
    "build_args",
    "platforms",
    "target",
    "watch",
    "depends_on",
    "repository",
    "tag",
    "tag_prefix",
    "tag_suffix",
    "test",
)


def parse_image_configs(
    text: str | None,
    *,
    directory: PurePosixPath,
    settings: Settings,
    default_name: str | None = None,
) -> tuple[ImageConfig, ...]:
    """The images a directory defines: its image.yaml's mapping, or each entry of its list
    (variants of one Dockerfile or folder: other build args, targets, Dockerfiles, tags)."""
    path = config_path(directory)
    config_file = PurePosixPath(path) if text is not None else None
    node = _load_node(text, path) if text is not None else None
    if node is None or isinstance(node, yaml.MappingNode):
        entries = _entries(node, path) if node is not None else {}
        config = _image_config(
            entries,
            directory=directory,
            settings=settings,
            path=path,
            default_name=default_name,
            config_file=config_file,
        )
        return (config,)
    if not isinstance(node, yaml.SequenceNode):
        raise ConfigError(
            "expected a mapping of settings at the top level",
            file=path,
            line=node.start_mark.line + 1,
        )
    if not node.value:
        raise ConfigError(
            "lists no image", file=path, line=node.start_mark.line + 1, hint="give one entry each"
        )
    configs = []
    for item in node.value:
        line = item.start_mark.line + 1
        if not isinstance(item, yaml.MappingNode):
            raise ConfigError(
                "each entry of the list must be a mapping of image settings",
                file=path,
                line=line,
            )
        entries = _entries(item, path)
        if "name" not in entries:
            raise ConfigError(
                "each image of a list needs a 'name'",
                file=path,
                line=line,
                hint="e.g. - name: serving-gpu",
            )
        config = _image_config(
            entries,
            directory=directory,
            settings=settings,
            path=path,
            default_name=None,
            config_file=config_file,
        )
        configs.append(replace(config, repository_name=default_name or directory.name))
    return tuple(configs)


def parse_image_config(
    text: str | None,
    *,
    directory: PurePosixPath,
    settings: Settings,
    default_name: str | None = None,
) -> ImageConfig:
    """Resolve one image's configuration; `text` is its image.yaml, None when absent."""
    path = config_path(directory)
    entries = _load_mapping(text, path) if text is not None else {}
    return _image_config(
        entries,
        directory=directory,
        settings=settings,
        path=path,
        default_name=default_name,
        config_file=PurePosixPath(path) if text is not None else None,
    )


def config_path(directory: PurePosixPath) -> str:
    """The folder's image.yaml, as a string: `directory / IMAGE_FILE` costs, per image."""
    at = str(directory)
    return IMAGE_FILE if at == "." else f"{at}/{IMAGE_FILE}"


def _image_config(
    entries: dict[str, _Entry],
    *,
    directory: PurePosixPath,
    settings: Settings,
    path: str,
    default_name: str | None,
    config_file: PurePosixPath | None,
) -> ImageConfig:
    _check_keys(entries, _IMAGE_KEYS, path)

    def get(key: str, convert: Callable[[_Entry], Any], default: Any) -> Any:
        return convert(entries[key]) if key in entries else default

    name = get("name", lambda e: _string(e, "name", path), default_name or directory.name)
    if not COMPONENT_RE.fullmatch(name):
        line = entries["name"].line if "name" in entries else None
        source = path if "name" in entries else str(directory)
        raise ConfigError(
            f"invalid image name {name!r}",
            file=source,
            line=line,
            hint="lowercase letters, digits, '.', '_' and '-'; set 'name' in image.yaml",
        )
    dockerfile = get(
        "dockerfile",
        lambda e: _inside_repo(
            directory, _string(e, "dockerfile", path), "dockerfile", path, e.line
        ),
        directory / "Dockerfile",
    )
    context = get(
        "context",
        lambda e: _inside_repo(directory, _string(e, "context", path), "context", path, e.line),
        directory,
    )
    image_args = dict(get("build_args", lambda e: _build_args(e, path), ()))
    build_args = tuple(sorted({**dict(settings.build_args), **image_args}.items()))
    target = get("target", lambda e: _string(e, "target", path), None)
    watch = get("watch", lambda e: _watch(e, path), ())
    depends_on = get("depends_on", lambda e: _string_list(e, "depends_on", path), ())
    repository = get("repository", lambda e: _repository(e, path), None)
    tag = get("tag", lambda e: _tag(e, "tag", path), None)
    prefix = get("tag_prefix", lambda e: _affix(e, "tag_prefix", path), "")
    suffix = get("tag_suffix", lambda e: _affix(e, "tag_suffix", path), "")
    if tag is not None and not (prefix or suffix):
        # Builder's own tags (git-<sha7>, the branch, semver) must not collide with the
        # other images of the repository: a tagged variant carries its tag as a prefix.
        prefix = f"{tag}-"
    platforms = get("platforms", lambda e: _platforms(e, path), settings.platforms)
    smoke = TestSpec(smoke=settings.smoke_test) if settings.smoke_test is not None else None
    test = get("test", lambda e: _test(e, path, platforms), smoke)
    return ImageConfig(
        name=name,
        directory=directory,
        dockerfile=dockerfile,
        context=context,
        config_file=config_file,
        build_args=build_args,
        platforms=platforms,
        target=target,
        watch=watch,
        depends_on=tuple(sorted(set(depends_on))),
        repository=repository,
        tag=tag,
        tag_prefix=prefix,
        tag_suffix=suffix,
        test=test,
        lines=tuple((key, entry.line) for key, entry in entries.items()),
    )


def _repository(entry: _Entry, path: str) -> str:
    text = _string(entry, "repository", path)
    try:
        ref = parse_reference(text)
    except InvalidReference as exc:
        raise ConfigError(str(exc), file=path, line=entry.line) from None
    if ref.tag or ref.digest:
        raise ConfigError(
            f"'repository' {text!r} names a tag or digest",
            file=path,
            line=entry.line,
            hint="give the repository alone, e.g. quay.io/jupyter/base-notebook; "
            "the tag goes in 'tag'",
        )
    return ref.repository


def _tag(entry: _Entry, key: str, path: str) -> str:
    text = _string(entry, key, path)
    if not TAG_RE.fullmatch(text):
        raise ConfigError(
            f"invalid {key} {text!r}",
            file=path,
            line=entry.line,
            hint="letters, digits, '_', '.' and '-', 128 at most, not starting with '.' or '-'",
        )
    return text


_AFFIX_RE = re.compile(r"[\w.-]{1,64}", re.ASCII)


def _affix(entry: _Entry, key: str, path: str) -> str:
    text = entry.value if isinstance(entry.value, str) else None
    if text is None or not _AFFIX_RE.fullmatch(text):
        raise ConfigError(
            f"{key!r} must be letters, digits, '_', '.' or '-', got {_describe(entry.value)}",
            file=path,
            line=entry.line,
        )
    return text


_TEST_KEYS = ("run", "timeout", "env", "network", "platforms")
_TEST_SHAPE = "a command, a list of commands or a mapping with 'run'"


def _test(entry: _Entry, path: str, platforms: tuple[str, ...]) -> TestSpec | None:
    """image.yaml's `test:`: a command, a list of commands, or a block with `run` and
    the optional `timeout`, `env`, `network` and `platforms`; `false` opts out of the
    smoke check builder.yaml asks for."""
    value = entry.value
    if value is False:
        return None
    if isinstance(value, (str, list)):
        return TestSpec(commands=_test_commands(value, entry, path, ()))
    if not isinstance(value, dict):
        raise ConfigError(
            f"'test' must be {_TEST_SHAPE}, got {_describe(value)}",
            file=path,
            line=entry.line,
            hint="e.g. test: python3 -c 'import job'",
        )
    for key in value:
        if key not in _TEST_KEYS:
            close = difflib.get_close_matches(str(key), _TEST_KEYS, n=1)
            hint = (
                f"did you mean {close[0]!r}?" if close else "known keys: " + ", ".join(_TEST_KEYS)
            )
            raise ConfigError(
                f"unknown key {key!r} in 'test'", file=path, line=entry.line_at(key), hint=hint
            )
    if "run" not in value:
        raise ConfigError(
            "'test' needs 'run': the command or commands to run in the image",
            file=path,
            line=entry.line,
        )
    commands = _test_commands(value["run"], entry, path, ("run",))
    timeout = value.get("timeout", DEFAULT_TEST_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1:
        raise ConfigError(
            f"'test.timeout' must be a whole number of seconds, at least 1, got "
            f"{_describe(timeout)}",
            file=path,
            line=entry.line_at("timeout"),
        )
    network = value.get("network", "none")
    if network not in TEST_NETWORKS:
        raise ConfigError(
            "'test.network' must be 'none' or 'default', got "
            + (repr(network) if isinstance(network, str) else _describe(network)),
            file=path,
            line=entry.line_at("network"),
            hint="tests run without a network unless they ask for docker's default one",
        )
    env: tuple[tuple[str, str], ...] = ()
    if "env" in value:
        env = _test_env(value["env"], entry, path)
    tested = None
    if "platforms" in value:
        tested = _test_platforms(value["platforms"], entry, path, platforms)
    return TestSpec(commands=commands, timeout=timeout, env=env, network=network, platforms=tested)


def _test_commands(value: object, entry: _Entry, path: str, at: tuple[str, ...]) -> tuple[str, ...]:
    name = "test." + ".".join(at) if at else "test"
    if isinstance(value, str):
        if not value.strip():
            raise ConfigError(f"'{name}' is an empty command", file=path, line=entry.line_at(*at))
        return (value.strip(),)
    if not isinstance(value, list):
        raise ConfigError(
            f"'{name}' must be a command or a list of commands, got {_describe(value)}",
            file=path,
            line=entry.line_at(*at),
        )
    if not value:
        raise ConfigError(f"'{name}' lists no command", file=path, line=entry.line_at(*at))
    commands = []
    for index, command in enumerate(value):
        line = entry.line_at(*at, index)
        if not isinstance(command, str):
            raise ConfigError(
                f"'{name}' command {index + 1} must be a string, got {_describe(command)}",
                file=path,
                line=line,
            )
        if not command.strip():
            raise ConfigError(f"'{name}' command {index + 1} is empty", file=path, line=line)
        commands.append(command.strip())
    return tuple(commands)


def _test_env(value: object, entry: _Entry, path: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        raise ConfigError(
            f"'test.env' must be a mapping of NAME: value, got {_describe(value)}",
            file=path,
            line=entry.line_at("env"),
        )
    env = []
    for name, text in value.items():
        line = entry.line_at("env", name)
        if not isinstance(name, str) or not _ARG_NAME_RE.fullmatch(name):
            raise ConfigError(f"invalid test env name {name!r}", file=path, line=line)
        if isinstance(text, bool) or not isinstance(text, (str, int, float)):
            raise ConfigError(
                f"test env {name!r} must be a string or number, got {_describe(text)}",
                file=path,
                line=line,
            )
        env.append((name, str(text)))
    return tuple(sorted(env))


def _test_platforms(
    value: object, entry: _Entry, path: str, built: tuple[str, ...]
) -> tuple[str, ...]:
    node = _child(entry.node, "platforms")
    nested = _Entry(
        value, entry.line_at("platforms"), _item_lines(node) if node is not None else {}, node
    )
    tested = _platforms(nested, path, key="test.platforms")
    written = [str(p).strip() for p in value] if isinstance(value, list) else []
    for platform in tested:
        if platform not in built:
            raise ConfigError(
                f"test platform {platform!r} is not one of the image's platforms "
                f"({', '.join(built)})",
                file=path,
                line=nested.line_of(written.index(platform)),
                hint="test some of the platforms the image is built for, or leave "
                "'platforms' out to test them all",
            )
    return tested


def _child(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
                found: yaml.Node = value_node
                return found
    return None


def _smoke_test(entry: _Entry, path: str) -> tuple[str, ...]:
    text = _string(entry, "smoke_test", path)
    try:
        return tuple(shlex.split(text))
    except ValueError as exc:
        raise ConfigError(
            f"'smoke_test' {text!r} cannot be split into arguments: {exc}",
            file=path,
            line=entry.line,
            hint="quote as a shell would, e.g. smoke_test: --help",
        ) from None
