"""Unit tests of hooks/build.py, the post-gen steps, on small projects made in tmp_path."""

import io
import subprocess
import sys
from pathlib import Path

import pytest

import build
from samples import DIRECT, ENCODED_PASSWORD, HARD_PASSWORD


def test_report_masks_the_password_as_typed_and_as_encoded():
    out = io.StringIO()
    report = build.Report(build.password_texts(DIRECT, ""), out=out)
    report.say(f"raw {HARD_PASSWORD} encoded {ENCODED_PASSWORD} url {DIRECT}")
    printed = out.getvalue()
    assert HARD_PASSWORD not in printed
    assert ENCODED_PASSWORD not in printed
    assert printed.count("****") == 3


def test_a_step_prints_a_tick_its_detail_and_time():
    out = io.StringIO()
    report = build.Report(out=out)
    with report.step("first") as line:
        line.detail = "fine"
    with report.step("second") as line:
        line.warning = True
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("  1 ✓ first: fine  (") and lines[0].endswith(" s)")
    assert lines[1].startswith("  2 ! second")


def test_a_failed_step_prints_a_cross_and_the_command_output():
    out = io.StringIO()
    report = build.Report(out=out)
    with pytest.raises(build.StepFailed), report.step("doomed"):
        build.run([sys.executable, "-c", "import sys; print('last words'); sys.exit(3)"], cwd=".")
    printed = out.getvalue()
    assert "  1 ✗ doomed" in printed
    assert "last words" in printed and "$ " in printed


def make_project(tmp_path, files):
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


GOOD = {
    "pyproject.toml": '[project]\nname = "x"\n',
    "app/views.py": "x = 1\n",
    "t.html": "{% if a %}{{ a }}{% endif %}",
}


def test_static_check_passes_a_good_project_with_django_template_tags(tmp_path):
    assert build.static_check(make_project(tmp_path, GOOD)) == 3


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        pytest.param({"app/views.py": "def f(:\n"}, "app/views.py:1", id="syntax-error"),
        pytest.param({"pyproject.toml": "[project\n"}, "pyproject.toml", id="bad-toml"),
        pytest.param(
            {"README.md": "# {{ cookiecutter.project_name }}"},
            "README.md has an unrendered",
            id="tag",
        ),
    ],
)
def test_static_check_names_the_broken_file(tmp_path, broken, message):
    with pytest.raises(build.StepFailed, match=message):
        build.static_check(make_project(tmp_path, {**GOOD, **broken}))


@pytest.mark.parametrize("minimum", [(3, 10), (3, 12)])
def test_find_python_finds_one_new_enough(minimum):
    # (3, 12) is found in pyenv's or uv's interpreters here: CI needs it for Django 6.1.
    found = build.find_python(minimum)
    assert found is not None
    probe = f"import sys; print(sys.version_info[:2] >= {minimum})"
    version = subprocess.run([found, "-c", probe], capture_output=True, text=True)
    assert version.stdout.strip() == "True"


def test_find_python_reports_none_when_nothing_is_new_enough():
    assert build.find_python((3, 99)) is None


def test_git_commit_leaves_env_out(tmp_path):
    project = make_project(tmp_path / "p", {".gitignore": ".env\n", ".env": "S=1\n", "a.py": ""})
    assert build.git_commit(project, "Ada", "p") == 2
    tracked = subprocess.run(["git", "ls-files"], cwd=project, capture_output=True, text=True)
    assert tracked.stdout.split() == [".gitignore", "a.py"]


def test_git_commit_refuses_before_committing_when_env_is_not_ignored(tmp_path):
    project = make_project(tmp_path / "p", {".gitignore": "", ".env": "SECRET=1\n"})
    with pytest.raises(build.StepFailed, match=".env is not in .gitignore"):
        build.git_commit(project, "Ada", "p")
    log = subprocess.run(["git", "log"], cwd=project, capture_output=True, text=True)
    assert log.returncode != 0  # no commit at all


