"""The GitHub Actions workflows: the baked project's and the template's own.

They parse, actionlint (with shellcheck on every `run:` script) and zizmor report nothing, every
action is pinned to the commit of its release, the Neon actions get only inputs they have and
give only outputs they have, and the `run:` steps of the baked project's jobs pass here, in order,
with the environment the workflow gives them: against scripts/ci-database for the job without
Neon, against the Neon stand-in for the job on a Neon branch.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest
import yaml

import build
from samples import CI_BAKE, QUICK

TEMPLATE_DIR = Path(__file__).resolve().parent.parent
TOOLS = Path(sys.executable).parent  # actionlint, shellcheck, zizmor: the template's dev group
# A project installed with uv and committed, as a user pushes it.

# Each action's release and its commit, read from the action's repository (`git rev-parse
# TAG^{commit}` in github.com/OWNER/NAME); the workflows pin these commits.
PINNED = {
    "actions/checkout": ("v6.0.3", "df4cb1c069e1874edd31b4311f1884172cec0e10"),
    "actions/setup-python": ("v7.0.0", "5fda3b95a4ea91299a34e894583c3862153e4b97"),
    "astral-sh/setup-uv": ("v10.0.1", "20cfd1bf945f4377ade1205e4dbc17946fc9a30d"),
    "neondatabase/create-branch-action": ("v6.4.0", "72ed4f69a12b6be9c16aebfad893f6a21e9aba8b"),
    "neondatabase/schema-diff-action": ("v1.0.1", "80cfa8521628e890015b60f5291a7738926617dc"),
    "neondatabase/delete-branch-action": ("v3.2.1", "4468d825d5a88ef4012f1705a82f02ec3072f776"),
}

# Inputs (required ones marked) and outputs of Neon's actions, copied from action.yml (action.yaml
# for delete-branch) at the pinned commits above.
NEON_ACTIONS = {
    "neondatabase/create-branch-action": {
        "required": {"api_key", "project_id"},
        "inputs": {
            "api_key", "api_host", "branch_name", "project_id", "parent_branch", "prisma",
            "database", "role", "branch_type", "ssl", "suspend_timeout", "expires_at",
            "masking_rules", "get_auth_url", "get_data_api_url",
        },
        "outputs": {
            "db_url", "db_url_pooled", "db_host", "db_host_pooled", "password", "branch_id",
            "created", "auth_url", "data_api_url",
        },
    },
    "neondatabase/schema-diff-action": {
        "required": {"project_id", "compare_branch", "api_key"},
        "inputs": {
            "github-token", "project_id", "compare_branch", "api_key", "base_branch", "api_host",
            "database", "timestamp", "lsn",
        },
        "outputs": {"diff", "comment_url"},
    },
    "neondatabase/delete-branch-action": {
        "required": {"project_id", "api_key"},
        "inputs": {"project_id", "branch_id", "api_key", "api_host", "branch"},
        "outputs": set(),
    },
}  # fmt: skip

EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
PINNED_USES = re.compile(r"\s*(?:- )?uses: ([\w.-]+/[\w.-]+)@([0-9a-f]{40}) # (v[\d.]+)")
STEP_OUTPUT = re.compile(r"steps\.([\w-]+)\.outputs\.([\w-]+)")


def workflow_files(project):
    return sorted((project / ".github" / "workflows").glob("*.yml"))


def load(path):
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def triggers(workflow):
    return workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true


def uses_steps(workflow):
    for job in workflow["jobs"].values():
        for step in job.get("steps", []):
            if "uses" in step:
                yield job, step


@pytest.fixture(scope="module")
def baked(bake):
    baked = bake(**QUICK)
    assert baked.exit_code == 0, baked.output
    return baked


@pytest.fixture(scope="module")
def all_workflows(baked):
    return [*workflow_files(baked.project), *workflow_files(TEMPLATE_DIR)]


def test_the_workflows_are_baked_as_written(baked):
    names = [path.name for path in workflow_files(baked.project)]
    assert names == ["ci.yml", "neon-branch-cleanup.yml"]
    for path in workflow_files(baked.project):
        template = TEMPLATE_DIR / "{{cookiecutter.project_slug}}" / path.relative_to(baked.project)
        assert path.read_text() == template.read_text()  # ${{ }} survived cookiecutter
        assert "${{" in path.read_text()


def test_the_workflows_parse(all_workflows):
    assert len(all_workflows) == 3
    for path in all_workflows:
        workflow = load(path)
        assert workflow["name"] and triggers(workflow) and workflow["jobs"], path


def test_actionlint_with_shellcheck_reports_nothing(baked):
    result = actionlint(*workflow_files(baked.project), *workflow_files(TEMPLATE_DIR))
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_runs_shellcheck_on_run_scripts(tmp_path):
    # Proof that the clean result above includes shellcheck: an unquoted variable is caught.
    (tmp_path / "bad.yml").write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: ls $HOME/*.txt\n"
    )
    result = actionlint(tmp_path / "bad.yml")
    assert result.returncode == 1 and "SC2086" in result.stdout, result.stdout + result.stderr


def actionlint(*files):
    return subprocess.run(
        [TOOLS / "actionlint", "-shellcheck", TOOLS / "shellcheck", "-no-color", *files],
        capture_output=True,
        text=True,
    )


def test_zizmor_offline_reports_nothing(baked):
    result = zizmor(*workflow_files(baked.project), *workflow_files(TEMPLATE_DIR))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings" in result.stdout


def test_zizmor_catches_an_unpinned_action(tmp_path):
    (tmp_path / "bad.yml").write_text(
        "on: push\npermissions: {}\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - uses: neondatabase/create-branch-action@v6\n"
    )
    result = zizmor(tmp_path / "bad.yml")
    assert result.returncode != 0 and "unpinned-uses" in result.stdout, result.stdout


def zizmor(*files):
    return subprocess.run(
        [TOOLS / "zizmor", "--offline", "--no-progress", "--color=never", *files],
        capture_output=True,
        text=True,
    )


def test_every_action_is_pinned_to_its_release_commit(all_workflows):
    for path in all_workflows:
        for line in path.read_text().splitlines():
            if "uses:" not in line:
                continue
            found = re.fullmatch(
                r"\s*(?:- )?uses: ([\w.-]+/[\w.-]+)@([0-9a-f]{40}) # (v[\d.]+)", line
            )
            assert found, f"{path.name}: {line.strip()}"
            action, commit, tag = found.groups()
            assert PINNED[action] == (tag, commit), f"{path.name}: {line.strip()}"


def test_neon_actions_get_only_inputs_they_have(baked):
    used = set()
    for path in workflow_files(baked.project):
        for _, step in uses_steps(load(path)):
            action = step["uses"].split("@")[0]
            if action in NEON_ACTIONS:
                used.add(action)
                given = set(step.get("with", {}))
                assert given <= NEON_ACTIONS[action]["inputs"], (action, given)
                assert NEON_ACTIONS[action]["required"] <= given, (action, given)
    assert used == set(NEON_ACTIONS)


def test_neon_step_outputs_used_are_ones_the_action_gives(baked):
    workflow = load(baked.project / ".github" / "workflows" / "ci.yml")
    text = (baked.project / ".github" / "workflows" / "ci.yml").read_text()
    actions = {step.get("id"): step["uses"].split("@")[0] for _, step in uses_steps(workflow)}
    referenced = STEP_OUTPUT.findall(text)
    assert ("branch", "db_url") in referenced and ("branch", "db_url_pooled") in referenced
    for step_id, output in referenced:
        if step_id in actions:
            assert output in NEON_ACTIONS[actions[step_id]]["outputs"], (step_id, output)


def test_one_branch_name_from_creation_to_deletion(baked):
    ci = load(baked.project / ".github" / "workflows" / "ci.yml")
    cleanup = load(baked.project / ".github" / "workflows" / "neon-branch-cleanup.yml")
    names = {
        step["with"].get("branch_name") or step["with"].get("compare_branch")
        or step["with"].get("branch")
        for _, step in [*uses_steps(ci), *uses_steps(cleanup)]
        if step["uses"].startswith("neondatabase/")
    }  # fmt: skip
    assert names == {"preview/pr-${{ github.event.number }}"}
    assert triggers(cleanup) == {"pull_request": {"types": ["closed"]}}


def test_exactly_one_test_job_runs_and_permissions_are_least(baked):
    ci = load(baked.project / ".github" / "workflows" / "ci.yml")
    cleanup = load(baked.project / ".github" / "workflows" / "neon-branch-cleanup.yml")
    neon_if = " ".join(ci["jobs"]["tests-on-neon"]["if"].split())
    assert " ".join(ci["jobs"]["tests"]["if"].split()) == f"!({neon_if})"
    # Forks get no secrets: the Neon job runs only for the repository's own branches.
    assert "head.repo.full_name == github.repository" in neon_if
    assert ci["permissions"] == {"contents": "read"}
    assert cleanup["permissions"] == {}
    granted = {name: job.get("permissions") for name, job in ci["jobs"].items()}
    assert granted == {
        "checks": None,
        "tests-on-neon": {"contents": "read", "pull-requests": "write"},
        "tests": None,
    }
    assert ci["concurrency"]["cancel-in-progress"] is True
    # A pull request's number, not its branch name: two forks' "main" must not cancel each other.
    assert "github.event.pull_request.number" in ci["concurrency"]["group"]
    for job in ci["jobs"].values():
        checkout = job["steps"][0]
        assert checkout["with"] == {"persist-credentials": False}


def test_no_expression_is_expanded_inside_a_script(all_workflows):
    # Expressions in run: are pasted into the shell script before it runs (script injection);
    # values reach scripts through env: only.
    for path in all_workflows:
        for job in load(path)["jobs"].values():
            for step in job.get("steps", []):
                assert "${{" not in step.get("run", ""), (path.name, step)


def test_the_ci_database_script_passes_shellcheck(baked):
    script = baked.project / "scripts" / "ci-database"
    assert os.access(script, os.X_OK)
    result = subprocess.run([TOOLS / "shellcheck", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


# --- The jobs' own commands, run here ---------------------------------------------------------


class JobRun:
    """Runs a job's steps as a GitHub runner would: `run:` steps in bash -e, in order, with the
    workflow's, the job's and the step's env; GITHUB_ENV, GITHUB_OUTPUT and GITHUB_PATH honoured.
    `actions` says what each `uses:` step provides here (its outputs), by action name."""

    def __init__(self, checkout, workflow, job_id, actions, runner_temp, base_env):
        self.checkout, self.workflow, self.actions = checkout, workflow, actions
        self.job = workflow["jobs"][job_id]
        self.runner_temp = runner_temp
        self.env = {
            **base_env,
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_WORKSPACE": str(checkout),
            "RUNNER_TEMP": str(runner_temp),
            **workflow.get("env", {}),
            **self.job.get("env", {}),
        }
        self.outputs = {}
        self.ran = []  # (step name, stdout + stderr)

    def evaluate(self, value):
        def replace(match):
            found = STEP_OUTPUT.fullmatch(match[1])
            assert found, f"no value here for the expression {match[0]}"
            return self.outputs[found[1]][found[2]]

        return EXPRESSION.sub(replace, str(value))

    def run_all(self):
        for step in self.job["steps"]:
            if "uses" in step:
                self.outputs[step.get("id")] = self.actions[step["uses"].split("@")[0]]
            else:
                self.run_step(step)

    def run_step(self, step):
        files = {
            name: self.runner_temp / f"{name.lower()}-{len(self.ran)}"
            for name in ("GITHUB_ENV", "GITHUB_OUTPUT", "GITHUB_PATH")
        }
        for path in files.values():
            path.write_text("")
        script = self.runner_temp / f"step-{len(self.ran)}.sh"
        script.write_text(step["run"])
        step_env = {name: self.evaluate(value) for name, value in step.get("env", {}).items()}
        env = {**self.env, **step_env, **{name: str(path) for name, path in files.items()}}
        result = subprocess.run(
            ["bash", "-e", script],  # GitHub's default shell on Linux
            cwd=self.checkout,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        name = step.get("name", step["run"])
        self.ran.append((name, result.stdout + result.stderr))
        assert result.returncode == 0, f"step {name!r} failed:\n{result.stdout}\n{result.stderr}"
        self.env.update(parse_env_file(files["GITHUB_ENV"].read_text()))
        if "id" in step:
            self.outputs[step["id"]] = parse_env_file(files["GITHUB_OUTPUT"].read_text())
        for folder in files["GITHUB_PATH"].read_text().splitlines():
            self.env["PATH"] = f"{folder}{os.pathsep}{self.env['PATH']}"


def parse_env_file(text):
    """NAME=value lines and NAME<<DELIMITER blocks, as the runner reads GITHUB_ENV."""
    values, lines = {}, iter(text.splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            block = []
            for inner in lines:
                if inner == delimiter:
                    break
                block.append(inner)
            values[name] = "\n".join(block)
        elif "=" in line:
            name, value = line.split("=", 1)
            values[name] = value
    return values


@pytest.fixture(scope="module")
def checkout(bake, tmp_path_factory):
    """A fresh clone of a committed uv bake, as actions/checkout leaves it: no .env, no .venv."""
    baked = bake(**CI_BAKE)
    assert baked.exit_code == 0, baked.output
    clone = tmp_path_factory.mktemp("checkout") / baked.project.name
    baked.run("git", "clone", "--quiet", baked.project, clone)
    assert not (clone / ".env").exists() and (clone / "uv.lock").exists()
    return clone


@pytest.fixture
def runner_temp():
    # Outside pytest's private tmp dirs: as root, scripts/ci-database runs the servers as the
    # postgres user, which must reach it.
    folder = Path(tempfile.mkdtemp(prefix="runner-temp-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def runner_env(runner_temp):
    """A runner's environment: the machine's, less the project variables; setup-uv's uv on PATH."""
    tools = runner_temp / "setup-uv"
    tools.mkdir()
    (tools / "uv").symlink_to(build.find_uv())
    env = build.clean_env()
    env["PATH"] = f"{tools}{os.pathsep}{env['PATH']}"
    return env


