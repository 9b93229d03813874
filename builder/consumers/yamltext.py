"""Exact places in YAML text, and splices that keep every other byte (pure).

YAML is never serialised again: that would drop comments, re-indent, reorder and expand
anchors. PyYAML's composer marks each node's start and end (character offsets), so a
scalar is rewritten by replacing exactly its characters. A node's start mark includes its
anchor and tag (`&img !!str x`), so a scalar's own start is taken from the scanner's token,
found by the end offset both share.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

import yaml

from builder.errors import UserError

MERGE_TAG = "tag:yaml.org,2002:merge"
# What a plain scalar may hold here: the characters of image references and digests.
_PLAIN_SAFE_RE = re.compile(r"^[A-Za-z0-9_./][A-Za-z0-9_./:@+-]*$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Splice:
    """Replace text[start:end] with `text`."""

    start: int
    end: int
    text: str


def apply_splices(text: str, splices: Iterable[Splice]) -> str:
    """Apply non-overlapping splices; the same splice given twice applies once."""
    ordered = sorted(set(splices), key=lambda s: (s.start, s.end))
    parts, position = [], 0
    for splice in ordered:
        if splice.start < position:
            raise ValueError(f"overlapping splices at {splice.start}")  # a bug, not input
        parts.append(text[position : splice.start])
        parts.append(splice.text)
        position = splice.end
    parts.append(text[position:])
    return "".join(parts)


def yaml_problem(exc: yaml.YAMLError) -> tuple[str, int | None]:
    """PyYAML's error as one phrase and the line it points at."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.problem and exc.context:
            problem = f"{exc.context}, {exc.problem}"
        return problem, (mark.line + 1 if mark is not None else None)
    return str(exc), None


def plain_ok(value: str) -> bool:
    """Whether `value` reads back as the same string when written plain, in any context."""
    if not _PLAIN_SAFE_RE.match(value):
        return False
    try:
        return bool(yaml.safe_load(value) == value)
    except yaml.YAMLError:
        return False


def render_value(value: str) -> str:
    """A new scalar's text: plain when that reads back the same, else double-quoted."""
    return value if plain_ok(value) else json.dumps(value)


