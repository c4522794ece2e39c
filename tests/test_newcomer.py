"""A newcomer's first hour: the README's bake command from a clone, what a project without a
database says, `.env` after the bake, and the baked README's claims."""

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import build
from samples import POOLED, QUICK
from served_project import free_port

TEMPLATE_DIR = Path(__file__).resolve().parent.parent
NO_DATABASE = "DATABASE_URL is not set: paste Neon's connection string into .env"


def readme_commands():
    """The command lines of the README's first code block, without their comments."""
    readme = (TEMPLATE_DIR / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```bash\n(.*?)```", readme, re.DOTALL)[1]
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


def clean_clone(destination):
    """The files a clone of this repository holds, as they are now (committed or not)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=TEMPLATE_DIR,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        source = TEMPLATE_DIR / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


def users_path():
    """PATH as the user's shell has it: without the virtualenv `uv run pytest` put first."""
    ours = str(Path(sys.executable).parent)
    return os.pathsep.join(part for part in os.environ["PATH"].split(os.pathsep) if part != ours)


@pytest.mark.slow
def test_the_readmes_bake_command_works_in_a_clean_clone(tmp_path, cookiecutter_config):
    bake_command = readme_commands()[0]
    # Beside the clone, not inside it: the project gets a git repository of its own.
    assert bake_command.endswith("cookiecutter . -o ..")
    clone = clean_clone(tmp_path / "cookiecutter-django-neon")
    result = subprocess.run(
        ["bash", "-c", f"{bake_command} --no-input"],
        cwd=clone,
        env=build.clean_env(COOKIECUTTER_CONFIG=str(cookiecutter_config), PATH=users_path()),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "✓ Django checks" in result.stdout and "Next steps:" in result.stdout
    assert "✓ git repository: first commit" in result.stdout
    project = clone.parent / "my_neon_app"
    assert (project / ".env").is_file() and (project / ".venv" / "bin" / "python").is_file()


def test_the_readme_keeps_the_published_form_beside_it():
    readme = (TEMPLATE_DIR / "README.md").read_text(encoding="utf-8")
    assert "cookiecutter gh:" in readme


def test_env_keeps_the_direct_url_empty_unless_it_was_typed(bake):
    derived = bake(**QUICK, database_url=POOLED)
    assert derived.dotenv()["DATABASE_URL_UNPOOLED"] == ""
    typed = bake(**QUICK, database_url=POOLED, database_url_unpooled=POOLED.replace("-pooler", ""))
    assert typed.dotenv()["DATABASE_URL_UNPOOLED"] == POOLED.replace("-pooler", "")


def test_pointing_database_url_at_another_branch_moves_both(bake, tmp_path):
    project = shutil.copytree(bake(**QUICK, database_url=POOLED).project, tmp_path / "project")
    env_file = project / ".env"
    other_branch = POOLED.replace("ep-cool-darkness-a1b2c3d4", "ep-other-branch-e5f6a7b8")
    text = re.sub(
        r"^DATABASE_URL=.*$", f"DATABASE_URL='{other_branch}'", env_file.read_text(), flags=re.M
    )
    env_file.write_text(text)
    show = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.DATABASES['default']['HOST'])"
    )
    # The template's own environment has Django and the project's other dependencies.
    result = subprocess.run(
        [sys.executable, "-c", show],
        cwd=project,
        env=build.clean_env(DJANGO_SETTINGS_MODULE="config.settings"),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ep-other-branch-e5f6a7b8.us-east-2.aws.neon.tech"


def error_line(result):
    """The one line about the database (shell also says what it imported); no traceback."""
    output = result.stdout + result.stderr
    lines = [line for line in output.splitlines() if "DATABASE_URL" in line]
    assert len(lines) == 1 and "Traceback" not in output, output
    return lines[0]


@pytest.mark.slow
def test_without_a_database_commands_say_which_variable_to_set(bake):
    baked = bake()  # the default answers: no connection string
    migrate = baked.manage("migrate", check=False)
    assert migrate.returncode == 1 and error_line(migrate).startswith(f"Error: {NO_DATABASE}")
    dbcheck = baked.manage("dbcheck", check=False)
    assert dbcheck.returncode == 1 and NO_DATABASE in error_line(dbcheck)
    query = "from accounts.models import User; User.objects.count()"
    shell = baked.manage("shell", "-c", query, check=False)
    assert shell.returncode == 1 and error_line(shell).startswith(f"Error: {NO_DATABASE}")


@pytest.mark.slow
def test_without_a_database_runserver_says_which_variable_to_set(bake):
    baked = bake()
    port = free_port()
    server = subprocess.Popen(
        [baked.python, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=baked.project,
        env=baked.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as page:
                    body = page.read().decode()
                break
            except OSError:
                assert server.poll() is None, server.stdout.read()
                time.sleep(0.1)
    finally:
        server.terminate()
        console = server.communicate(timeout=10)[0]
    assert "No database connection." in body and "DATABASE_URL is not set" in body
    warnings = [line for line in console.splitlines() if NO_DATABASE in line]
    assert len(warnings) == 1 and " WARNING status.views: " in warnings[0], console
    assert "Traceback" not in console


def test_the_cd_line_survives_spaces_in_the_path(monkeypatch):
    monkeypatch.setenv("PWD", "/elsewhere")
    steps = build.next_steps(Path("/home/ada/My Projects/shop"), "uv", pooled="x")
    assert "  cd '/home/ada/My Projects/shop'\n" in steps


@pytest.mark.parametrize(("version", "python"), [("5.2", "3.10"), ("6.1", "3.12")])
def test_the_project_says_which_python_it_needs(bake, version, python):
    baked = bake(**QUICK, django_version=version)
    assert (baked.project / ".python-version").read_text() == f"{python}\n"
    readme = (baked.project / "README.md").read_text()
    assert f"Python {python} or newer" in readme
    assert f'requires-python = ">={python}"' in (baked.project / "pyproject.toml").read_text()


@pytest.mark.slow
def test_the_readmes_check_deploy_command_reports_no_issues(migrated_project):
    readme = (migrated_project.project / "README.md").read_text()
    command = "DJANGO_DEBUG=false DJANGO_ALLOWED_HOSTS=example.com python manage.py check --deploy"
    assert f"`{command}`" in readme
    variables, _, manage = command.partition(" python ")
    env = dict(item.split("=") for item in variables.split())
    result = migrated_project.run(migrated_project.python, *manage.split(), env=env)
    assert result.stdout.startswith("System check identified no issues"), result.stdout