SETUP_ONLY = {"actions/checkout": {}, "astral-sh/setup-uv": {}}


@pytest.mark.slow
def test_the_checks_job_passes_here(checkout, runner_temp):
    workflow = load(checkout / ".github" / "workflows" / "ci.yml")
    job = JobRun(checkout, workflow, "checks", SETUP_ONLY, runner_temp, runner_env(runner_temp))
    job.run_all()
    assert [name for name, _ in job.ran][-1].startswith("Deployment checks")
    assert "no issues" in job.ran[-1][1]


@pytest.mark.slow
def test_the_job_without_neon_passes_on_its_own_database(checkout, runner_temp):
    workflow = load(checkout / ".github" / "workflows" / "ci.yml")
    job = JobRun(checkout, workflow, "tests", SETUP_ONLY, runner_temp, runner_env(runner_temp))
    try:
        job.run_all()
    finally:
        if "CI_DATABASE_DIR" in job.env:
            subprocess.run([checkout / "scripts" / "ci-database", "stop"], env=job.env, check=True)
    urls = job.env["DATABASE_URL"], job.env["DATABASE_URL_UNPOOLED"]
    password = re.search(r"://neondb_owner:([^@]+)@", urls[0])[1]
    # The password reaches the log only inside the mask command that hides it there.
    for name, output in job.ran:
        for line in output.splitlines():
            assert password not in line or line == f"::add-mask::{password}", name
    assert " passed" in job.ran[-1][1] and " failed" not in job.ran[-1][1]
    assert "sslmode=require" in urls[0] and "channel_binding=require" in urls[1]


