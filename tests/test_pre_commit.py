"""The baked project's pre-commit hooks: clean on a fresh bake, and no password reaches a commit."""

import importlib.util
from pathlib import Path

import pytest

from samples import CI_BAKE, ENCODED_PASSWORD, HARD_PASSWORD, POOLED

TEMPLATE_PROJECT = Path(__file__).resolve().parent.parent / "{{cookiecutter.project_slug}}"
# The same bake as the CI workflow tests: installed with uv, committed.
IDENTITY = ["-c", "user.name=Test", "-c", "user.email=test@localhost"]


def load_checker():
    path = TEMPLATE_PROJECT / "scripts" / "check_no_database_password.py"
    spec = importlib.util.spec_from_file_location("check_no_database_password", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


checker = load_checker()


@pytest.mark.parametrize(
    "line",
    [
        f'URL = "{POOLED}"',
        "DATABASE_URL=postgresql://neondb_owner:npg_AbCdEf123456@ep-x-1.us-east-2.aws.neon.tech/db",
        "postgres://app:correct-horse-battery@db.internal:5432/app",
        "postgresql://neondb_owner@ep-x-1.neon.tech/neondb?sslmode=require&password=npg_AbCdEf1234",
        "engine = create_engine('postgresql+psycopg://app:npg_AbCdEf123456@ep-x-1.neon.tech/db')",
        "postgresql://app:npg_Ab$Cd*Ef<12{34@db.internal/app",  # placeholder characters inside
        "psql 'host=ep-x-1.neon.tech dbname=neondb user=app password=npg_AbCdEf123456'",
    ],
)
def test_a_connection_string_with_a_password_is_found(line):
    assert checker.first_password_line(f"first line\n{line}\n") == 2


@pytest.mark.parametrize(
    "line",
    [
        "postgresql://neondb_owner@ep-x-1.us-east-2.aws.neon.tech/neondb",  # no password
        "postgresql://u:p@host/db",  # a test's stand-in
        "use postgresql://user:password@host/dbname",  # the placeholder in an error message
        'f"postgresql://{user}:{password}@{host}:{port}/{database}"',
        "postgresql://neondb_owner:$PGPASSWORD_OF_THE_BRANCH@host/neondb",
        "postgresql://neondb_owner:<your-password-here>@host/neondb",
        f'"{POOLED}"  # allow-database-password: a documented fake',
        "DATABASE_URL=",
        "postgresql://app@host/db?sslmode=require&password=${PGPASSWORD}",
        "conninfo = f'host={host} dbname={name} password={password}'",
    ],
)
def test_placeholders_and_stand_ins_pass(line):
    assert checker.first_password_line(line) is None


@pytest.mark.parametrize(
    ("name", "refused"),
    [
        (".env", True),
        (".env.production", True),
        (".envrc", True),
        (".env.example", False),
        ("env.py", False),
    ],
)
def test_env_files_are_refused_by_name(name, refused):
    assert checker.is_env_file(Path("config") / name) is refused


def test_the_message_names_the_file_and_line_never_the_password(tmp_path):
    leak = tmp_path / "settings_local.py"
    leak.write_text(f'DATABASE_URL = "{POOLED}"\n')
    message = checker.problem(leak)
    assert message.startswith(f"{leak}:1: ") and "\n" not in message
    assert ENCODED_PASSWORD not in message and HARD_PASSWORD not in message


@pytest.fixture(scope="module")
def project(bake):
    baked = bake(**CI_BAKE)
    assert baked.exit_code == 0, baked.output
    return baked


@pytest.mark.slow
def test_pre_commit_passes_on_a_fresh_bake(project):
    result = project.run(".venv/bin/pre-commit", "run", "--all-files", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    ran = [line for line in result.stdout.splitlines() if line.endswith("Passed")]
    assert len(ran) == 10 and ran[-1].startswith("no .env, no database passwords")
    assert project.run("git", "status", "--porcelain").stdout == ""  # no hook changed a file


@pytest.fixture
def hooks_installed(project):
    project.run(".venv/bin/pre-commit", "install")
    yield project
    project.run("git", "reset", "--quiet")  # unstage what the test staged


def commit(project, *paths, force=False):
    project.run("git", "add", *(["--force"] if force else []), *paths)
    return project.run("git", *IDENTITY, "commit", "--message", "try", check=False)


@pytest.mark.slow
def test_a_commit_with_a_database_password_fails_naming_the_file(hooks_installed):
    project = hooks_installed
    leak = project.project / "config" / "local_settings.py"
    leak.write_text(f'DATABASE_URL = "{POOLED}"\n')
    try:
        result = commit(project, "config/local_settings.py")
    finally:
        leak.unlink()
    output = result.stdout + result.stderr
    assert result.returncode != 0
    refusals = [line for line in output.splitlines() if "connection string with a password" in line]
    assert refusals == [
        "config/local_settings.py:1: a PostgreSQL connection string with a password; "
        "keep it in .env (git ignores it) and read it from the environment"
    ]
    assert ENCODED_PASSWORD not in output and HARD_PASSWORD not in output
    assert project.run("git", "log", "--format=%s").stdout.splitlines() == [
        "Start from cookiecutter-django-neon"
    ]


@pytest.mark.slow
def test_a_forced_add_of_env_is_refused(hooks_installed):
    project = hooks_installed
    secret_key = project.dotenv()["DJANGO_SECRET_KEY"]
    result = commit(project, ".env", force=True)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert ".env: .env files hold this project's secrets and stay out of git" in output
    assert secret_key not in output
    assert "Start from" in project.run("git", "log", "-1", "--format=%s").stdout
