"""builder pin's pure core: each consumer kind as a table of text in, text out."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import pytest
import yaml

from builder.consumers.config import parse_consumers
from builder.consumers.kinds import compute_file
from builder.consumers.model import ConsumerSpec, FileOutcome, Kind, Pins, Target
from builder.consumers.render import render_commit_message
from builder.consumers.yamltext import YamlText, apply_splices
from builder.errors import ConfigError, UserError


def digest(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


R = "registry.example/acme"  # the repo's images are pushed under here
API, WORKER, OLD = digest("api"), digest("worker"), digest("old")
PINS = Pins(
    revision="0123456789abcdef0123456789abcdef01234567",
    targets={
        "api": Target(name="api", repository=f"{R}/api", digest=API),
        "worker": Target(name="worker", repository=f"{R}/worker", digest=WORKER),
    },
    # `base` is an in-repo image this build did not push: checked, never rewritten.
    repositories={f"{R}/api": "api", f"{R}/worker": "worker", f"{R}/base": "base"},
)


def pin(
    path: str,
    text: str,
    *,
    kind: Kind | None = None,
    paths: tuple[str, ...] = (),
    keep_tag: bool = False,
) -> FileOutcome:
    spec = ConsumerSpec(glob="**", kind=kind, paths=paths, line=7)
    return compute_file(path, text, spec, PINS, keep_tag=keep_tag)


@dataclass(frozen=True)
class Case:
    path: str
    before: str
    after: str  # the whole expected text: everything else byte for byte
    kind: Kind | None = None
    paths: tuple[str, ...] = ()
    keep_tag: bool = False
    edited: tuple[str, ...] = field(default=())  # the images edited, in line order


CASES = {
    # -- Argo Workflows ------------------------------------------------------------------
    "argo-workflow-container-and-script": Case(
        "wf.yaml",
        "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nspec:\n  templates:\n"
        f"    - name: a\n      container:\n        image: {R}/api:1.0  # the job\n"
        f"    - name: b\n      script:\n        image: '{R}/worker:latest'\n"
        "        source: print(1)\n",
        "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nspec:\n  templates:\n"
        f"    - name: a\n      container:\n        image: {R}/api@{API}  # the job\n"
        f"    - name: b\n      script:\n        image: '{R}/worker@{WORKER}'\n"
        "        source: print(1)\n",
        edited=("api", "worker"),
    ),
    "argo-container-set-init-sidecar": Case(
        "wft.yaml",
        "apiVersion: argoproj.io/v1alpha1\nkind: WorkflowTemplate\nspec:\n  templates:\n"
        "    - name: a\n      containerSet:\n        containers:\n"
        f'          - {{name: x, image: "{R}/api:1"}}\n'
        f"      initContainers:\n        - image: {R}/worker:2\n"
        "      sidecars:\n        - image: redis:7\n",
        "apiVersion: argoproj.io/v1alpha1\nkind: WorkflowTemplate\nspec:\n  templates:\n"
        "    - name: a\n      containerSet:\n        containers:\n"
        f'          - {{name: x, image: "{R}/api@{API}"}}\n'
        f"      initContainers:\n        - image: {R}/worker@{WORKER}\n"
        "      sidecars:\n        - image: redis:7\n",
        edited=("api", "worker"),
    ),
    "argo-cron-workflow-spec-and-defaults": Case(
        "cron.yaml",
        "apiVersion: argoproj.io/v1alpha1\nkind: CronWorkflow\nspec:\n  schedules: ['@daily']\n"
        "  workflowSpec:\n    templateDefaults:\n"
        f"      container: {{image: {R}/worker:1}}\n"
        f"    templates:\n      - name: a\n        container:\n          image: {R}/api\n",
        "apiVersion: argoproj.io/v1alpha1\nkind: CronWorkflow\nspec:\n  schedules: ['@daily']\n"
        "  workflowSpec:\n    templateDefaults:\n"
        f"      container: {{image: {R}/worker@{WORKER}}}\n"
        f"    templates:\n      - name: a\n        container:\n          image: {R}/api@{API}\n",
        edited=("worker", "api"),
    ),
    "argo-cluster-template-inline-dag-task": Case(
        "cwt.yaml",
        "apiVersion: argoproj.io/v1alpha1\nkind: ClusterWorkflowTemplate\nspec:\n  templates:\n"
        "    - name: main\n      dag:\n        tasks:\n          - name: t\n            inline:\n"
        f"              container: {{image: {R}/api:1}}\n",
        "apiVersion: argoproj.io/v1alpha1\nkind: ClusterWorkflowTemplate\nspec:\n  templates:\n"
        "    - name: main\n      dag:\n        tasks:\n          - name: t\n            inline:\n"
        f"              container: {{image: {R}/api@{API}}}\n",
        edited=("api",),
    ),
    "argo-parameters-and-other-images-stay": Case(
        "wf.yaml",
        "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nspec:\n  templates:\n"
        "    - container: {image: '{{inputs.parameters.image}}'}\n"
        "    - container: {image: python:3.12}\n"
        "    - container: {image: other.example/acme/api:1}\n",
        "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nspec:\n  templates:\n"
        "    - container: {image: '{{inputs.parameters.image}}'}\n"
        "    - container: {image: python:3.12}\n"
        "    - container: {image: other.example/acme/api:1}\n",
    ),
    "argo-stale-digest-and-keep-tag": Case(
        "wf.yaml",
        "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nspec:\n  templates:\n"
        f"    - container: {{image: {R}/api:v1@{OLD}}}\n"
        f"    - container: {{image: {R}/worker}}\n",
        "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nspec:\n  templates:\n"
        f"    - container: {{image: {R}/api:v1@{API}}}\n"
        f"    - container: {{image: {R}/worker@{WORKER}}}\n",
        keep_tag=True,
        edited=("api", "worker"),
    ),
    "argo-already-pinned-is-untouched": Case(
        "wf.yaml",
        "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nspec:\n  templates:\n"
        f"    - container: {{image: {R}/api@{API}}}\n",
        "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nspec:\n  templates:\n"
        f"    - container: {{image: {R}/api@{API}}}\n",
    ),
    # -- Kubernetes ----------------------------------------------------------------------
    "kubernetes-deployment-and-cronjob": Case(
        "k8s.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n"
        f"      initContainers: [{{name: i, image: {R}/worker:1}}]\n"
        f"      containers:\n        - name: c\n          image: {R}/api:1\n"
        "---\napiVersion: batch/v1\nkind: CronJob\nspec:\n  jobTemplate:\n    spec:\n"
        f"      template:\n        spec:\n          containers:\n            - image: {R}/api:2\n"
        "---\napiVersion: v1\nkind: ConfigMap\ndata:\n"
        f"  image: {R}/api:1\n",
        "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n"
        f"      initContainers: [{{name: i, image: {R}/worker@{WORKER}}}]\n"
        f"      containers:\n        - name: c\n          image: {R}/api@{API}\n"
        "---\napiVersion: batch/v1\nkind: CronJob\nspec:\n  jobTemplate:\n    spec:\n"
        "      template:\n        spec:\n          containers:\n"
        f"            - image: {R}/api@{API}\n"
        "---\napiVersion: v1\nkind: ConfigMap\ndata:\n"
        f"  image: {R}/api:1\n",
        edited=("worker", "api", "api"),
    ),
    "kubernetes-pod-list-ephemeral": Case(
        "pods.yml",
        "apiVersion: v1\nkind: List\nitems:\n  - apiVersion: v1\n    kind: Pod\n    spec:\n"
        f"      ephemeralContainers:\n        - image: {R}/worker:debug\n",
        "apiVersion: v1\nkind: List\nitems:\n  - apiVersion: v1\n    kind: Pod\n    spec:\n"
        f"      ephemeralContainers:\n        - image: {R}/worker@{WORKER}\n",
        edited=("worker",),
    ),
    # -- Kustomize -----------------------------------------------------------------------
    "kustomize-tag-becomes-digest": Case(
        "overlays/prod/kustomization.yaml",
        "images:\n  - name: app\n"
        f"    newName: {R}/api\n    newTag: '1.0'  # bumped by hand\n"
        f"  - name: {R}/worker\n    newTag: latest\n    digest: {OLD}\n"
        "  - name: nginx\n    newTag: '1.27'\n",
        "images:\n  - name: app\n"
        f"    newName: {R}/api\n    digest: '{API}'  # bumped by hand\n"  # the quotes stay
        f"  - name: {R}/worker\n    digest: {WORKER}\n"
        "  - name: nginx\n    newTag: '1.27'\n",
        edited=("api", "worker"),
    ),
    "kustomize-keep-tag-adds-digest": Case(
        "kustomization.yaml",
        f"images:\n- name: {R}/api\n  newTag: v2\n- {{name: {R}/worker, newTag: v3}}\n",
        f"images:\n- name: {R}/api\n  newTag: v2\n  digest: {API}\n"
        f"- {{name: {R}/worker, newTag: v3, digest: {WORKER}}}\n",
        keep_tag=True,
        edited=("api", "worker"),
    ),
    "kustomize-tag-first-on-the-dash-line": Case(
        "kustomization.yaml",
        f"images:\n- newTag: v2\n  name: {R}/api\n  digest: ''\n",
        f"images:\n- name: {R}/api\n  digest: '{API}'\n",
        kind="kustomize",
        edited=("api",),
    ),
    # -- Helm ----------------------------------------------------------------------------
    "helm-values-blocks": Case(
        "chart/values.yaml",
        "# values for the jobs\nimage:\n"
        f"  repository: {R}/api\n  tag: 1.0\n  pullPolicy: IfNotPresent\n"
        "jobs:\n  worker:\n    image:\n      registry: registry.example\n"
        '      repository: acme/worker\n      tag: latest\n      digest: ""\n',
        "# values for the jobs\nimage:\n"
        f"  repository: {R}/api\n  digest: {API}\n  pullPolicy: IfNotPresent\n"
        "jobs:\n  worker:\n    image:\n      registry: registry.example\n"
        f'      repository: acme/worker\n      digest: "{WORKER}"\n',
        kind="helm",
        paths=("image", "jobs.*.image"),
        edited=("api", "worker"),
    ),
    "helm-keep-tag-flow-style": Case(
        "values.yaml",
        f"image: {{repository: {R}/api, tag: '1.0'}}  # pinned by CI\n",
        f"image: {{repository: {R}/api, tag: '1.0', digest: {API}}}  # pinned by CI\n",
        kind="helm",
        paths=("image",),
        keep_tag=True,
        edited=("api",),
    ),
    # -- Airflow -------------------------------------------------------------------------
    "airflow-operator-literals": Case(
        "dags/etl.py",
        "from airflow.providers.cncf.kubernetes.operators.pod import (\n"
        "    KubernetesPodOperator as Pod,\n)\n"
        f'a = Pod(task_id="a", image="{R}/api:1")  # é\n'
        f"b = KubernetesPodOperator(\n    task_id='b',\n    image=r'{R}/worker:2',\n)\n"
        f'c = DockerOperator(image="{R}/api:1")\n'
        f'd = Pod(image=IMAGE, labels={{"image": "{R}/api:1"}})\n',
        "from airflow.providers.cncf.kubernetes.operators.pod import (\n"
        "    KubernetesPodOperator as Pod,\n)\n"
        f'a = Pod(task_id="a", image="{R}/api@{API}")  # é\n'
        f"b = KubernetesPodOperator(\n    task_id='b',\n    image=r'{R}/worker@{WORKER}',\n)\n"
        f'c = DockerOperator(image="{R}/api:1")\n'
        f'd = Pod(image=IMAGE, labels={{"image": "{R}/api:1"}})\n',
        edited=("api", "worker"),
    ),
    "airflow-task-decorator-and-partial": Case(
        "dag.py",
        f'@task.kubernetes(image="""{R}/api:1""")\ndef f(): ...\n'
        f'm = KubernetesPodOperator.partial(task_id="m", image="{R}/worker").expand(x=[1])\n',
        f'@task.kubernetes(image="""{R}/api@{API}""")\ndef f(): ...\n'
        f'm = KubernetesPodOperator.partial(task_id="m", image="{R}/worker@{WORKER}")'
        ".expand(x=[1])\n",
        edited=("api", "worker"),
    ),
    # -- the lock file -------------------------------------------------------------------
    "lockfile-rewrites-and-adds": Case(
        "images.lock.json",
        '{\n    "api": "' + R + '/api:1",\n    "base": "' + R + '/base:1"\n}\n',
        f'{{\n    "api": "{R}/api@{API}",\n    "base": "{R}/base:1",\n'
        f'    "worker": "{R}/worker@{WORKER}"\n}}\n',
        edited=("api", "worker"),
    ),
    "lockfile-odd-spacing": Case(
        "images.lock.json",
        f'{{ "base" :"{R}/base:1" ,"api":\t"{R}/api:1"}}',
        f'{{ "base" :"{R}/base:1" ,"api":\t"{R}/api@{API}", "worker": "{R}/worker@{WORKER}"}}',
        edited=("api", "worker"),
    ),
    "lockfile-empty-object": Case(
        "images.lock.json",
        "{}\n",
        f'{{\n  "api": "{R}/api@{API}",\n  "worker": "{R}/worker@{WORKER}"\n}}\n',
        edited=("api", "worker"),
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_pin_rewrites_only_the_references(case: Case) -> None:
    outcome = pin(case.path, case.before, kind=case.kind, paths=case.paths, keep_tag=case.keep_tag)
    assert outcome.new_text == case.after
    assert tuple(e.image for e in outcome.edits) == case.edited
    again = pin(
        case.path, outcome.new_text, kind=case.kind, paths=case.paths, keep_tag=case.keep_tag
    )
    assert again.new_text == outcome.new_text  # a second run changes nothing
    assert not [f for f in again.findings if f.image in PINS.targets]


def test_kinds_are_inferred_from_names_and_documents() -> None:
    argo = "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nspec: {}\n"
    assert pin("x.yaml", argo).kind == "argo"
    assert pin("x.yml", "apiVersion: v1\nkind: Pod\n").kind == "kubernetes"
    assert pin("kustomization.yaml", "images: []\n").kind == "kustomize"
    assert pin("d.py", "x = 1\n").kind == "airflow"
    assert pin("images.lock.json", "{}").kind == "lockfile"


COMPLEX = f"""\
# A multi-document file: comments, anchors, merge keys, flow style, odd spacing.
%YAML 1.1
---
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata: {{name: etl, labels: {{a: "1"}}}}   # flow mapping, trailing comment
spec:
  templateDefaults: &defaults
    container:
      image: &api-image   {R}/api:latest    # anchored; used twice below
      imagePullPolicy: Always
  templates:
    -   name: one
        container:
          <<: *defaults
          image: *api-image
    - name: two   # indented differently on purpose
      container: {{ image: "{R}/worker:1", args: [ "--x" ,  "y" ] }}
    - name: three
      script:
        image: >-
          {R}/worker:1
        source: |
          print("image: {R}/api:latest")   # a string, not a reference