@pytest.mark.slow
def test_the_neon_job_passes_on_a_neon_branch(checkout, runner_temp, neon):
    workflow = load(checkout / ".github" / "workflows" / "ci.yml")
    # A new Neon branch is a fresh copy of its parent: here, a database of its own.
    with psycopg.connect(neon.direct_url, autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS pr_branch WITH (FORCE)")
        admin.execute("CREATE DATABASE pr_branch")
    branch = {  # what create-branch-action gives, from the stand-in (shaped like a Neon branch)
        # create-branch-action gives ?sslmode=require and nothing else (src/branch.ts); hostaddr
        # only points the stand-in's Neon-like name at loopback.
        "db_url": neon.direct_url.replace("/neondb?", "/pr_branch?").replace(
            "channel_binding=require&", ""
        ),
        "db_url_pooled": neon.pooled_url.replace("/neondb?", "/pr_branch?"),
        "branch_id": "br-standin-123456",
        "created": "true",
    }
    actions = {
        **SETUP_ONLY,
        "neondatabase/create-branch-action": branch,
        # Posts a comment on the pull request: needs GitHub and Neon's API, not run here.
        "neondatabase/schema-diff-action": {},
    }
    job = JobRun(checkout, workflow, "tests-on-neon", actions, runner_temp, runner_env(runner_temp))
    job.run_all()
    expiry = job.outputs["expiry"]["at"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", expiry)
    for name, output in job.ran:
        assert neon.password not in output, name
    assert " passed" in job.ran[-1][1] and " failed" not in job.ran[-1][1]
