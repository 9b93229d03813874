"""The command line: output formats, exit codes and one-line errors without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from builder import __version__
from tests.conftest import commit, git, invoke

MakeRepo = Callable[..., Path]
TREE = {
    "builder.yaml": "namespace: acme\n",
    "base-images/base/Dockerfile": "FROM python:3.12-slim\nCOPY . /base\n",
    "images/api/Dockerfile": "FROM acme/base\nCOPY . /app\n",
    "images/api/app.py": "\n",
    "images/worker/Dockerfile": (
        "FROM acme/api\nCOPY --from=busybox:1.36 /bin/sh /sh\nCOPY . /worker\n"
    ),
    "images/cli/Dockerfile": "FROM alpine:3.20\n",
    "images/cli/main.sh": "\n",
}


@pytest.fixture
def repo(make_repo: MakeRepo) -> Path:
    """Last commit: api changed, cli deleted."""
    repo = make_repo(TREE)
    commit(repo, {"images/api/app.py": "x\n", "images/cli/Dockerfile": None})
    return repo


def affected(repo: Path, *args: str) -> tuple[int, str, str]:
    result = invoke("affected", "--repo", repo, "--base", "HEAD~1", "--head", "HEAD", *args)
    return result.exit_code, result.stdout, result.stderr


def test_names_are_sorted_one_a_line(repo: Path) -> None:
    assert affected(repo, "--format", "names") == (0, "api\nworker\n", "")


def test_names_print_nothing_when_nothing_is_affected(repo: Path) -> None:
    result = invoke("affected", "-C", repo, "--base", "HEAD", "--head", "HEAD", "-f", "names")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")


def test_json(repo: Path) -> None:
    code, out, err = affected(repo, "--format", "json")
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert {"base", "head", "affected", "removed"} <= set(data)
    assert data["base"] == git(repo, "rev-parse", "HEAD~1")
    assert data["head"] == git(repo, "rev-parse", "HEAD")
    assert data["removed"] == ["cli"]
    assert data["affected"] == [
        {
            "name": "api",
            "path": "images/api",
            "reasons": [
                {
                    "kind": "context",
                    "text": "context file changed: images/api/app.py",
                    "path": "images/api/app.py",
                    "source": "images/api/Dockerfile:2 COPY . /app",
                }
            ],
        },
        {
            "name": "worker",
            "path": "images/worker",
            "reasons": [{"kind": "parent", "text": "parent api is affected", "parent": "api"}],
        },
    ]


def test_json_of_the_working_tree_has_no_head(repo: Path) -> None:
    (repo / "images/worker/new.txt").write_text("x\n", encoding="utf-8")
    result = invoke("affected", "-C", repo, "--base", "HEAD", "--format", "json")
    data = json.loads(result.stdout)
    assert (data["head"], data["head_label"]) == (None, "working tree")
    assert [a["name"] for a in data["affected"]] == ["worker"]


def test_table(repo: Path) -> None:
    assert affected(repo) == (
        0,
        "2 of 3 images affected (HEAD~1 .. HEAD)\n"
        "IMAGE   PATH           WHY\n"
        "------  -------------  " + "-" * 39 + "\n"
        "api     images/api     context file changed: images/api/app.py\n"
        "worker  images/worker  parent api is affected\n"
        "cli     -              removed: will not be built\n",
        "",
    )


def test_table_when_nothing_is_affected(repo: Path) -> None:
    result = invoke("affected", "-C", repo, "--base", "HEAD", "--head", "HEAD")
    assert result.stdout == "0 of 3 images affected (HEAD .. HEAD)\n"


def test_default_range_locally_and_in_ci(repo: Path) -> None:
    (repo / "base-images/base/extra").write_text("x\n", encoding="utf-8")
    local = invoke("affected", "-C", repo, "-f", "names")
    assert local.stdout.split() == ["api", "base", "worker"]
    ci = invoke("affected", "-C", repo, "-f", "names", env={"CI": "true"})
    assert ci.stdout.split() == ["api", "worker"]


def test_runs_from_a_subdirectory(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo / "images/api")
    result = invoke("affected", "--base", "HEAD~1", "--head", "HEAD", "-f", "names")
    assert result.stdout == "api\nworker\n"


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        (
            "tree",
            "base  (from python:3.12-slim)\n└── api\n    └── worker\ncli  (from alpine:3.20)\n",
        ),
        (
            "dot",
            (
                'digraph images {\n  "base";\n  "api";\n  "cli";\n  "worker";\n'
                '  "api" -> "worker";\n  "base" -> "api";\n}\n'
            ),
        ),
        (
            "mermaid",
            (
                'graph TD\n  n0["base"]\n  n1["api"]\n  n2["cli"]\n  n3["worker"]\n'
                "  n1 --> n3\n  n0 --> n1\n"
            ),
        ),
    ],
)
def test_graph_formats(make_repo: MakeRepo, fmt: str, expected: str) -> None:
    result = invoke("graph", "-C", make_repo(TREE), "--format", fmt)
    assert (result.exit_code, result.stdout, result.stderr) == (0, expected, "")


def test_graph_json(make_repo: MakeRepo) -> None:
    result = invoke("graph", "-C", make_repo(TREE), "--format", "json")
    data = json.loads(result.stdout)
    assert set(data) == {"nodes", "edges"}
    assert [{k: n[k] for k in ("name", "path", "external_parents")} for n in data["nodes"]] == [
        {"name": "base", "path": "base-images/base", "external_parents": ["python:3.12-slim"]},
        {"name": "api", "path": "images/api", "external_parents": []},
        {"name": "cli", "path": "images/cli", "external_parents": ["alpine:3.20"]},
        {"name": "worker", "path": "images/worker", "external_parents": ["busybox:1.36"]},
    ]
    assert data["edges"] == [{"from": "api", "to": "worker"}, {"from": "base", "to": "api"}]


def test_graph_of_a_revision(repo: Path) -> None:
    now = json.loads(invoke("graph", "-C", repo, "-f", "json").stdout)
    before = json.loads(invoke("graph", "-C", repo, "-f", "json", "--rev", "HEAD~1").stdout)
    assert [n["name"] for n in now["nodes"]] == ["base", "api", "worker"]
    assert [n["name"] for n in before["nodes"]] == ["base", "api", "cli", "worker"]


@pytest.mark.parametrize(
    ("args", "env", "edges"),
    [
        ([], {}, [("api", "worker"), ("base", "api")]),
        (["--namespace", "other"], {}, [("api", "worker"), ("base", "api")]),
        ([], {"BUILDER_NAMESPACE": "other"}, [("api", "worker"), ("base", "api")]),
        (["--registry", "ghcr.io"], {}, [("api", "worker"), ("base", "api")]),
        ([], {"BUILDER_REGISTRY": "index.docker.io"}, [("api", "worker"), ("base", "api")]),
    ],
)
def test_registry_and_namespace_overrides_keep_edges(
    make_repo: MakeRepo, args: list[str], env: dict[str, str], edges: list[tuple[str, str]]
) -> None:
    result = invoke("graph", "-C", make_repo(TREE), "-f", "json", *args, env=env)
    assert [(e["from"], e["to"]) for e in json.loads(result.stdout)["edges"]] == edges


@pytest.mark.parametrize(
    ("files", "args", "stderr"),
    [
        pytest.param(
            {"builder.yaml": "namespace: acme\nregisty: ghcr.io\n"},
            [],
            "error: builder.yaml:2: unknown key 'registy' (did you mean 'registry'?)\n",
            id="config",
        ),
        pytest.param(
            {"images/api/image.yaml": "context: ../../..\n"},
            [],
            "error: images/api/image.yaml:1: 'context' '../../..' points outside the repository\n",
            id="image-yaml",
        ),
        pytest.param(
            {"images/cli/Dockerfile": "FROM alpine\nCOPY --from=Tools / /\n"},
            [],
            "error: images/cli/Dockerfile:2: invalid image reference 'Tools' "
            "(repository names must be lowercase)\n",
            id="dockerfile",
        ),
        pytest.param(
            {"images/api/Dockerfile": "FROM acme/worker\n"},
            [],
            "error: images/api/Dockerfile:1: dependency cycle: api -> worker -> api "
            "(an image cannot be built on itself, directly or through others)\n",
            id="cycle",
        ),
        pytest.param(
            {"images/cli/image.yaml": "depends_on: [nope]\n"},
            [],
            "error: images/cli/image.yaml:1: depends_on names unknown image 'nope' "
            "(known images: api, base, cli, worker)\n",
            id="depends-on",
        ),
        pytest.param(
            {},
            ["--registry", "acme"],
            "error: --registry: invalid registry 'acme' (a host name such as docker.io, "
            "ghcr.io or localhost:5000; put an organisation in 'namespace')\n",
            id="registry-flag",
        ),
        pytest.param(
            {},
            ["--namespace", "Acme"],
            "error: --namespace: invalid namespace 'Acme' "
            "(lowercase letters, digits and separators, e.g. acme)\n",
            id="namespace-flag",
        ),
    ],
)
@pytest.mark.parametrize("command", ["affected", "graph"])
def test_user_errors_exit_2_with_one_line(
    make_repo: MakeRepo, command: str, files: dict[str, str], args: list[str], stderr: str
) -> None:
    repo = make_repo({**TREE, **files})
    result = invoke(command, "-C", repo, *args)
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", stderr)


def test_errors_are_annotated_in_github_actions(make_repo: MakeRepo, tmp_path: Path) -> None:
    repo = make_repo({**TREE, "builder.yaml": "namespace: acme\nregistri: ghcr.io\n"})
    summary = tmp_path / "summary.md"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    result = invoke("graph", "-C", repo, env=env)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[1] == (
        "::error file=builder.yaml,line=2::unknown key 'registri' (did you mean 'registry'?)"
    )
    assert summary.read_text(encoding="utf-8") == (
        "## builder: error\n\n> [!CAUTION]\n> `builder.yaml:2: unknown key 'registri' "
        "(did you mean 'registry'?)`\n\n"
    )


def test_environment_override_is_validated(make_repo: MakeRepo) -> None:
    result = invoke("graph", "-C", make_repo(TREE), env={"BUILDER_REGISTRY": "acme"})
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --registry: invalid registry 'acme'")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["affected", "--format", "yaml"], "Invalid value for '--format'"),
        (["graph", "--format", "png"], "Invalid value for '--format'"),
        (["affected", "--bogus"], "No such option: --bogus"),
        (["frobnicate"], "No such command 'frobnicate'"),
    ],
)
def test_usage_errors_exit_2(args: list[str], fragment: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2
    assert fragment in result.stderr


def test_internal_errors_exit_3_and_ask_for_a_report(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("builder.commands.affected.select", broken)
    code, out, err = affected(repo)
    assert (code, out) == (3, "")
    assert err == (
        "error: internal error: RuntimeError: boom (this is a bug in builder; please report it)\n"
    )


def test_version() -> None:
    result = invoke("--version")
    assert (result.exit_code, result.stdout) == (0, f"builder {__version__}\n")


def test_help_lists_the_commands() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    assert "affected" in result.stdout
    assert "graph" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("affected", "--format", "yaml"), "error: Invalid value for '--format' / '-f'"),
        (("build", "--no-such-flag"), "error: No such option: --no-such-flag"),
        (("build", "-j", "abc"), "error: Invalid value for '--jobs' / '-j'"),
        (("frobnicate",), "error: No such command 'frobnicate'."),
    ],
)
def test_usage_errors_are_one_line_from_the_console_script(
    args: tuple[str, ...], message: str, tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "builder", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(message)
    assert lines[0].endswith("--help`)")


def test_reconcile_without_a_registry_falls_back_to_the_git_diff_loudly(
    make_repo: Callable[..., Path],
) -> None:
    repo = make_repo(
        {
            # Port 9 on loopback: nothing listens, the refusal is immediate.
            "builder.yaml": "registry: 127.0.0.1:9\nnamespace: acme\n",
            # scratch: no upstream to look up, so the first request is a key tag's.
            "images/api/Dockerfile": "FROM scratch\nCOPY app.py /\n",
            "images/api/app.py": "1\n",
            "images/cli/Dockerfile": "FROM scratch\n",
        }
    )
    commit(repo, {"images/api/app.py": "2\n"})
    done = subprocess.run(
        [sys.executable, "-m", "builder", "affected", "--reconcile", "--format", "names"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["api"]
    assert done.stderr.startswith(
        "warning: reconcile skipped, falling back to the git diff: "
        "cannot reach registry 127.0.0.1:9"
    )


def test_a_reader_that_stops_early_is_no_error(make_repo: MakeRepo) -> None:
    """`builder build --all --dry-run | head -1` must not end in a traceback or exit 3."""
    files = {"builder.yaml": "namespace: acme\n"}
    for i in range(150):  # a bake file far beyond a pipe's buffer
        files[f"images/job-{i}/Dockerfile"] = "FROM python:3.12-slim\nCOPY . /app\n"
    repo = make_repo(files)
    child = subprocess.Popen(
        [sys.executable, "-m", "builder", "build", "--all", "--dry-run", "-C", str(repo)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdout is not None
    assert child.stderr is not None
    assert child.stdout.readline().startswith(b"plan: 150 image(s)")
    child.stdout.close()  # as `head -1` does
    error = child.stderr.read().decode()
    child.stderr.close()
    assert (child.wait(timeout=60), error) == (0, "")


def test_refresh_takes_build_secrets(repo: Path) -> None:
    """The nightly rebuild runs the same RUN --mount=type=secret steps as a push."""
    result = invoke("refresh", "--dry-run", "--secret", "token", "-C", repo)
    assert (result.exit_code, result.stderr) == (
        2,
        "error: invalid --secret 'token' (use id=NAME,env=VARIABLE or id=NAME,src=PATH)\n",
    )
