"""Unit tests of hooks/build.py, the post-gen steps, on small projects made in tmp_path."""

import io
import subprocess
import sys

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


def test_find_python_finds_this_interpreter_or_a_newer_one():
    found = build.find_python(sys.version_info[:2])
    assert found is not None
    version = subprocess.run(
        [found, "-c", "import sys; print(sys.version_info[:2] >= (3, 10))"],
        capture_output=True,
        text=True,
    )
    assert version.stdout.strip() == "True"


def test_find_python_reports_none_when_nothing_is_new_enough():
    assert build.find_python((3, 99)) is None


def test_git_commit_leaves_env_out(tmp_path):
    project = make_project(
        tmp_path / "p", {".gitignore": ".env\n", ".env": "SECRET=1\n", "a.py": ""}
    )
    assert build.git_commit(project, "Ada", "p") == 2
    tracked = subprocess.run(["git", "ls-files"], cwd=project, capture_output=True, text=True)
    assert tracked.stdout.split() == [".gitignore", "a.py"]


def test_git_commit_refuses_a_commit_that_holds_env(tmp_path):
    project = make_project(tmp_path / "p", {".gitignore": "", ".env": "SECRET=1\n"})
    with pytest.raises(build.StepFailed, match=".env was committed"):
        build.git_commit(project, "Ada", "p")


def test_next_steps_say_what_to_run(tmp_path):
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
