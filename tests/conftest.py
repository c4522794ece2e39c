"""Fixtures for the template's tests: `bake(**answers)` and the local Neon stand-in.

`bake` renders the template with cookiecutter's API, as `cookiecutter --no-input` does, once per
distinct set of answers in the session (installing a project takes seconds), and returns a Baked
helper holding what the hooks printed. `neon` starts PostgreSQL and PgBouncer from the machine's
binaries; without them the database tests skip, unless NEON_STANDIN_REQUIRED is set (CI sets it),
in which case they fail. `base_image` does the same for image builds (podman and debootstrap;
CONTAINER_TESTS_REQUIRED).
"""

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from cookiecutter.exceptions import CookiecutterException
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


@pytest.fixture(scope="session")
def cookiecutter_config(tmp_path_factory):
    """A throwaway cookiecutter user config, set the way users set theirs (COOKIECUTTER_CONFIG)."""
    home = tmp_path_factory.mktemp("cookiecutter-user")
    config = home / "config.yaml"
    config.write_text(
        f"cookiecutters_dir: {home / 'cookiecutters'}\nreplay_dir: {home / 'replay'}\n"
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COOKIECUTTER_CONFIG", str(config))
        yield config


def run_cookiecutter(template, output_dir, answers, **options):
    """Bake as `cookiecutter --no-input TEMPLATE -o OUTPUT_DIR key=value…` does: (exit, output)."""
    # Cookiecutter imports the template's local_extensions once per process; forget it so that
    # a template copy's hooks come from that copy.
    sys.modules.pop("local_extensions", None)
    with captured_fds() as output:
        try:
            cookiecutter(
                str(template),
                no_input=True,
                extra_context=answers,
                output_dir=str(output_dir),
                **options,
            )
            exit_code = 0
        except (CookiecutterException, SystemExit) as error:
            print(f"{type(error).__name__}: {error}", file=sys.stderr)
            exit_code = 1
    return exit_code, output[0]


@pytest.fixture(scope="session")
def bake(tmp_path_factory, cookiecutter_config):
    """bake(**answers) -> Baked, rendered once per distinct answers in the session.

    `template=` bakes another copy of the template (see `template_copy`), and
    `keep_project_on_failure=True` does what cookiecutter's flag of that name does.
    """
    baked = {}

    def bake(template=TEMPLATE_DIR, keep_project_on_failure=False, **answers):
        key = (str(template), keep_project_on_failure, tuple(sorted(answers.items())))
        if key not in baked:
            output_dir = tmp_path_factory.mktemp("bake")
            exit_code, output = run_cookiecutter(
                template, output_dir, answers, keep_project_on_failure=keep_project_on_failure
            )
            projects = [path for path in output_dir.iterdir() if path.is_dir()]
            replay = cookiecutter_config.parent / "replay" / f"{Path(template).name}.json"
            baked[key] = Baked(
                answers=answers,
                exit_code=exit_code,
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
