"""Template updates with cruft: create, check and update a project from a git clone of the template.

cruft keeps the answers in the project's .cruft.json and renders the template again from them for
an update: the password must never be in that file, and an update must apply the template's
changes without touching .env or the user's own edits.
"""

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from samples import DIRECT, ENCODED_PASSWORD, HARD_PASSWORD, POOLED

CRUFT = Path(sys.executable).parent / "cruft"
GIT = ["git", "-c", "user.name=Template Tests", "-c", "user.email=tests@example.com"]
# The samples' password is in the baked project's own tests; this one is nowhere in the template.
PASSWORD = f"cruft-{HARD_PASSWORD}"
PASSWORD_FORMS = (quote(PASSWORD, safe=""), PASSWORD, json.dumps(PASSWORD)[1:-1])


def run(*command, cwd):
    return subprocess.run(
        [str(part) for part in command], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def cruft_create(template_repo, tmp_path, answers):
    """`cruft create --no-input` into tmp_path/projects with these answers as extra context."""
    return run(
        CRUFT,
        "create",
        template_repo,
        "--no-input",
        "--output-dir",
        tmp_path / "projects",
        "--extra-context",
        json.dumps(answers),
        cwd=tmp_path,
    )


def commit_all(folder, message):
    for command in (["add", "--all"], ["commit", "--quiet", "--no-verify", "-m", message]):
        result = run(*GIT, *command, cwd=folder)
        assert result.returncode == 0, result.stderr


def password_in(text):
    return [form for form in PASSWORD_FORMS if form in text]


@pytest.fixture
def template_repo(template_copy):
    """The template as cruft takes it: a git repository (a copy of this checkout's files)."""
    assert run(*GIT, "init", "--quiet", cwd=template_copy).returncode == 0
    commit_all(template_copy, "The template")
    return template_copy


@pytest.fixture
def created(template_repo, tmp_path):
    """`cruft create` with both connection strings given, as a CI job would pass them."""
    answers = {
        "project_slug": "crufted",
        "database_url": POOLED.replace(ENCODED_PASSWORD, PASSWORD_FORMS[0]),
        "database_url_unpooled": DIRECT.replace(ENCODED_PASSWORD, PASSWORD_FORMS[0]),
        "install_with": "none",
    }
    result = cruft_create(template_repo, tmp_path, answers)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "✓ git repository" in result.stdout + result.stderr  # the bake's steps all ran
    assert not password_in(result.stdout + result.stderr)
    return tmp_path / "projects" / "crufted"


def test_cruft_create_keeps_the_password_in_env_only(created):
    assert PASSWORD_FORMS[0] in (created / ".env").read_text()  # the hook did get it
    saved = json.loads((created / ".cruft.json").read_text())
    answers = saved["context"]["cookiecutter"]
    assert answers["database_url"] == answers["database_url_unpooled"] == ""
    assert answers["project_slug"] == "crufted"
    leaks = {
        str(path.relative_to(created)): found
        for path in created.rglob("*")
        if path.is_file() and ".git" not in path.parts and path.name != ".env"
        if (found := password_in(path.read_text(encoding="utf-8", errors="replace")))
    }
    assert leaks == {}


def test_cruft_check_and_update_apply_template_changes_and_keep_the_users(created, template_repo):
    commit_all(created, "Record the template version")  # cruft updates only a clean tree
    check = run(CRUFT, "check", cwd=created)
    assert check.returncode == 0 and "up to date" in check.stdout, check.stdout + check.stderr

    env_before = (created / ".env").read_bytes()
    with (created / "manage.py").open("a") as manage:
        manage.write("# The user's own line.\n")
    commit_all(created, "The user's change")

    project = template_repo / "{{cookiecutter.project_slug}}"
    with (project / "config" / "__init__.py").open("a") as config:
        config.write('"""The configuration of {{ cookiecutter.project_name }}."""\n')
    with (project / ".env.example").open("a") as example:
        example.write("# A variable added by a later template.\nNEW_SETTING=1\n")
    commit_all(template_repo, "A template improvement")

    assert run(CRUFT, "check", cwd=created).returncode != 0  # out of date now
    update = run(CRUFT, "update", "--skip-apply-ask", cwd=created)
    assert update.returncode == 0, update.stdout + update.stderr
    assert "has been updated" in update.stdout, update.stdout + update.stderr
    # cruft renders the template twice from .cruft.json: those renders make no repository.
    assert "git repository" not in update.stdout + update.stderr

    config_text = (created / "config" / "__init__.py").read_text()
    assert '"""The configuration of My Neon App."""' in config_text
    assert "NEW_SETTING=1" in (created / ".env.example").read_text()
    assert (created / "manage.py").read_text().endswith("# The user's own line.\n")
    assert (created / ".env").read_bytes() == env_before
    assert not list(created.rglob("*.rej"))
    assert not password_in((created / ".cruft.json").read_text())
    assert run(CRUFT, "check", cwd=created).returncode == 0


def test_cruft_create_refuses_a_bad_answer_before_any_file(template_repo, tmp_path):
    """cruft calls cookiecutter's generate_files itself: the answers are checked there too."""
    answers = {"project_slug": "django", "install_with": "none", "git_init": "no"}
    result = cruft_create(template_repo, tmp_path, answers)
    assert result.returncode != 0
    assert "Error: project_slug 'django' would shadow" in result.stdout + result.stderr
    assert not (tmp_path / "projects" / "django").exists()