...
---
# second document: a Pod, CRLF-free and tab-free
apiVersion: v1
kind: Pod
spec:
  containers:
  - name: sidecar
    image: 'redis:7'     # external: left alone
  - name: main
    image: {R}/api:latest
"""


def test_round_trip_is_byte_identical_except_the_references() -> None:
    outcome = pin("complex.yaml", COMPLEX)
    expected = (
        COMPLEX.replace(f"&api-image   {R}/api:latest", f"&api-image   {R}/api@{API}")
        .replace(f'"{R}/worker:1"', f'"{R}/worker@{WORKER}"')
        .replace(f">-\n          {R}/worker:1\n", f'"{R}/worker@{WORKER}"\n')
        .replace(f"    image: {R}/api:latest\n", f"    image: {R}/api@{API}\n")
    )
    assert outcome.new_text == expected
    # The anchor is edited once and every alias follows it.
    assert [e.line for e in outcome.edits if e.image == "api"] == [10, 35]
    before = list(yaml.safe_load_all(COMPLEX))
    after = list(yaml.safe_load_all(outcome.new_text))
    assert after[0]["spec"]["templates"][0]["container"]["image"] == f"{R}/api@{API}"
    assert after[0]["spec"]["templates"][2]["script"]["image"] == f"{R}/worker@{WORKER}"
    assert (
        after[0]["spec"]["templates"][2]["script"]["source"]
        == (before[0]["spec"]["templates"][2]["script"]["source"])
    )


def test_crlf_files_keep_their_line_ends() -> None:
    text = f"images:\r\n  - name: {R}/api\r\n    newTag: v1\r\n"
    assert pin("kustomization.yaml", text).new_text == (
        f"images:\r\n  - name: {R}/api\r\n    digest: {API}\r\n"
    )
    kept = pin("kustomization.yaml", text, keep_tag=True).new_text
    assert kept == f"images:\r\n  - name: {R}/api\r\n    newTag: v1\r\n    digest: {API}\r\n"


def test_check_findings_say_mutable_stale_and_unknown_current() -> None:
    text = (
        "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n"
        f"    - image: {R}/api:1\n"  # mutable
        f"    - image: {R}/worker@{OLD}\n"  # stale
        f"    - image: {R}/base:1\n"  # mutable; this run has no digest for it
        f"    - image: {R}/base@{OLD}\n"  # pinned; nothing says it is stale
    )
    findings = pin("pod.yaml", text).findings
    assert [(f.line, f.image, f.problem, f.current) for f in findings] == [
        (5, "api", "mutable", f"{R}/api@{API}"),
        (6, "worker", "stale", f"{R}/worker@{WORKER}"),
        (7, "base", "mutable", None),
    ]


@pytest.mark.parametrize(
    ("path", "text", "kind", "error"),
    [
        ("a.yaml", "a: [1,\n", None, "a.yaml:2: cannot parse YAML:"),
        (
            "values.yaml",
            "image: {repository: x}\n",
            None,
            "values.yaml:1: cannot tell what reads this file: a document without apiVersion",
        ),
        (
            "pod.yaml",
            "apiVersion: v1\nkind: Pod\nspec:\n  containers: [{image: Acme/API}]\n",
            None,
            "pod.yaml:4: invalid image reference 'Acme/API' (repository names must be lowercase)",
        ),
        ("d.py", "def (:\n", None, "d.py:1: cannot parse Python: invalid syntax"),
        (
            "d.py",
            f'KubernetesPodOperator(image="{R}/" "api")\n',
            None,
            "d.py:1: the image is split over several string literals",
        ),
        ("images.lock.json", '{"nope": "x"}', None, "images.lock.json:1: 'nope' is not an image"),
        ("images.lock.json", "[1]", None, "images.lock.json: must be a JSON object"),
        ("images.lock.json", '{"api": 1}', None, "images.lock.json:1: 'api' must map to an"),
        ("notes.txt", "", None, "builder.yaml:7: cannot tell what kind of consumer notes.txt"),
        ("values.yaml", "x: 1\n", "helm", "values.yaml: key path 'image' (builder.yaml:7)"),
        ("values.yaml", "image: 1\n", "helm", "values.yaml:1: key path 'image' names no image"),
    ],
)
def test_bad_consumer_files_are_one_line_errors(
    path: str, text: str, kind: Kind | None, error: str
) -> None:
    with pytest.raises(UserError) as caught:
        pin(path, text, kind=kind, paths=("image",) if kind == "helm" else ())
    assert caught.value.render().startswith(error), caught.value.render()


# -- splices --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "after"),
    [
        ("m:\n  a: 1\n  b: 2  # c\n  c: 3\n", "b", "m:\n  a: 1\n  c: 3\n"),
        ("m:\n  a: 1\n  b: 2\n", "b", "m:\n  a: 1\n"),
        ("m:\n  a: 1\n  b: 2", "b", "m:\n  a: 1\n"),
        ("- b: 2\n  a: 1\n", "b", "- a: 1\n"),
        ("m: {a: 1, b: 2, c: 3}\n", "b", "m: {a: 1, c: 3}\n"),
        ("m: {a: 1, b: 2}\n", "b", "m: {a: 1}\n"),
        ("m: {b: 2}\n", "b", 'm: {b: ""}\n'),
        ("m:\n  a: 1\n  b: |\n    x\n    y\n  c: 3\n", "b", "m:\n  a: 1\n  c: 3\n"),
    ],
)
def test_remove_entry(text: str, key: str, after: str) -> None:
    doc = YamlText(text, "t.yaml")
    root = doc.documents[0]
    mapping = doc.get(root, "m") if isinstance(root, yaml.MappingNode) else doc.items(root)[0]
    assert isinstance(mapping, yaml.MappingNode)
    splice = doc.remove_entry(mapping, key)
    assert splice is not None
    assert apply_splices(text, [splice]) == after


@pytest.mark.parametrize(
    ("text", "after"),
    [
        ("m:\n  a: 1  # c\nn: 2\n", "m:\n  a: 1  # c\n  d: x\nn: 2\n"),
        ("m:\n  a:\n    deep: 1\n", "m:\n  a:\n    deep: 1\n  d: x\n"),
        ("m: {a: 1}\n", "m: {a: 1, d: x}\n"),
        ("m:\n  a: |\n    text\nn: 2\n", "m:\n  a: |\n    text\n  d: x\nn: 2\n"),
    ],
)
def test_insert_entry(text: str, after: str) -> None:
    doc = YamlText(text, "t.yaml")
    mapping = doc.get(doc.documents[0], "m")
    assert isinstance(mapping, yaml.MappingNode)
    assert apply_splices(text, [doc.insert_entry(mapping, "d", "x")]) == after


@pytest.mark.parametrize(
    ("text", "value", "after"),
    [
        ("k: old\n", "a:b@sha256:1", "k: a:b@sha256:1\n"),
        ("k: 'old'\n", "it's", "k: 'it''s'\n"),
        ('k: "old"\n', "x", 'k: "x"\n'),
        ("k: old\n", "1.0", 'k: "1.0"\n'),  # would read back as a number
        ("k: old\n", "a: b", 'k: "a: b"\n'),
        ("k:\n", "x", "k: x\n"),
        ("k: &a !!str old # c\n", "x", "k: &a !!str x # c\n"),
        ("k: >-\n  old\nn: 1\n", "x", 'k: "x"\nn: 1\n'),
    ],
)
def test_replace_scalar_keeps_quoting_where_it_can(text: str, value: str, after: str) -> None:
    doc = YamlText(text, "t.yaml")
    node = doc.get(doc.documents[0], "k")
    assert isinstance(node, yaml.ScalarNode)
    new = apply_splices(text, [doc.replace_scalar(node, value)])
    assert new == after
    assert yaml.safe_load(new)["k"] == value


# -- configuration --------------------------------------------------------------------


def test_consumers_block_parses() -> None:
    raw = [
        "deploy/argo/*.yaml",
        {"glob": "chart/values.yaml", "kind": "helm", "paths": ["image", "jobs.*.image"]},
        {"glob": "dags/images.lock.json", "kind": "lockfile"},
    ]
    assert parse_consumers(raw, (10, 11, 12, 15)) == (
        ConsumerSpec(glob="deploy/argo/*.yaml", line=11),
        ConsumerSpec(
            glob="chart/values.yaml", kind="helm", paths=("image", "jobs.*.image"), line=12
        ),
        ConsumerSpec(glob="dags/images.lock.json", kind="lockfile", line=15),
    )


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (None, "builder.yaml: no 'consumers' to pin"),
        ("x", "builder.yaml:3: 'consumers' must be a list of globs or mappings, got a string"),
        ([], "builder.yaml:3: 'consumers' must be a list"),
        ([3], "builder.yaml:4: a consumer must be a glob or a mapping with 'glob', got int 3"),
        ([""], "builder.yaml:4: a consumer glob must be a non-empty string, got an empty string"),
        (["../x/*.yaml"], "builder.yaml:4: consumer glob '../x/*.yaml' must stay inside"),
        (["/etc/*.yaml"], "builder.yaml:4: consumer glob '/etc/*.yaml' must stay inside"),
        ([{"kind": "argo"}], "builder.yaml:4: a consumer mapping needs a 'glob'"),
        (
            [{"glob": "x", "knd": "argo"}],
            "builder.yaml:4: unknown consumer key 'knd' (did you mean 'kind'?)",
        ),
        (
            [{"glob": "x", "kind": "argoo"}],
            "builder.yaml:4: unknown consumer kind 'argoo' (did you mean 'argo'?)",
        ),
        (
            [{"glob": "x", "kind": "terraform"}],
            "builder.yaml:4: unknown consumer kind 'terraform' (known kinds: argo, kubernetes,",
        ),
        ([{"glob": "x", "kind": "helm"}], "builder.yaml:4: helm consumer 'x' needs 'paths'"),
        (
            [{"glob": "x", "paths": ["image"]}],
            "builder.yaml:4: 'paths' is for helm consumers only (add kind: helm)",
        ),
        (
            [{"glob": "x", "kind": "helm", "paths": ["a..b"]}],
            "builder.yaml:4: invalid key path 'a..b'",
        ),
        (
            [{"glob": "x", "kind": "helm", "paths": "image"}],
            "builder.yaml:4: 'paths' must be a list of dotted keys, got a string",
        ),
    ],
)
def test_consumers_block_errors_point_at_the_line(raw: object, error: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_consumers(raw, (3, 4) if raw is not None else ())
    assert caught.value.render().startswith(error), caught.value.render()


def test_commit_message_lists_image_old_and_new() -> None:
    outcome = pin(
        "images.lock.json", json.dumps({"api": f"{R}/api:v1", "worker": f"{R}/worker@{OLD}"})
    )
    message = render_commit_message(PINS.revision, outcome.edits)
    assert message.splitlines() == [
        "Pin 2 image(s) to the digests built from 0123456789ab",
        "",
        f"api: tag v1 -> {API}",
        f"worker: {OLD} -> {WORKER}",
        "",
        f"Built from {PINS.revision} (builder pin).",
    ]


def test_builder_yaml_keeps_the_block_and_its_lines_for_pin() -> None:
    from builder.config import parse_settings

    settings = parse_settings(
        "registry: ghcr.io\nconsumers:\n  - deploy/*.yaml\n\n  - glob: values.yaml\n"
        "    kind: helm\n    paths: [image]\n"
    )
    assert parse_consumers(settings.consumers, settings.consumers_lines) == (
        ConsumerSpec(glob="deploy/*.yaml", line=3),
        ConsumerSpec(glob="values.yaml", kind="helm", paths=("image",), line=5),
    )


# -- variants: images sharing one repository, told apart by tag ------------------------------


def spark_pins(build: int) -> Pins:
    return Pins(
        revision="0123456789abcdef0123456789abcdef01234567",
        targets={
            name: Target(name=name, repository=f"{R}/spark", digest=digest(f"{name}-{build}"))
            for name in ("spark-35", "spark-34")
        },
        variants={f"{R}/spark": (("spark-35", "latest", "", ""), ("spark-34", "3.4", "", ""))},
    )


VARIANT_FILES = {
    "argo/spark.yaml": (
        "apiVersion: argoproj.io/v1alpha1\nkind: WorkflowTemplate\nspec:\n  templates:\n"
        f"    - name: a\n      container:\n        image: {R}/spark:3.4\n"
        f"    - name: b\n      container:\n        image: {R}/spark\n"
    ),
    "dags/spark.py": (
        "from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator\n"
        f'old = KubernetesPodOperator(task_id="old", image="{R}/spark:3.4")\n'
        f'new = KubernetesPodOperator(task_id="new", image="{R}/spark:latest")\n'
    ),
    "charts/spark/values.yaml": (
        f"old:\n  image:\n    repository: {R}/spark\n    tag: '3.4'\n"
        f"new:\n  image:\n    repository: {R}/spark\n    tag: latest\n"
    ),
}


@pytest.mark.parametrize("path", sorted(VARIANT_FILES))
def test_a_variant_keeps_its_tag_so_the_next_pin_finds_the_same_image(path: str) -> None:
    """Pinned without its tag, `spark@<3.4's digest>` read as `latest` on the next pin and
    was repointed at the 3.5 image (found trying builder as a new user)."""
    helm = path.endswith("values.yaml")
    spec = ConsumerSpec(
        glob="**",
        kind="helm" if helm else None,
        paths=("old.image", "new.image") if helm else (),
        line=7,
    )
    text = VARIANT_FILES[path]
    for build in (1, 2, 3):
        text = compute_file(path, text, spec, spark_pins(build), keep_tag=False).new_text
        # The 3.4 image's place (first in each file) holds 3.4's digest, the other 3.5's.
        older, newer = (
            text.index(digest(f"spark-34-{build}")),
            text.index(digest(f"spark-35-{build}")),
        )
        assert older < newer
        assert digest(f"spark-34-{build - 1}") not in text
    assert text.count("3.4") == 1
    assert text.count(":latest@" if not helm else "tag: latest") == 1


def test_a_bare_digest_in_a_shared_repository_is_left_alone() -> None:
    text = (
        "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n"
        f"    - name: a\n      image: {R}/spark@{OLD}\n"
    )
    spec = ConsumerSpec(glob="**", kind=None, paths=(), line=7)
    assert compute_file("k8s/pod.yaml", text, spec, spark_pins(1), keep_tag=False).new_text == text


@pytest.mark.parametrize(
    ("path", "text", "kind", "paths"),
    [
        (
            "charts/api/values.yaml",
            f"image:\n  repository: {R}/api\n  tag: v1\n",
            "helm",
            ("image",),
        ),
        (
            "overlays/kustomization.yaml",
            f"images:\n  - name: {R}/api\n    newTag: v1\n",
            None,
            (),
        ),
    ],
)
def test_a_block_is_never_given_a_digest_its_repository_lacks(
    path: str, text: str, kind: Kind | None, paths: tuple[str, ...]
) -> None:
    """The build pushed api elsewhere (a mirror): Argo's and Airflow's references move to
    it with the digest, but a block's repository field stays, so its digest would be
    looked for where nothing pushed it."""
    pins = Pins(
        revision=PINS.revision,
        targets={"api": Target(name="api", repository="mirror.example/acme/api", digest=API)},
        repositories={f"{R}/api": "api", "mirror.example/acme/api": "api"},
    )
    spec = ConsumerSpec(glob="**", kind=kind, paths=paths, line=7)
    with pytest.raises(UserError) as caught:
        compute_file(path, text, spec, pins, keep_tag=False)
    assert str(caught.value) == (
        f"{path}:2: {R}/api was pushed as mirror.example/acme/api; builder pin sets a "
        "block's digest, not its repository (point the block at mirror.example/acme/api, or "
        f"pin from a build that pushed to {R}/api)"
    )


def test_airflow_constants_other_pod_operators_and_a_byte_order_mark() -> None:
    """A DAG that names its image once, as a module constant, or runs it through an
    operator built on KubernetesPodOperator (found by a new user's trial: all were skipped
    without a word). A constant assigned twice is no single literal and is left alone."""
    before = (
        "\ufefffrom airflow.providers.google.cloud.operators.kubernetes_engine import "
        "GKEStartPodOperator\n"
        f'IMAGE = "{R}/api:1"\n'
        f'OTHER = "{R}/worker:1"\n'
        f'OTHER = "{R}/worker:2"\n'
        "a = KubernetesPodOperator(task_id='a', image=IMAGE)\n"
        f"g = GKEStartPodOperator(task_id='g', image='{R}/worker:1')\n"
        "o = KubernetesPodOperator(task_id='o', image=OTHER)\n"
    )
    outcome = pin("dags/etl.py", before)
    assert outcome.new_text == (
        before.replace(f'"{R}/api:1"', f'"{R}/api@{API}"').replace(
            f"'{R}/worker:1'", f"'{R}/worker@{WORKER}'"
        )
    )
    assert outcome.new_text.startswith("\ufeff")


def test_helm_global_image_registry_names_the_registry_bitnami_charts_run_from() -> None:
    before = (
        "global:\n  imageRegistry: registry.example\n"
        "api:\n  image:\n    registry: docker.io\n    repository: acme/api\n    tag: '1'\n"
        "other:\n  image:\n    repository: acme/api\n    tag: '1'\n"
    )
    outcome = pin("values.yaml", before, kind="helm", paths=("api.image", "other.image"))
    assert outcome.new_text == (
        "global:\n  imageRegistry: registry.example\n"
        f"api:\n  image:\n    registry: docker.io\n    repository: acme/api\n    digest: '{API}'\n"
        f"other:\n  image:\n    repository: acme/api\n    digest: '{API}'\n"
    )
    # Without it, the block's own registry decides: docker.io/acme/api is no image here.
    unset = before.replace("registry.example\n", "''\n", 1)
    assert pin("values.yaml", unset, kind="helm", paths=("api.image", "other.image")).edits == ()


@pytest.mark.parametrize(
    "block",
    [
        # A digest and no tag: an older pin's, of either image.
        "image:\n  repository: {R}/spark\n  digest: {OLD}\n",
        # A tag the chart fills in: which image it runs is not in this file.
        "image:\n  repository: {R}/spark\n  tag: '{{{{ .Values.sparkVersion }}}}'\n",
    ],
    ids=["digest-only", "templated-tag"],
)
def test_a_shared_repository_block_without_a_literal_tag_is_left_alone(block: str) -> None:
    text = block.format(R=R, OLD=OLD)
    spec = ConsumerSpec(glob="**", kind="helm", paths=("image",), line=7)
    assert compute_file("values.yaml", text, spec, spark_pins(2), keep_tag=False).new_text == text


def test_a_block_of_a_repository_one_image_has_needs_no_valid_tag() -> None:
    """Charts that render repo@digest ignore the tag: `1.0+build` stays pinnable."""
    before = f"image:\n  repository: {R}/api\n  tag: 1.0+build\n"
    outcome = pin("values.yaml", before, kind="helm", paths=("image",))
    assert outcome.new_text == f"image:\n  repository: {R}/api\n  digest: {API}\n"


def test_global_image_registry_never_unpins_a_block_its_own_registry_names() -> None:
    before = (
        "global:\n  imageRegistry: docker.io\n"
        "api:\n  repository: acme/api\n  registry: registry.example\n  tag: '1'\n"
    )
    outcome = pin("values.yaml", before, kind="helm", paths=("api",))
    assert [e.image for e in outcome.edits] == ["api"]


def test_a_lone_carriage_return_in_a_dag_is_refused() -> None:
    """Python ends a line at it, tokenize does not: the edit would land on another literal."""
    before = (
        "x = 1  # note\rY = 2\n"
        f'a = KubernetesPodOperator(image="{R}/api:1")\n'
        'b = KubernetesPodOperator(image="docker.io/other/zzz:1")\n'
    )
    with pytest.raises(UserError) as caught:
        pin("dags/etl.py", before)
    assert str(caught.value).startswith("dags/etl.py:1: ends a line with a lone carriage return")


@pytest.mark.parametrize(
    "also",
    [
        "from cfg import IMAGE\n",
        "from cfg import *\n",
        "for IMAGE in ['x']:\n    pass\n",
        "with open('f') as IMAGE:\n    pass\n",
        "def f(IMAGE='x'):\n    pass\n",
        "names = [IMAGE for IMAGE in ['x']]\n",
        "def g():\n    global IMAGE\n    IMAGE = 'x'\n",
        "try:\n    pass\nexcept Exception as IMAGE:\n    pass\n",
    ],
)
def test_a_constant_bound_elsewhere_is_no_single_literal(also: str) -> None:
    before = (
        f'IMAGE = "{R}/api:1"\n' + also + "a = KubernetesPodOperator(task_id='a', image=IMAGE)\n"
    )
    assert pin("dags/etl.py", before).new_text == before
