"""Each bad answer stops the bake before anything is written, with one line saying what to type."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from samples import QUICK

SECRET_URL = "postgresql://u:s3cretpw@ep-a-1.us-east-2.aws.neon.tech:99999/neondb"
TEMPLATE = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"project_slug": "My App"}, "project_slug 'My App' must be a lowercase Python identifier"),
        ({"project_slug": "django"}, "project_slug 'django' would shadow the module of that name"),
        ({"project_slug": "test"}, "project_slug 'test' would shadow"),
        ({"project_slug": "import"}, "project_slug 'import' would shadow"),
        ({"project_slug": "a/b"}, "project_slug 'a/b' must be a lowercase Python identifier"),
        ({"database_url": "mysql://u:p@host/db"}, "database_url must start with postgresql://"),
        ({"database_url": "postgresql://u:p@/neondb"}, "database_url has no host"),
        ({"database_url": SECRET_URL}, "database_url has an invalid port"),
        ({"database_url": "postgresql://u:p@host"}, "database_url names no database"),
        (
            {"database_url": "postgresql://u:p@host/db?sslmode=disable"},
            "database_url asks for sslmode=disable, but Neon needs TLS",
        ),
        (
            {"database_url_unpooled": "postgresql://u:p@host/db"},
            "database_url is empty but database_url_unpooled is set",
        ),
    ],
)
def test_bad_answer_is_refused_with_one_line_and_nothing_written(
    cookies, capfd, tmp_path, answers, message
):
    result = cookies.bake(extra_context={**QUICK, **answers}, template=str(TEMPLATE))
    assert result.exit_code != 0 and result.project_path is None
    # Refused inside cookiecutter's process (local_extensions.py), before any hook or folder:
    # one line, which cookiecutter's CLI prints as it is.
    refusal = str(result.exception)
    assert refusal.startswith(f"Error: {message}") and "\n" not in refusal
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err
    (bake_folder,) = (tmp_path / "cookies").iterdir()  # pytest-cookies' folder for this bake
    assert list(bake_folder.iterdir()) == []


def test_capfd_sees_what_the_post_gen_hook_prints(cookies, capfd):
    # The hook is a separate process: pytest's capfd sees what it wrote to the terminal.
    result = cookies.bake(extra_context={**QUICK, "project_name": "Seen By Capfd"})
    assert result.exit_code == 0, result.exception
    out, _ = capfd.readouterr()
    assert out.splitlines()[0] == "Checking seen_by_capfd:"
    assert "  1 ✓ wrote .env, readable only by you" in out


def test_a_refused_bake_still_takes_the_password_out_of_the_replay_file(bake):
    baked = bake(**QUICK, database_url=SECRET_URL, project_name="Replay After Refusal")
    assert baked.exit_code != 0
    replay = json.loads(baked.replay)
    assert replay["cookiecutter"]["database_url"] == SECRET_URL.replace(":s3cretpw@", "@")


def test_the_cli_shows_the_reason_without_a_traceback(tmp_path, cookiecutter_config):
    cookiecutter = Path(sys.executable).parent / "cookiecutter"
    result = subprocess.run(
        [
            cookiecutter,
            "--no-input",
            Path(__file__).parent.parent,
            "-o",
            tmp_path,
            "project_slug=site",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "Error: project_slug 'site' would shadow the module of that name" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert list(tmp_path.iterdir()) == []
