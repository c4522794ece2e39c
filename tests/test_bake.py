"""Bake the template with many answers and check what every baked project must be."""

import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from samples import DIRECT, ENCODED_PASSWORD, HARD_PASSWORD, POOLED, QUICK

INSTALLED = pytest.mark.slow
BAKES = [
    pytest.param({**QUICK, "database_url": POOLED}, (POOLED, ""), id="pooled-url"),
    pytest.param({**QUICK, "database_url": DIRECT}, (POOLED, ""), id="direct-url"),
    pytest.param({**QUICK}, ("", ""), id="empty-url"),
    pytest.param(
        {**QUICK, "database_url": POOLED, "django_version": "6.1"},
        (POOLED, ""),
        id="django-6.1",
    ),
    pytest.param({**QUICK, "database_url": POOLED, "git_init": "yes"}, (POOLED, ""), id="with-git"),
    pytest.param(
        {"database_url": POOLED, "check_connection": "no"},
        (POOLED, ""),
        id="uv-5.2",
        marks=INSTALLED,
    ),
    pytest.param(
        {"database_url": POOLED, "check_connection": "no", "django_version": "6.1"},
        (POOLED, ""),
        id="uv-6.1",
        marks=INSTALLED,
    ),
    pytest.param(
        {"install_with": "pip", "database_url": DIRECT, "check_connection": "no"},
        (POOLED, ""),
        id="pip-5.2",
        marks=INSTALLED,
    ),
]


@pytest.mark.parametrize(("answers", "urls"), BAKES)
def test_bake_writes_the_urls_into_a_private_env(bake, answers, urls):
    baked = bake(**answers)
    assert baked.exit_code == 0, baked.output
    env = baked.dotenv()
    assert (env["DATABASE_URL"], env["DATABASE_URL_UNPOOLED"]) == urls
    assert len(env["DJANGO_SECRET_KEY"]) >= 50
    assert stat.S_IMODE((baked.project / ".env").stat().st_mode) == 0o600
    assert ".env" in (baked.project / ".gitignore").read_text().splitlines()
    if not urls[0]:
        assert "DATABASE_URL is empty" in baked.output and "paste" in baked.output


@pytest.mark.parametrize(("answers", "urls"), BAKES)
def test_baked_files_are_finished_code(bake, ruff_problems, answers, urls):
    baked = bake(**answers)
    for path in baked.files():
        text = path.read_text(errors="replace")
        assert not re.search(r"\{[{%][^}]*cookiecutter", text), path
        if path.suffix != ".html":  # Django templates have {% %} tags of their own
            assert "{%" not in text, path
        if path.suffix == ".py":
            compile(text, str(path), "exec")
    assert ruff_problems(baked.project) == ""


@pytest.mark.parametrize(("answers", "urls"), BAKES)
def test_the_password_stays_in_env(bake, answers, urls):
    baked = bake(**answers)
    secrets = (ENCODED_PASSWORD.encode(), HARD_PASSWORD.encode())
    for path in baked.files(including_venv=True):
        if path.name != ".env":
            assert not any(secret in path.read_bytes() for secret in secrets), path
    assert ENCODED_PASSWORD not in baked.output and HARD_PASSWORD not in baked.output
    assert baked.replay and ENCODED_PASSWORD not in baked.replay
    assert baked.replay_mode == 0o600


@pytest.mark.slow
@pytest.mark.parametrize(
    "answers",
    [
        pytest.param(answers, id=param.id)
        for param in BAKES
        if param.marks
        for answers in param.values[:1]
    ],
)
def test_installed_bake_passes_its_build_check(bake, answers):
    baked = bake(**answers)
    assert "✓ Django checks" in baked.output
    version = answers.get("django_version", "5.2")
    assert f"Django {version}." in baked.output
    assert "no issues" in baked.manage("check", env={"DATABASE_URL": ""}).stdout
    assert "Next steps:" in baked.output
    tracked = baked.run("git", "ls-files").stdout.split()
    assert ".env" not in tracked and not any(".egg-info" in name for name in tracked)
    assert not (baked.project / "build").exists() and not list(baked.project.glob("*.egg-info"))
    python = baked.run(baked.python, "-c", "import sys; print(*sys.version_info[:2], sep='.')")
    assert (baked.project / ".python-version").read_text() == python.stdout


