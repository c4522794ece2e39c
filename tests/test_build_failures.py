"""Break a copy of the template on purpose: the hook must name the failing step, exit non-zero and
leave nothing behind (unless asked to keep it)."""

import os
import shutil
import sys
from pathlib import Path

import pytest

from samples import ENCODED_PASSWORD, HARD_PASSWORD, POOLED

PROJECT = "{{cookiecutter.project_slug}}"
# A Neon-style host on a loopback port nobody listens on: the connection is refused at once.
UNREACHABLE = (
    "postgresql://neondb_owner:n0tL0gged@ep-gone-a1b2c3d4.us-east-2.aws.neon.tech:9/neondb"
    "?sslmode=require&hostaddr=127.0.0.1"
)


def break_file(template, relative, old, new):
    path = Path(template) / PROJECT / relative
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def assert_failed_at(baked, step, *expected):
    assert baked.exit_code != 0
    failed = [line for line in baked.output.splitlines() if " ✗ " in line]
    assert failed and step in failed[0], baked.output
    for text in expected:
        assert text in baked.output
    assert "cookiecutter removes the half-made project" in baked.output


def test_a_missing_env_example_fails_the_env_step(bake, template_copy):
    (template_copy / PROJECT / ".env.example").unlink()
    baked = bake(template=template_copy, install_with="none", git_init="no")
    assert_failed_at(baked, "wrote .env", "No such file or directory", ".env.example")
    assert list(baked.output_dir.iterdir()) == []


def test_syntax_error_fails_the_static_check(bake, template_copy):
    break_file(template_copy, "status/views.py", "def health(request):", "def health(request:")
    baked = bake(template=template_copy, install_with="none", git_init="no")
    assert_failed_at(baked, "static check", "status/views.py:")
    assert list(baked.output_dir.iterdir()) == []


def test_keep_project_on_failure_keeps_it_for_a_look(bake, template_copy):
    break_file(template_copy, "status/views.py", "def health(request):", "def health(request:")
    baked = bake(template=template_copy, install_with="none", keep_project_on_failure=True)
    assert baked.exit_code != 0
    assert (baked.project / "status" / "views.py").is_file()
    assert (baked.project / ".env").is_file()


@pytest.mark.slow
def test_unresolvable_dependency_fails_the_install(bake, template_copy):
    break_file(
        template_copy, "pyproject.toml", '"dj-database-url>=2.3,<4"', '"dj-database-url>=99"'
    )
    baked = bake(template=template_copy, git_init="no")
    assert_failed_at(baked, "install with uv", "uv sync", "dj-database-url")
    assert list(baked.output_dir.iterdir()) == []


def test_a_gitignore_that_lets_env_through_fails_the_git_step(bake, template_copy):
    break_file(template_copy, ".gitignore", "\n.env\n", "\n")
    baked = bake(template=template_copy, install_with="none")
    assert_failed_at(baked, "git repository", ".env is not in .gitignore")
    assert list(baked.output_dir.iterdir()) == []


@pytest.mark.slow
def test_missing_migration_fails_the_django_checks(bake, template_copy):
    break_file(
        template_copy,
        "accounts/models.py",
        '    """\n',
        '    """\n\n    nickname = models.CharField(max_length=30, blank=True)\n',
    )
    break_file(
        template_copy,
        "accounts/models.py",
        "from django.contrib.auth.models import AbstractUser",
        "from django.contrib.auth.models import AbstractUser\nfrom django.db import models",
    )
    baked = bake(template=template_copy, git_init="no")
    assert_failed_at(baked, "Django checks", "makemigrations --check --dry-run", "nickname")
    assert list(baked.output_dir.iterdir()) == []


@pytest.mark.slow
def test_bad_setting_fails_the_django_checks(bake, template_copy):
    break_file(
        template_copy, "config/settings.py", 'TIME_ZONE = "UTC"', 'TIME_ZONE = "Mars/Olympus"'
    )
    baked = bake(template=template_copy, git_init="no")
    assert_failed_at(
        baked, "Django checks", "python manage.py check --fail-level WARNING", "Mars/Olympus"
    )
    assert list(baked.output_dir.iterdir()) == []


@pytest.mark.slow
def test_a_deploy_only_problem_fails_check_deploy(bake, template_copy):
    break_file(
        template_copy,
        "config/settings.py",
        "SESSION_COOKIE_SECURE = not DEBUG",
        "SESSION_COOKIE_SECURE = False",
    )
    baked = bake(template=template_copy, git_init="no")
    assert_failed_at(
        baked, "Django checks", "python manage.py check --deploy", "SESSION_COOKIE_SECURE"
    )


@pytest.mark.slow
def test_unreachable_database_is_a_warning_by_default(bake):
    baked = bake(database_url=UNREACHABLE, git_init="no", project_name="Offline Yes")
    assert baked.exit_code == 0, baked.output
    assert " ! connect over the direct host: failed, bake kept: " in baked.output
    assert "n0tL0gged" not in baked.output


@pytest.mark.slow
def test_unreachable_database_fails_a_strict_check(bake):
    baked = bake(
        database_url=UNREACHABLE, git_init="no", check_connection="strict", project_name="Strict"
    )
    assert_failed_at(baked, "connect over the direct host", "$ ")
    assert "n0tL0gged" not in baked.output
    assert list(baked.output_dir.iterdir()) == []


@pytest.mark.slow
def test_a_failing_command_that_prints_the_url_is_shown_masked(bake, template_copy):
    break_file(
        template_copy,
        "status/management/commands/dbcheck.py",
        "    def handle(self, *args, timeout, **options):\n",
        "    def handle(self, *args, timeout, **options):\n"
        "        import os\n\n"
        "        raise CommandError(f\"cannot use {os.environ['DATABASE_URL']}\")\n",
    )
    baked = bake(template=template_copy, database_url=POOLED, check_connection="strict")
    assert_failed_at(
        baked, "connect over the direct host", "cannot use postgresql://neondb_owner:****@"
    )
    assert ENCODED_PASSWORD not in baked.output and HARD_PASSWORD not in baked.output


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="the hook runs on this interpreter")
def test_no_python_new_enough_is_one_clear_line(bake, tmp_path, monkeypatch):
    # Only git on PATH and no pyenv: nothing but the running 3.11 interpreter is to be found.
    (tmp_path / "bin").mkdir()
    os.symlink(shutil.which("git"), tmp_path / "bin" / "git")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "no-pyenv"))
    baked = bake(django_version="6.1", install_with="pip", git_init="no", project_name="Too Old")
    assert_failed_at(
        baked, "install with pip", "Django 6.1 needs Python 3.12 or newer and none was found"
    )