class YamlText:
    """A YAML file composed once: its documents and each scalar's exact span."""

    def __init__(self, text: str, path: str) -> None:
        self.text = text
        self.path = path
        loader = yaml.SafeLoader  # pure Python: its marks count characters, as str indexes do
        try:
            self.documents: tuple[yaml.Node, ...] = tuple(yaml.compose_all(text, Loader=loader))
            self._starts = {
                token.end_mark.index: token.start_mark.index
                for token in yaml.scan(text, Loader=loader)
                if isinstance(token, yaml.ScalarToken)
            }
        except yaml.YAMLError as exc:
            problem, line = yaml_problem(exc)
            raise UserError(
                f"cannot parse YAML: {problem}",
                file=path,
                line=line,
                hint="fix the file; builder pin writes nothing until every consumer parses",
            ) from None
        self._newlines = [i for i, c in enumerate(text) if c == "\n"]

    # -- where ----------------------------------------------------------------------------

    def span(self, node: yaml.ScalarNode) -> tuple[int, int]:
        end = node.end_mark.index
        return self._starts.get(end, node.start_mark.index), end

    def line_at(self, index: int) -> int:
        return bisect.bisect_left(self._newlines, index) + 1

    def line(self, node: yaml.Node) -> int:
        if isinstance(node, yaml.ScalarNode):
            return self.line_at(self.span(node)[0])
        return node.start_mark.line + 1

    # -- reading --------------------------------------------------------------------------

    @staticmethod
    def entries(node: yaml.Node) -> list[tuple[yaml.ScalarNode, yaml.Node]]:
        """A mapping's scalar-keyed pairs, `<<` merges followed; an own key wins."""
        if not isinstance(node, yaml.MappingNode):
            return []
        own: list[tuple[yaml.ScalarNode, yaml.Node]] = []
        merged: list[tuple[yaml.ScalarNode, yaml.Node]] = []
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode):
                continue
            if key.tag == MERGE_TAG:
                sources = value.value if isinstance(value, yaml.SequenceNode) else [value]
                for source in sources:
                    if isinstance(source, yaml.MappingNode) and source is not node:
                        merged.extend(YamlText.entries(source))
            else:
                own.append((key, value))
        names = {k.value for k, _ in own}
        return own + [(k, v) for k, v in merged if k.value not in names]

    @staticmethod
    def get(node: yaml.Node | None, key: str) -> yaml.Node | None:
        if node is None:
            return None
        for k, v in YamlText.entries(node):
            if k.value == key:
                return v
        return None

    @staticmethod
    def items(node: yaml.Node | None) -> list[yaml.Node]:
        return list(node.value) if isinstance(node, yaml.SequenceNode) else []

    @staticmethod
    def string(node: yaml.Node | None) -> str | None:
        """A scalar's value when it is a string (not null, a number or a boolean)."""
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:str":
            return str(node.value)
        return None

    # -- writing --------------------------------------------------------------------------

    def replace_scalar(self, node: yaml.ScalarNode, value: str) -> Splice:
        """Set a scalar to `value`, keeping its quoting where the value allows."""
        start, end = self.span(node)
        old = self.text[start:end]
        if node.style == "'":
            new = "'" + value.replace("'", "''") + "'"
        elif node.style == '"':
            new = json.dumps(value)  # JSON's escapes are a subset of YAML's
        elif node.style in ("|", ">"):
            # A block scalar ends after its line break(s): keep them.
            new = json.dumps(value) + old[len(old.rstrip("\r\n")) :]
        else:
            new = render_value(value)
            if start == end:  # `key:` with no value: the mark sits right after the colon
                new = " " + new
        return Splice(start=start, end=end, text=new)

    def _end_of(self, node: yaml.Node) -> int:
        """Where a value's own text ends: its last scalar, or a flow collection's bracket."""
        if isinstance(node, yaml.ScalarNode):
            return self.span(node)[1]
        if isinstance(node, yaml.CollectionNode) and node.flow_style:
            return int(node.end_mark.index)
        children: list[yaml.Node] = []
        if isinstance(node, yaml.MappingNode):
            children = [v for _, v in node.value]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        return self._end_of(children[-1]) if children else int(node.start_mark.index)

    def _line_end(self, index: int) -> int:
        """The index of the line break ending the line `index` is on (or the text's end)."""
        if index > 0 and self.text[index - 1] == "\n":  # a block scalar ends past its break
            return index - 1
        found = self.text.find("\n", index)
        return len(self.text) if found < 0 else found

    def remove_entry(self, mapping: yaml.MappingNode, key: str) -> Splice | None:
        """Delete `key` and its value from a mapping; None when the key is absent.

        A block entry alone on its line(s) goes with its lines; an entry sharing its line
        with a `- ` goes up to the next key; a flow entry goes with its comma. The one entry
        of a mapping cannot go (the mapping would change type): it is set to "".
        """
        pairs = [(k, v) for k, v in mapping.value if isinstance(k, yaml.ScalarNode)]
        index = next((i for i, (k, _) in enumerate(pairs) if k.value == key), None)
        if index is None:
            return None
        key_node, value_node = pairs[index]
        key_start = self.span(key_node)[0]
        value_end = self._end_of(value_node)
        last = index == len(pairs) - 1
        if len(pairs) == 1:
            if isinstance(value_node, yaml.ScalarNode):
                return self.replace_scalar(value_node, "")
            return None
        if mapping.flow_style:
            if not last:
                return Splice(start=key_start, end=self.span(pairs[index + 1][0])[0], text="")
            return Splice(start=self._end_of(pairs[index - 1][1]), end=value_end, text="")
        line_start = self.text.rfind("\n", 0, key_start) + 1
        line_end = self._line_end(value_end)
        if not self.text[line_start:key_start].strip():
            return Splice(start=line_start, end=min(line_end + 1, len(self.text)), text="")
        if not last:  # `- tag: x` then the next key on its own line
            return Splice(start=key_start, end=self.span(pairs[index + 1][0])[0], text="")
        # The last entry, sharing its line with an earlier one (`{` style without braces
        # cannot happen in block YAML): drop from the previous value's end.
        return Splice(start=self._end_of(pairs[index - 1][1]), end=line_end, text="")

    def insert_entry(self, mapping: yaml.MappingNode, key: str, value: str) -> Splice:
        """Add `key: value` after a mapping's last entry, in the mapping's own style."""
        pairs = [(k, v) for k, v in mapping.value if isinstance(k, yaml.ScalarNode)]
        entry = f"{key}: {render_value(value)}"
        if not pairs:
            raise ValueError("insert into an empty mapping")  # callers insert beside a key
        last_end = self._end_of(pairs[-1][1])
        if mapping.flow_style:
            return Splice(start=last_end, end=last_end, text=f", {entry}")
        first_start = self.span(pairs[0][0])[0]
        column = first_start - (self.text.rfind("\n", 0, first_start) + 1)
        at = self._line_end(last_end)
        newline = "\r\n" if at > 0 and self.text[at - 1 : at] == "\r" else "\n"
        if newline == "\r\n":
            at -= 1
        return Splice(start=at, end=at, text=f"{newline}{' ' * column}{entry}")
