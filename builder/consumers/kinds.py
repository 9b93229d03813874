"""Where each kind of consumer names images, and the edits a pin makes (pure).

Every kind reduces a file to occurrences: a reference to an in-repo image, the line it is
on, the digest it pins now (None: a mutable tag), and how to rewrite it to a target.
`compute_file` turns those into --check findings, edits and the file's new text.
"""

from __future__ import annotations

import ast
import io
import json
import re
import tokenize
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

import yaml

from builder.consumers.model import (
    LOCK_FILE,
    ConsumerSpec,
    Edit,
    FileOutcome,
    Finding,
    Kind,
    Pins,
    Problem,
    Target,
)
from builder.consumers.yamltext import Splice, YamlText, apply_splices
from builder.errors import ConfigError, UserError
from builder.refs import InvalidReference, Reference, parse_reference

Rewrite = Callable[[Target], tuple[str, tuple[Splice, ...]]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Occurrence:
    """One reference to an in-repo image in a consumer file."""

    line: int
    image: str
    written: str  # as the file has it (kustomize/helm: its fields joined into one reference)
    digest: str | None  # the digest it pins now; None: a tag alone, mutable
    rewrite: Rewrite  # target -> (the reference written after, the splices that write it)


def pinned_text(
    reference: Reference, target: Target, *, keep_tag: bool, variant: bool = False
) -> str:
    """`repo@sha256:...`, or `repo:tag@sha256:...` keeping the tag the consumer had. A
    `variant` (an image sharing its repository) keeps its tag always: only the tag tells it
    from the others, so the next pin finds the same image."""
    if variant:
        tag = f":{reference.tag or 'latest'}"
    else:
        tag = f":{reference.tag}" if keep_tag and reference.tag else ""
    return f"{target.repository}{tag}@{target.digest}"


def _templated(text: str) -> bool:
    """An Argo/Helm/envsubst expression, resolved by the consumer at run time."""
    return "{{" in text or "$" in text


def resolve(text: str, pins: Pins, *, path: str, line: int) -> tuple[str, Reference] | None:
    """The in-repo image a written reference names, or None for other images."""
    if _templated(text):
        return None
    try:
        reference = parse_reference(text)
    except InvalidReference as exc:
        raise UserError(str(exc), file=path, line=line) from None
    name = pins.image_of(reference)
    return (name, reference) if name is not None else None


# -- Argo Workflows and Kubernetes manifests --------------------------------------------

_ARGO_KINDS = {
    "Workflow": ("spec",),
    "WorkflowTemplate": ("spec",),
    "ClusterWorkflowTemplate": ("spec",),
    "CronWorkflow": ("spec", "workflowSpec"),
}
_POD_TEMPLATE = ("spec", "template", "spec")
_POD_SPECS = {
    "Pod": ("spec",),
    "PodTemplate": ("template", "spec"),
    "ReplicationController": _POD_TEMPLATE,
    "ReplicaSet": _POD_TEMPLATE,
    "Deployment": _POD_TEMPLATE,
    "StatefulSet": _POD_TEMPLATE,
    "DaemonSet": _POD_TEMPLATE,
    "Job": _POD_TEMPLATE,
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
_POD_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
_ARGO_CONTAINER_LISTS = ("initContainers", "sidecars")


def _at(doc: YamlText, node: yaml.Node | None, path: Sequence[str]) -> yaml.Node | None:
    for key in path:
        node = doc.get(node, key)
    return node


def _argo_template_images(
    doc: YamlText, template: yaml.Node, depth: int = 0
) -> Iterator[yaml.Node]:
    for single in ("container", "script"):
        image = _at(doc, template, (single, "image"))
        if image is not None:
            yield image
    for item in doc.items(_at(doc, template, ("containerSet", "containers"))):
        image = doc.get(item, "image")
        if image is not None:
            yield image
    for key in _ARGO_CONTAINER_LISTS:
        for item in doc.items(doc.get(template, key)):
            image = doc.get(item, "image")
            if image is not None:
                yield image
    if depth > 8:  # inline templates nest; aliases could make them loop
        return
    # Inline templates (Argo 3.3+): a step or DAG task may define its template in place.
    inline: list[yaml.Node | None] = []
    for group in doc.items(doc.get(template, "steps")):
        inline.extend(doc.get(step, "inline") for step in doc.items(group))
    for task in doc.items(_at(doc, template, ("dag", "tasks"))):
        inline.append(doc.get(task, "inline"))
    for node in inline:
        if node is not None:
            yield from _argo_template_images(doc, node, depth + 1)


def _manifest_images(doc: YamlText, root: yaml.Node, kind: str, api: str) -> Iterator[yaml.Node]:
    if kind in _ARGO_KINDS and api.startswith("argoproj.io/"):
        spec = _at(doc, root, _ARGO_KINDS[kind])
        for template in doc.items(doc.get(spec, "templates")):
            yield from _argo_template_images(doc, template)
        defaults = doc.get(spec, "templateDefaults")
        if defaults is not None:
            yield from _argo_template_images(doc, defaults)
    elif kind in _POD_SPECS:
        pod = _at(doc, root, _POD_SPECS[kind])
        for key in _POD_CONTAINER_LISTS:
            for item in doc.items(doc.get(pod, key)):
                image = doc.get(item, "image")
                if image is not None:
                    yield image
    elif kind == "List" or kind.endswith("List"):
        for item in doc.items(doc.get(root, "items")):
            sub_kind = doc.string(doc.get(item, "kind"))
            sub_api = doc.string(doc.get(item, "apiVersion"))
            if sub_kind and sub_api:
                yield from _manifest_images(doc, item, sub_kind, sub_api)


def find_manifests(
    doc: YamlText, pins: Pins, *, keep_tag: bool, inferred: bool
) -> tuple[Kind, list[Occurrence]]:
    """Argo and Kubernetes documents, each read by its own `kind`."""
    found: dict[int, yaml.ScalarNode] = {}
    any_argo = False
    for root in doc.documents:
        if isinstance(root, yaml.ScalarNode) and root.tag == "tag:yaml.org,2002:null":
            continue  # an empty document
        kind = doc.string(doc.get(root, "kind"))
        api = doc.string(doc.get(root, "apiVersion"))
        if not kind or not api:
            if inferred:
                raise UserError(
                    "cannot tell what reads this file: a document without apiVersion and kind",
                    file=doc.path,
                    line=doc.line(root),
                    hint="give this consumer a kind in builder.yaml: helm (with paths), "
                    "kustomize, argo or kubernetes",
                )
            continue
        any_argo = any_argo or kind in _ARGO_KINDS
        for node in _manifest_images(doc, root, kind, api):
            if isinstance(node, yaml.ScalarNode):
                found.setdefault(id(node), node)
    occurrences = [
        o for node in found.values() if (o := _scalar(doc, node, pins, keep_tag)) is not None
    ]
    return ("argo" if any_argo else "kubernetes"), occurrences


def _scalar(doc: YamlText, node: yaml.ScalarNode, pins: Pins, keep_tag: bool) -> Occurrence | None:
    """A YAML scalar holding a whole reference (Argo, Kubernetes)."""
    written = doc.string(node)
    if written is None:
        return None
    line = doc.line(node)
    resolved = resolve(written, pins, path=doc.path, line=line)
    if resolved is None:
        return None
    name, reference = resolved

    variant = pins.is_variant(name)

    def rewrite(target: Target) -> tuple[str, tuple[Splice, ...]]:
        new = pinned_text(reference, target, keep_tag=keep_tag, variant=variant)
        return new, (doc.replace_scalar(node, new),)

    return Occurrence(
        line=line, image=name, written=written, digest=reference.digest, rewrite=rewrite
    )


# -- Kustomize and Helm: references split over fields -----------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _Fields:
    """Field names of one image block: (tag key, digest key)."""

    tag: str
    digest: str


_KUSTOMIZE = _Fields(tag="newTag", digest="digest")
_HELM = _Fields(tag="tag", digest="digest")


def _field_text(node: yaml.Node | None) -> str | None:
    """A field's text as written; `tag: 1.0` is a number to YAML but a tag to Helm."""
    if isinstance(node, yaml.ScalarNode) and node.tag != "tag:yaml.org,2002:null":
        return str(node.value) or None
    return None


def _resolve_block(
    identity: str, tag: str | None, digest: str | None, pins: Pins, *, path: str, line: int
) -> tuple[str, Reference] | None:
    """The in-repo image a Helm or Kustomize block names. Its repository alone says, except
    in a repository several images share: there only a literal tag tells which (a block
    with a digest or a templated tag but no such tag names none for sure: left alone)."""
    resolved = resolve(identity, pins, path=path, line=line)  # refuses an invalid identity
    if _templated(identity) or parse_reference(identity).repository not in pins.variants:
        return resolved
    if not tag or _templated(tag):
        return resolved if not tag and not digest else None
    try:
        reference = parse_reference(f"{identity}:{tag}")
    except InvalidReference:
        return None
    name = pins.image_of(reference)
    return (name, reference) if name is not None else None


def _block(
    doc: YamlText,
    mapping: yaml.MappingNode,
    identity: str,
    identity_node: yaml.Node,
    fields: _Fields,
    pins: Pins,
    keep_tag: bool,
) -> Occurrence | None:
    line = doc.line(identity_node)
    tag_node = doc.get(mapping, fields.tag)
    digest_node = doc.get(mapping, fields.digest)
    tag, digest = _field_text(tag_node), _field_text(digest_node)
    resolved = _resolve_block(identity, tag, digest, pins, path=doc.path, line=line)
    if resolved is None:
        return None
    name, reference = resolved
    variant = pins.is_variant(name)
    written = identity + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")

    def rewrite(target: Target) -> tuple[str, tuple[Splice, ...]]:
        if parse_reference(target.repository).repository != reference.repository:
            # The block's digest moves, its repository stays: that digest would be looked
            # for where the build never pushed it.
            raise UserError(
                f"{identity} was pushed as {target.repository}; builder pin sets a block's "
                "digest, not its repository",
                file=doc.path,
                line=line,
                hint=f"point the block at {target.repository}, or pin from a build that "
                f"pushed to {identity}",
            )
        own = {k.value: (k, v) for k, v in mapping.value if isinstance(k, yaml.ScalarNode)}
        splices: list[Splice] = []
        tag_entry, digest_entry = own.get(fields.tag), own.get(fields.digest)
        drop_tag = not (keep_tag or variant) and tag_entry is not None
        if digest_entry is not None and isinstance(digest_entry[1], yaml.ScalarNode):
            if digest != target.digest:
                splices.append(doc.replace_scalar(digest_entry[1], target.digest))
            if drop_tag:
                removal = doc.remove_entry(mapping, fields.tag)
                splices.extend([removal] if removal is not None else [])
        elif tag_entry is not None and drop_tag and isinstance(tag_entry[1], yaml.ScalarNode):
            # The tag's entry becomes the digest's: same place, no overlapping splices.
            splices.append(doc.replace_scalar(tag_entry[0], fields.digest))
            splices.append(doc.replace_scalar(tag_entry[1], target.digest))
        else:
            splices.append(doc.insert_entry(mapping, fields.digest, target.digest))
            if drop_tag:
                removal = doc.remove_entry(mapping, fields.tag)
                splices.extend([removal] if removal is not None else [])
        kept = f":{tag}" if tag and (keep_tag or variant or fields.tag not in own) else ""
        return f"{identity}{kept}@{target.digest}", tuple(splices)

    return Occurrence(line=line, image=name, written=written, digest=digest, rewrite=rewrite)


def find_kustomize(doc: YamlText, pins: Pins, *, keep_tag: bool) -> list[Occurrence]:
    occurrences = []
    for root in doc.documents:
        for entry in doc.items(doc.get(root, "images")):
            if not isinstance(entry, yaml.MappingNode):
                raise UserError(
                    "an images: entry must be a mapping with a name",
                    file=doc.path,
                    line=doc.line(entry),
                )
            new_name, name = doc.get(entry, "newName"), doc.get(entry, "name")
            identity_node = new_name if doc.string(new_name) else name
            identity = doc.string(identity_node)
            if identity is None or identity_node is None:
                raise UserError("an images: entry has no name", file=doc.path, line=doc.line(entry))
            found = _block(doc, entry, identity, identity_node, _KUSTOMIZE, pins, keep_tag)
            if found is not None:
                occurrences.append(found)
    return occurrences


def _key_path(doc: YamlText, node: yaml.Node, parts: Sequence[str]) -> Iterator[yaml.Node]:
    if not parts:
        yield node
        return
    head, rest = parts[0], parts[1:]
    if head == "*":
        children = (
            [v for _, v in doc.entries(node)]
            if isinstance(node, yaml.MappingNode)
            else doc.items(node)
        )
    elif isinstance(node, yaml.SequenceNode) and head.isdigit():
        children = doc.items(node)[int(head) : int(head) + 1]
    else:
        child = doc.get(node, head)
        children = [child] if child is not None else []
    for child in children:
        yield from _key_path(doc, child, rest)


def find_helm(doc: YamlText, pins: Pins, spec: ConsumerSpec, *, keep_tag: bool) -> list[Occurrence]:
    occurrences = []
    roots = [d for d in doc.documents if isinstance(d, yaml.MappingNode)]
    # Bitnami's charts (common.images.image) let `global.imageRegistry` override each
    # block's registry: a block that names no in-repo image by its own registry is read
    # with that one (other charts never read it, so it never unpins a block).
    overrides = {id(root): _global_registry(doc, root) for root in roots}
    for key_path in spec.paths:
        blocks = [
            (b, overrides[id(root)])
            for root in roots
            for b in _key_path(doc, root, key_path.split("."))
        ]
        if not blocks:
            raise UserError(
                f"key path {key_path!r} (builder.yaml:{spec.line}) matches nothing",
                file=doc.path,
                hint="fix the path in builder.yaml's consumers, or the values file",
            )
        for block, global_registry in blocks:
            repository = doc.get(block, "repository")
            text = doc.string(repository)
            if not isinstance(block, yaml.MappingNode) or repository is None or text is None:
                raise UserError(
                    f"key path {key_path!r} names no image block with a 'repository'",
                    file=doc.path,
                    line=doc.line(block),
                    hint="point the path at a mapping of repository/tag/digest",
                )
            registry = doc.string(doc.get(block, "registry"))
            identity = f"{registry.rstrip('/')}/{text}" if registry else text
            found = _block(doc, block, identity, repository, _HELM, pins, keep_tag)
            if found is None and global_registry:  # a chart that reads it, as Bitnami's
                identity = f"{global_registry.rstrip('/')}/{text}"
                found = _block(doc, block, identity, repository, _HELM, pins, keep_tag)
            if found is not None:
                occurrences.append(found)
    return occurrences


def _global_registry(doc: YamlText, root: yaml.MappingNode) -> str | None:
    shared = doc.get(root, "global")
    if not isinstance(shared, yaml.MappingNode):
        return None
    return doc.string(doc.get(shared, "imageRegistry")) or None


# -- Airflow DAG files ------------------------------------------------------------------

# KubernetesPodOperator and the operators that run a pod through it.
_POD_OPERATORS = frozenset(
    {"KubernetesPodOperator", "KubernetesJobOperator", "GKEStartPodOperator", "EksPodOperator"}
)
_TASK_DECORATORS = frozenset({"kubernetes", "kubernetes_cmd"})  # @task.kubernetes(image=...)


def _pod_call(func: ast.expr, operators: frozenset[str]) -> bool:
    if isinstance(func, ast.Name):
        return func.id in operators
    if isinstance(func, ast.Attribute):
        if func.attr in operators:
            return True
        if func.attr == "partial":  # KubernetesPodOperator.partial(image=...).expand(...)
            return _pod_call(func.value, operators)
        owner = func.value
        owner_name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", None)
        return func.attr in _TASK_DECORATORS and owner_name == "task"
    return False


def _image_arguments(tree: ast.Module, operators: frozenset[str]) -> list[ast.expr]:
    """What each pod operator call or @task.kubernetes gives as `image=`."""
    return [
        keyword.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and _pod_call(node.func, operators)
        for keyword in node.keywords
        if keyword.arg == "image"
    ]


def _named_literals(tree: ast.Module, arguments: Sequence[ast.expr]) -> list[ast.Constant]:
    """`IMAGE = "registry/etl:1"` at module level, given as `image=IMAGE` to a pod
    operator: the literal is the reference. A name bound anywhere else too (assigned again,
    imported, a loop or `with` target, a parameter, a comprehension variable, a pattern),
    or any star import, leaves it alone: which value a task sees is no longer one literal's.
    """
    used = {argument.id for argument in arguments if isinstance(argument, ast.Name)}
    if not used:
        return []
    bindings: dict[str, int] = {}
    for node in ast.walk(tree):
        for name in _bound_names(node):
            bindings[name] = bindings.get(name, 0) + 1
        if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
            return []
    found = []
    for node in tree.body:  # module level only
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id in used
            and bindings.get(node.targets[0].id) == 1
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            found.append(node.value)
    return found


def _bound_names(node: ast.AST) -> list[str]:
    """The names a node binds, in any scope."""
    if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
        return [node.id]
    if isinstance(node, ast.arg):
        return [node.arg]
    if isinstance(node, ast.alias):
        return [node.asname or node.name.partition(".")[0]]
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and node.name:
        return [node.name]
    if isinstance(node, ast.MatchMapping) and node.rest:
        return [node.rest]
    if isinstance(node, ast.Global | ast.Nonlocal):
        return list(node.names)
    return []


def find_airflow(path: str, text: str, pins: Pins, *, keep_tag: bool) -> list[Occurrence]:
    """`image="..."` string literals given to KubernetesPodOperator (or an operator built
    on it: GKE, EKS, KubernetesJobOperator) or @task.kubernetes, and the literal a module
    constant holds when `image=CONSTANT` names it.

    `ast` finds the literals; `tokenize` finds each one's token, which alone changes.
    """
    # Python reads a file with a UTF-8 byte order mark; ast.parse of the text does not.
    bom = 1 if text.startswith("\ufeff") else 0
    text = text[bom:]
    lone = re.search(r"\r(?!\n)", text)
    if lone is not None:
        # Python ends a line there, tokenize and the line table here do not: the edits
        # would land on the wrong literal.
        raise UserError(
            "ends a line with a lone carriage return, which builder pin cannot place edits in",
            file=path,
            line=text.count("\n", 0, lone.start()) + 1,
            hint="save the file with \\n (or \\r\\n) line ends",
        )
    try:
        tree = ast.parse(text, filename=path)
    except SyntaxError as exc:
        raise UserError(f"cannot parse Python: {exc.msg}", file=path, line=exc.lineno) from None
    operators = set(_POD_OPERATORS)
    for node in ast.walk(tree):  # `from ...pod import KubernetesPodOperator as KPO`
        if isinstance(node, ast.ImportFrom):
            operators.update(a.asname for a in node.names if a.name in _POD_OPERATORS and a.asname)
    arguments = _image_arguments(tree, frozenset(operators))
    literals = [
        argument
        for argument in arguments
        if isinstance(argument, ast.Constant) and isinstance(argument.value, str)
    ]
    literals.extend(_named_literals(tree, arguments))
    if not literals:
        return []
    lines = text.split("\n")
    starts = [0]
    for line in lines[:-1]:
        starts.append(starts[-1] + len(line) + 1)
    tokens = {
        token.start: token
        for token in tokenize.generate_tokens(io.StringIO(text).readline)
        if token.type == tokenize.STRING
    }

    def char_col(row: int, byte_col: int) -> int:  # ast counts UTF-8 bytes, tokenize chars
        return len(lines[row - 1].encode("utf-8")[:byte_col].decode("utf-8", "replace"))

    occurrences = []
    for literal in sorted(literals, key=lambda n: (n.lineno, n.col_offset)):
        value = str(literal.value)
        resolved = resolve(value, pins, path=path, line=literal.lineno)
        if resolved is None:
            continue
        name, reference = resolved
        start = (literal.lineno, char_col(literal.lineno, literal.col_offset))
        end_row = literal.end_lineno or literal.lineno
        end = (end_row, char_col(end_row, literal.end_col_offset or 0))
        token = tokens.get(start)
        if token is None or token.end != end:
            raise UserError(
                "the image is split over several string literals; builder pin rewrites one",
                file=path,
                line=literal.lineno,
                hint='write it as a single literal, e.g. image="registry/name:tag"',
            )
        occurrences.append(
            Occurrence(
                line=literal.lineno,
                image=name,
                written=value,
                digest=reference.digest,
                rewrite=_token_rewrite(
                    token, starts, reference, keep_tag, variant=pins.is_variant(name), at=bom
                ),
            )
        )
    return occurrences


_STRING_TOKEN_RE = re.compile(r"^(?P<prefix>[rRuU]*)(?P<quote>'''|\"\"\"|'|\")")


def _token_rewrite(
    token: tokenize.TokenInfo,
    starts: Sequence[int],
    reference: Reference,
    keep_tag: bool,
    *,
    variant: bool,
    at: int = 0,
) -> Rewrite:
    match = _STRING_TOKEN_RE.match(token.string)
    if match is None:  # a bytes or f-string literal is not an ast str Constant
        raise ValueError(f"unexpected string token {token.string!r}")
    prefix, quote = match["prefix"], match["quote"]
    begin = at + starts[token.start[0] - 1] + token.start[1]
    finish = at + starts[token.end[0] - 1] + token.end[1]

    def rewrite(target: Target) -> tuple[str, tuple[Splice, ...]]:
        new = pinned_text(reference, target, keep_tag=keep_tag, variant=variant)
        # A reference holds no quote or backslash: the same prefix and quotes stay valid.
        return new, (Splice(start=begin, end=finish, text=f"{prefix}{quote}{new}{quote}"),)

    return rewrite


# -- the lock file ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _JsonEntry:
    key: str
    key_start: int
    value_start: int
    value_end: int
    value: object


def _json_entries(text: str, path: str) -> tuple[list[_JsonEntry], int]:
    """A top-level JSON object's entries with their offsets, and its closing brace's."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"cannot parse JSON: {exc.msg}", file=path, line=exc.lineno) from None
    if not isinstance(data, dict):
        raise UserError("must be a JSON object of image name -> pinned reference", file=path)
    decoder = json.JSONDecoder()
    entries: list[_JsonEntry] = []

    def skip(i: int) -> int:  # past JSON whitespace
        while i < len(text) and text[i] in " \t\n\r":
            i += 1
        return i

    i = skip(0) + 1  # past `{`
    while True:
        i = skip(i)
        if text[i] == "}":
            return entries, i
        if text[i] == ",":
            i = skip(i + 1)
        key_start = i
        key, i = decoder.raw_decode(text, i)  # a key is a JSON string value too
        i = skip(i) + 1  # past `:`
        value_start = skip(i)
        value, i = decoder.raw_decode(text, value_start)
        entries.append(
            _JsonEntry(
                key=str(key), key_start=key_start, value_start=value_start, value_end=i, value=value
            )
        )


def _line_of(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def find_lockfile(
    path: str, text: str, pins: Pins, *, keep_tag: bool
) -> tuple[list[Occurrence], list[Finding], list[Splice], list[Edit]]:
    """`images.lock.json`: image name -> pinned reference, for DAGs that look images up.

    Entries are rewritten in place; an image this run pins that the file lacks is added
    at the end (or reported missing by --check).
    """
    entries, closing = _json_entries(text, path)
    names = pins.names
    occurrences = []
    for entry in entries:
        line = _line_of(text, entry.key_start)
        if entry.key not in names:
            raise UserError(
                f"{entry.key!r} is not an image of this repository",
                file=path,
                line=line,
                hint="known images: " + ", ".join(sorted(names)),
            )
        if not isinstance(entry.value, str):
            raise UserError(
                f"{entry.key!r} must map to an image reference string", file=path, line=line
            )
        try:
            reference = parse_reference(entry.value)
        except InvalidReference as exc:
            raise UserError(str(exc), file=path, line=line) from None

        def rewrite(
            target: Target, entry: _JsonEntry = entry, reference: Reference = reference
        ) -> tuple[str, tuple[Splice, ...]]:
            new = pinned_text(reference, target, keep_tag=keep_tag)
            splice = Splice(start=entry.value_start, end=entry.value_end, text=json.dumps(new))
            return new, (splice,)

        occurrences.append(
            Occurrence(
                line=line,
                image=entry.key,
                written=entry.value,
                digest=reference.digest,
                rewrite=rewrite,
            )
        )
    present = {e.key for e in entries}
    missing = sorted(n for n in pins.targets if n not in present)
    findings, splices, edits = [], [], []
    if missing:
        line = _line_of(text, closing)
        pairs = [f"{json.dumps(n)}: {json.dumps(pins.targets[n].pinned)}" for n in missing]
        if entries and "\n" not in text[text.index("{") : closing]:  # a one-line object
            at, added = entries[-1].value_end, "".join(f", {p}" for p in pairs)
        elif entries:  # one entry a line, indented as the last one
            last = entries[-1]
            indent = " " * (last.key_start - (text.rfind("\n", 0, last.key_start) + 1))
            at, added = last.value_end, "".join(f",\n{indent}{p}" for p in pairs)
        else:
            at, added = closing, ",".join(f"\n  {p}" for p in pairs) + "\n"
        splices.append(Splice(start=at, end=at, text=added))
        for name in missing:
            target = pins.targets[name]
            findings.append(
                Finding(
                    path=path,
                    line=line,
                    image=name,
                    problem="missing",
                    written="",
                    current=target.pinned,
                )
            )
            edits.append(Edit(path=path, line=line, image=name, old="", new=target.pinned))
    return occurrences, findings, splices, edits


# -- one file ---------------------------------------------------------------------------


def infer_kind(path: str) -> Kind | None:
    """The kind a file's name tells; None for YAML, read document by document."""
    name = PurePosixPath(path).name
    if name.endswith(".py"):
        return "airflow"
    if name == LOCK_FILE or name.endswith(".lock.json"):
        return "lockfile"
    if name in ("kustomization.yaml", "kustomization.yml", "Kustomization"):
        return "kustomize"
    if name.endswith((".yaml", ".yml")):
        return None
    raise ConfigError(
        f"cannot tell what kind of consumer {path} is",
        file="builder.yaml",
        hint="set its kind: argo, kubernetes, kustomize, helm, airflow or lockfile",
    )


def compute_file(
    path: str, text: str, spec: ConsumerSpec, pins: Pins, *, keep_tag: bool
) -> FileOutcome:
    """What pinning one consumer file changes, and what --check reports about it."""
    try:
        kind = spec.kind or infer_kind(path)
    except ConfigError as exc:
        raise ConfigError(exc.message, file="builder.yaml", line=spec.line, hint=exc.hint) from None
    findings: list[Finding] = []
    splices: list[Splice] = []
    edits: list[Edit] = []
    if kind in ("airflow",):
        occurrences = find_airflow(path, text, pins, keep_tag=keep_tag)
    elif kind == "lockfile":
        occurrences, findings, splices, edits = find_lockfile(path, text, pins, keep_tag=keep_tag)
    else:
        doc = YamlText(text, path)
        if kind == "kustomize":
            occurrences = find_kustomize(doc, pins, keep_tag=keep_tag)
        elif kind == "helm":
            occurrences = find_helm(doc, pins, spec, keep_tag=keep_tag)
        else:
            found_kind, occurrences = find_manifests(
                doc, pins, keep_tag=keep_tag, inferred=spec.kind is None
            )
            kind = spec.kind or found_kind
    for occurrence in occurrences:
        target = pins.targets.get(occurrence.image)
        current = target.pinned if target is not None else None
        problem: Problem | None = None
        if occurrence.digest is None:
            problem = "mutable"
        elif target is not None and occurrence.digest != target.digest:
            problem = "stale"
        if problem is not None:
            findings.append(
                Finding(
                    path=path,
                    line=occurrence.line,
                    image=occurrence.image,
                    problem=problem,
                    written=occurrence.written,
                    current=current,
                )
            )
        if target is None:
            continue
        new, changes = occurrence.rewrite(target)
        if new != occurrence.written:
            splices.extend(changes)
            edits.append(
                Edit(
                    path=path,
                    line=occurrence.line,
                    image=occurrence.image,
                    old=occurrence.written,
                    new=new,
                )
            )
    findings.sort(key=lambda f: (f.line, f.image))
    edits.sort(key=lambda e: (e.line, e.image))
    return FileOutcome(
        path=path,
        kind=kind,
        text=text,
        new_text=apply_splices(text, splices),
        edits=tuple(edits),
        findings=tuple(findings),
    )
