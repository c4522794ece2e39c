"""Fixtures for the template's tests: `bake(**answers)` and the local Neon stand-in.

`bake` bakes through pytest-cookies' `cookies_session`, as `cookiecutter --no-input` does, once
per distinct set of answers in the session (installing a project takes seconds), and returns a
Baked helper holding what the hooks printed and the folder the bake went to, also when it failed.
Tests that need a bake of their own use pytest-cookies' `cookies` with pytest's `capfd`.

`neon` starts PostgreSQL and PgBouncer from the machine's binaries; without them the database
tests skip, unless NEON_STANDIN_REQUIRED is set (CI sets it), in which case they fail.
`base_image` does the same for image builds (podman and debootstrap; CONTAINER_TESTS_REQUIRED).
"""

import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest
import pytest_cookies.plugin
from cookiecutter.config import get_user_config
from cookiecutter.main import cookiecutter
from dotenv import dotenv_values

import build
import container_image
import neon_standin

TEMPLATE_DIR = Path(__file__).resolve().parent.parent
RUFF = Path(sys.executable).parent / "ruff"


@dataclass
class Baked:
    """One bake: its answers, exit code, what the hooks printed, and where it went."""

    answers: dict
    exit_code: int
    output: str
    output_dir: Path
    replay: str  # cookiecutter's replay file as the hooks left it, "" if none
    replay_mode: int
    project: Path | None = None

    def env(self, **overrides):
        """The environment for commands in the project, cleaned as the bake hook cleans it."""
        return build.clean_env(**overrides)

    def run(self, *command, env=None, check=True, timeout=300):
        result = subprocess.run(
            [str(part) for part in command],
            cwd=self.project,
            env=self.env(**(env or {})),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            pytest.fail(f"{command} failed:\n{result.stdout}\n{result.stderr}")
        return result

    @property
    def python(self):
        return self.project / ".venv" / "bin" / "python"

    def manage(self, *args, **kwargs):
        return self.run(self.python, "manage.py", *args, **kwargs)

    def dotenv(self):
        return dotenv_values(self.project / ".env")

    def files(self, including_venv=False):
        """Every file of the project, outside .git (and .venv unless asked)."""
        skipped = {".git"} if including_venv else {".git", ".venv"}
        return [
            path
            for path in self.project.rglob("*")
            if path.is_file() and not path.is_symlink() and not skipped & set(path.parts)
        ]


@contextmanager
def captured_fds():
    """Capture what subprocesses write to fds 1 and 2: cookiecutter's hooks are subprocesses."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        lines = []
        try:
            yield lines
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            sink.seek(0)
            lines.append(sink.read())


@pytest.fixture(scope="session", autouse=True)
def cookiecutter_config(_cookiecutter_config_file):
    """pytest-cookies' throwaway user config, also set the way users set theirs.

    pytest-cookies hands its config (its own cookiecutters_dir and replay_dir) to cookiecutter
    as `config_file`, which the hooks, separate processes, cannot see; COOKIECUTTER_CONFIG points
    them and every `cookiecutter` command of the session at the same file, so no test reads or
    writes the real user's replay files.
    """
    config = Path(str(_cookiecutter_config_file))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COOKIECUTTER_CONFIG", str(config))
        yield config


def replay_file(config, template):
    """Cookiecutter's replay file for `template` under the user config `config`."""
    return Path(get_user_config(config_file=str(config))["replay_dir"]) / f"{template.name}.json"


def bake_with(cookies, template, answers, keep_project_on_failure=False):
    """Bake as `cookiecutter --no-input TEMPLATE key=value…` does, with pytest-cookies' `cookies`.

    Returns (pytest-cookies' Result, what the hooks printed, the folder the bake went to or None).
    pytest-cookies makes one numbered folder per bake under one root and names it only when the
    bake succeeds: the folder that appeared is the one a failed bake had to leave empty.
    """
    bakes = Path(str(cookies._output_factory.__self__))
    folders_before = set(bakes.iterdir())
    # Cookiecutter imports the template's local_extensions once per process; forget it so that
    # a template copy's hooks come from that copy, and forget it again afterwards, so that the
    # next bake of the template itself does not get the copy's. pytest-cookies renders the
    # answers before cookiecutter puts the template on sys.path, so put it there first.
    sys.modules.pop("local_extensions", None)
    with pytest.MonkeyPatch.context() as patch, captured_fds() as output:
        patch.syspath_prepend(str(template))
        if keep_project_on_failure:  # an option of cookiecutter's that pytest-cookies does not pass
            patch.setattr(
                pytest_cookies.plugin,
                "cookiecutter",
                partial(cookiecutter, keep_project_on_failure=True),
            )
        try:
            result = cookies.bake(extra_context=answers, template=str(template))
        finally:
            sys.modules.pop("local_extensions", None)
        if result.exception is not None:
            # The CLI prints this; write it where the hooks' output goes (fd 2), in order.
            error = f"{type(result.exception).__name__}: {result.exception}"
            print(error, file=sys.__stderr__, flush=True)
    new_folders = set(bakes.iterdir()) - folders_before
    if len(new_folders) > 1:
        pytest.fail(f"pytest-cookies made {len(new_folders)} folders for one bake")
    # None: pytest-cookies stopped while rendering the answers, before cookiecutter ran.
    return result, output[0], new_folders.pop() if new_folders else None


@pytest.fixture(scope="session")
def bake(cookies_session, cookiecutter_config, tmp_path_factory):
    """bake(**answers) -> Baked, rendered once per distinct answers in the session.

    `template=` bakes another copy of the template (see `template_copy`), and
    `keep_project_on_failure=True` does what cookiecutter's flag of that name does.
    """
    baked = {}

    def bake(template=TEMPLATE_DIR, keep_project_on_failure=False, **answers):
        key = (str(template), keep_project_on_failure, tuple(sorted(answers.items())))
        if key not in baked:
            result, output, output_dir = bake_with(
                cookies_session, Path(template), answers, keep_project_on_failure
            )
            output_dir = output_dir or tmp_path_factory.mktemp("not-baked")
            projects = [path for path in output_dir.iterdir() if path.is_dir()]
            replay = replay_file(cookiecutter_config, Path(template))
            baked[key] = Baked(
                answers=answers,
                exit_code=result.exit_code,
                output=output,
                output_dir=output_dir,
                replay=replay.read_text() if replay.is_file() else "",
                replay_mode=stat.S_IMODE(replay.stat().st_mode) if replay.is_file() else 0,
                project=projects[0] if projects else None,
            )
        return baked[key]

    return bake


@pytest.fixture(scope="session")
def ruff_problems():
    """ruff_problems(folder) -> what `ruff check` and `ruff format --check` say; "" if clean."""

    def problems(folder):
        found = []
        for check in (["check"], ["format", "--check"]):
            command = [RUFF, *check, "--no-cache", "."]
            result = subprocess.run(command, cwd=folder, capture_output=True, text=True)
            if result.returncode != 0:
                found.append(result.stdout + result.stderr)
        return "\n".join(found)

    return problems


@pytest.fixture
def template_copy(tmp_path):
    """A copy of the template to break on purpose; bake it with bake(template=...)."""
    copy = tmp_path / "cookiecutter-django-neon"
    shutil.copytree(
        TEMPLATE_DIR,
        copy,
        ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__", ".*_cache"),
    )
    return copy


@pytest.fixture(scope="session")
def start_standin():
    """start_standin() -> a new Neon stand-in, or a skip (a failure with NEON_STANDIN_REQUIRED)."""

    def start():
        try:
            return neon_standin.start()
        except neon_standin.StandInUnavailable as error:
            unavailable(f"The Neon stand-in could not start: {error}", "NEON_STANDIN_REQUIRED")

    return start


def unavailable(reason, required_by):
    """Skip a test whose real part is missing here, or fail it where `required_by` is set (CI)."""
    if os.environ.get(required_by):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def base_image():
    """The local Debian base for image builds (tests/container_image.py); made once per machine."""
    try:
        return container_image.ensure_base_image()
    except container_image.CannotBuildImages as error:
        unavailable(f"Cannot build images here: {error}", "CONTAINER_TESTS_REQUIRED")


@pytest.fixture(scope="session")
def neon(start_standin):
    """The local Neon stand-in: PostgreSQL over TLS, and PgBouncer in transaction mode as pooler."""
    standin = start_standin()
    yield standin
    standin.stop()


@pytest.fixture(scope="session")
def standin_project(bake, neon):
    """standin_project(database, **answers) -> a bake wired to a fresh database of the stand-in.

    Both URLs (pooled and direct) point at `database`, made anew; `direct=False` leaves the
    direct one for the project to derive.
    """

    def make(database, *, direct=True, **answers):
        pooled_url, direct_url = neon.create_database(database)
        baked = bake(
            **{"git_init": "no", **answers},
            database_url=pooled_url,
            database_url_unpooled=direct_url if direct else "",
        )
        assert baked.exit_code == 0, baked.output
        return baked

    return make


@pytest.fixture(scope="module", params=["5.2", "6.1"], ids=["django-5.2", "django-6.1"])
def project(request, standin_project):
    """A project per Django version (modules may override it), baked with the stand-in's
    pooled and direct URLs, on a database of its own."""
    version = request.param
    return standin_project(
        f"app_{version.replace('.', '_')}",
        project_name=f"Standin {version}",
        django_version=version,
    )


@pytest.fixture(scope="module")
def budget(project):
    """PROBE_BUDGET_SECONDS as the baked project defines it."""
    source = (project.project / "status" / "probe.py").read_text()
    return int(re.search(r"^PROBE_BUDGET_SECONDS = (\d+)", source, re.MULTILINE)[1])


@pytest.fixture(scope="session")
def migrated_project(standin_project):
    """A Django 5.2 project baked against the stand-in, migrated, its static files collected."""
    baked = standin_project("served", project_name="Served App")
    baked.manage("migrate", "--noinput")
    baked.manage("collectstatic", "--noinput", env={"DJANGO_DEBUG": "false"})
    return baked