def test_the_replay_file_keeps_the_rest_of_the_url(bake):
    baked = bake(**QUICK, database_url=POOLED, project_name="Replay Check")
    assert baked.exit_code == 0
    assert POOLED.replace(f":{ENCODED_PASSWORD}@", "@") in baked.replay


def test_git_step_commits_everything_but_env(bake):
    baked = bake(**{**QUICK, "database_url": POOLED, "git_init": "yes"})
    tracked = baked.run("git", "ls-files").stdout.split()
    assert ".env" not in tracked and ".env.example" in tracked and "manage.py" in tracked
    assert baked.run("git", "check-ignore", ".env").returncode == 0
    log = baked.run("git", "log", "-p", "--all").stdout
    assert ENCODED_PASSWORD not in log
    assert "✓ git repository: first commit" in baked.output


def test_project_name_sets_slug_and_names(bake):
    baked = bake(**QUICK, project_name="Shop Front")
    assert baked.project.name == "shop_front"
    assert 'name = "shop_front"' in (baked.project / "pyproject.toml").read_text()
    assert '"shop_front"' in (baked.project / "config" / "settings.py").read_text()


def test_django_version_sets_the_pins(bake):
    five = (bake(**QUICK).project / "pyproject.toml").read_text()
    six = (bake(**QUICK, django_version="6.1").project / "pyproject.toml").read_text()
    assert '"django~=5.2.0"' in five and 'requires-python = ">=3.10"' in five
    assert '"django~=6.1.0"' in six and 'requires-python = ">=3.12"' in six


def test_no_template_only_files_leak_into_the_project(bake):
    names = {path.relative_to(bake(**QUICK).project).as_posix() for path in bake(**QUICK).files()}
    assert not {"cookiecutter.json", "hooks/answers.py", "hooks/build.py"} & names
    assert not any(name.endswith((".pyc", ".orig", ".rej")) for name in names)


def test_no_hook_copy_with_the_password_is_left_in_tmp(bake, tmp_path_factory):
    import tempfile

    before = set(Path(tempfile.gettempdir()).glob("tmp*.py"))
    baked = bake(**QUICK, database_url=POOLED, project_name="Tmp Check")
    assert baked.exit_code == 0
    for path in set(Path(tempfile.gettempdir()).glob("tmp*.py")) - before:
        assert ENCODED_PASSWORD not in path.read_text(errors="replace"), path


@pytest.mark.slow
def test_the_default_bake_works_and_its_tests_ask_for_a_database(bake):
    baked = bake()
    assert baked.exit_code == 0, baked.output
    assert "✓ git repository: first commit" in baked.output
    assert "$EDITOR .env" in baked.output
    result = baked.run(baked.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", check=False)
    assert "No database: set DATABASE_URL in .env" in result.stdout
    assert "No directory at" not in result.stdout + result.stderr  # whitenoise's STATIC_ROOT
    assert " passed" in result.stdout  # the tests of config/neon.py need no database


def test_the_cli_bakes_from_a_relative_template_path(tmp_path, cookiecutter_config):
    # `cookiecutter .` hands hooks "." as the template: they must still find their modules.
    command = [Path(sys.executable).parent / "cookiecutter", "--no-input", ".", "-o", tmp_path]
    result = subprocess.run(
        [*command, "install_with=none", f"database_url={POOLED}"],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "my_neon_app" / ".env").is_file()
    assert ENCODED_PASSWORD not in result.stdout + result.stderr