def test_the_users_failing_commit_hooks_do_not_block_the_first_commit(tmp_path, monkeypatch):
    hooks = make_project(tmp_path / "hooks", {"pre-commit": "#!/bin/sh\nexit 1\n"})
    (hooks / "pre-commit").chmod(0o755)
    config = tmp_path / "gitconfig"
    config.write_text(f"[core]\n\thooksPath = {hooks}\n[commit]\n\tgpgsign = true\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    project = make_project(tmp_path / "p", {".gitignore": ".env\n", "a.py": ""})
    assert build.git_step(project, {"author_name": "Ada", "project_slug": "p"}) == (
        "first commit with 2 files, .env left out",
        False,
    )


def test_a_broken_git_is_a_warning_not_a_lost_project(tmp_path, monkeypatch):
    config = tmp_path / "gitconfig"
    config.write_text("[user]\n\temail = a@example.com\n\tname = A\n[core]\n\tfsmonitor = 1\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_INDEX_FILE", str(tmp_path / "no-such-dir" / "index"))
    project = make_project(tmp_path / "p", {".gitignore": ".env\n", "a.py": ""})
    detail, warning = build.git_step(project, {"author_name": "Ada", "project_slug": "p"})
    assert warning and detail.startswith("repository created, first commit failed:")


def test_clean_env_drops_what_would_mislead_the_checks(monkeypatch):
    for name in (
        "DATABASE_URL",
        "DATABASE_URL_UNPOOLED",
        "PGHOST",
        "DJANGO_SETTINGS_MODULE",
        "DJANGO_DEBUG",
        "NEON_SCALE_TO_ZERO_SECONDS",
        "UV_PROJECT_ENVIRONMENT",
        "VIRTUAL_ENV",
        "PYTHONDONTWRITEBYTECODE",
    ):
        monkeypatch.setenv(name, "x")
    monkeypatch.setenv("UV_CACHE_DIR", "/kept")
    env = build.clean_env(DATABASE_URL="")
    assert env["DATABASE_URL"] == "" and env["UV_CACHE_DIR"] == "/kept"
    assert not {"PGHOST", "DJANGO_DEBUG", "VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT"} & set(env)


def test_without_uv_the_install_falls_back_to_pip(monkeypatch):
    monkeypatch.setattr(build, "find_uv", lambda: None)
    assert build.choose_installer("uv") == ("pip", "uv not found: pip install uv for faster bakes")
    monkeypatch.setattr(build, "find_uv", lambda: "/usr/bin/uv")
    assert build.choose_installer("uv") == ("uv", "")
    assert build.choose_installer("pip") == ("pip", "")


def test_uvx_tells_us_where_uv_is(monkeypatch):
    monkeypatch.setenv("UV", "/opt/uv/bin/uv")
    assert build.find_uv() == "/opt/uv/bin/uv"


@pytest.mark.parametrize(
    ("shell_folder", "expected"),
    [
        ("/work", "my_app"),
        ("/", "work/my_app"),
        ("/elsewhere", "/work/my_app"),
        (None, "/work/my_app"),
    ],
)
def test_cd_path_is_relative_to_the_users_shell_when_inside_it(monkeypatch, shell_folder, expected):
    if shell_folder is None:
        monkeypatch.delenv("PWD", raising=False)
    else:
        monkeypatch.setenv("PWD", shell_folder)
    assert build.shown_path(Path("/work/my_app")) == expected


def test_next_steps_say_what_to_run(tmp_path, monkeypatch):
    monkeypatch.setenv("PWD", str(tmp_path))
    text = build.next_steps(tmp_path / "my_app", "uv", pooled="")
    assert "cd my_app" in text and ".env" in text and "runserver" in text and "pytest" in text
    assert "uv sync" in build.next_steps(tmp_path / "my_app", "none", pooled="x")


def test_static_check_drops_bytecode_copied_from_the_template(tmp_path):
    project = make_project(tmp_path, {**GOOD, "app/__pycache__/views.cpython-311.pyc": "x"})
    build.static_check(project)
    assert not (project / "app" / "__pycache__").exists()


def test_installed_versions_reads_the_venv_files(tmp_path):
    venv = tmp_path / ".venv"
    (venv / "lib" / "python3.12" / "site-packages" / "django-6.1.3.dist-info").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\nversion_info = 3.12.1\n")
    assert build.installed_versions(venv) == "Django 6.1.3 on Python 3.12.1"


def test_required_python_comes_from_pyproject(tmp_path):
    project = make_project(tmp_path, {"pyproject.toml": '[project]\nrequires-python = ">=3.12"\n'})
    assert build.required_python(project) == (3, 12)
