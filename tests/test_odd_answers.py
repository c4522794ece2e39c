"""Answers a person would reasonably type are baked as typed, in every file they land in."""

import ast
import io
import os
import random
import socket
from pathlib import Path

import pytest
import tomllib
from cookiecutter.exceptions import UndefinedVariableInTemplate
from cookiecutter.main import cookiecutter
from dotenv import dotenv_values, load_dotenv

import answers
from samples import ENCODED_PASSWORD, HARD_PASSWORD, POOLED, QUICK

NAME = 'The "Best" {{ App }} \\ {% raw %}'
DESCRIPTION = 'It\'s *the* <b>shop</b> for ${HOME} \\ "quotes" and {{ braces }}'


def test_quotes_backslashes_and_braces_land_in_each_file_as_typed(bake, ruff_problems):
    baked = bake(**QUICK, project_name=NAME, project_slug="best_app", description=DESCRIPTION)
    assert baked.exit_code == 0, baked.output
    pyproject = tomllib.loads((baked.project / "pyproject.toml").read_text())
    assert pyproject["project"]["description"] == DESCRIPTION
    assert pyproject["project"]["authors"] == [{"name": "Your Name"}]
    settings = ast.parse((baked.project / "config" / "settings.py").read_text())
    assert ast.get_docstring(settings).startswith(f"Settings for {NAME}.")
    readme = (baked.project / "README.md").read_text().splitlines()
    assert readme[0] == r'# The "Best" {{ App }} \\ {% raw %}'
    assert (
        readme[2] == r"It's \*the\* \<b\>shop\</b\> for ${HOME} \\ " + '"quotes" and {{ braces }}'
    )
    assert ruff_problems(baked.project) == ""


@pytest.mark.parametrize(
    "pasted",
    [f"'{POOLED}'", f"psql '{POOLED}'", f'  "{POOLED}"\n'],
    ids=["quoted", "psql-line", "double-quoted"],
)
def test_a_pasted_connection_string_is_read_as_neon_shows_it(bake, pasted):
    baked = bake(**QUICK, database_url=pasted)
    assert baked.exit_code == 0, baked.output
    env = baked.dotenv()
    # The direct URL is derived at run time; .env holds it only when it was typed.
    assert (env["DATABASE_URL"], env["DATABASE_URL_UNPOOLED"]) == (POOLED, "")


def test_jinja_in_a_password_is_kept_as_typed(bake):
    password = "a{{ b }}c{% d %}e{#"
    url = POOLED.replace(ENCODED_PASSWORD, password.replace("#", "%23"))
    baked = bake(**QUICK, database_url=url)
    assert baked.exit_code == 0, baked.output
    assert baked.dotenv()["DATABASE_URL"] == url


def test_dotenv_quoting_round_trips_every_character():
    """Property: whatever a value holds, python-dotenv reads back exactly what was written."""
    alphabet = "\\'\"$ {}#=%@:/?&;|`!*()[]<>~\t\n\r\x00üé€😀${X}$HOME" + "abcXYZ019"
    rng = random.Random(9)
    values = [HARD_PASSWORD, "${HOME}", "\\", "'", "\\'", "a\\", "#", " x ", "$X"]
    values += ["".join(rng.choices(alphabet, k=rng.randint(1, 24))) for _ in range(500)]
    values = [value.replace("\x00", "") for value in values if value.strip("\x00")]
    example = "".join(f"V{index}=\n" for index in range(len(values)))
    text = answers.env_file_text(example, {f"V{i}": value for i, value in enumerate(values)})
    read = dotenv_values(stream=io.StringIO(text), interpolate=False)
    assert [read[f"V{i}"] for i in range(len(values))] == values


def test_the_baked_settings_read_env_literally(tmp_path, monkeypatch):
    """The settings' load_dotenv call, as baked: ${…} in a password is not expanded."""
    settings = (answers.TEMPLATE_PROJECT / "config" / "settings.py").read_text()
    assert 'load_dotenv(BASE_DIR / ".env", override=False, interpolate=False)' in settings
    (tmp_path / ".env").write_text(answers.env_file_text("P=\n", {"P": "a${HOME}b"}))
    monkeypatch.delenv("P", raising=False)
    load_dotenv(tmp_path / ".env", override=False, interpolate=False)
    assert os.environ["P"] == "a${HOME}b"


def test_cookiecutters_undefined_variable_report_carries_no_password():
    import local_extensions  # noqa: F401  (what cookiecutter imports from the template)

    context = {"cookiecutter": {"database_url": POOLED, "project_slug": "x"}}
    error = UndefinedVariableInTemplate("Unable to render", Exception("x"), context)
    assert ENCODED_PASSWORD not in repr(error.context)
    assert error.context["cookiecutter"]["database_url"] == POOLED.replace(
        f":{ENCODED_PASSWORD}@", "@"
    )
    assert context["cookiecutter"]["database_url"] == POOLED


@pytest.mark.slow
def test_pip_without_a_reachable_index_says_so(bake, monkeypatch):
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{closed}/simple")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # no extra index or wheel folder
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)
    baked = bake(install_with="pip", git_init="no", project_name="No Index")
    assert baked.exit_code != 0
    assert "✗ install with pip into .venv" in baked.output
    assert "pip could not reach a package index: check the network" in baked.output
    assert baked.project is None  # cookiecutter removed the half-made project


def test_another_template_baked_in_the_same_process_renders_as_usual(bake, tmp_path):
    assert bake(**QUICK).exit_code == 0  # this template's extension is loaded and installed
    other = tmp_path / "other"
    (other / "{{cookiecutter.b}}").mkdir(parents=True)
    (other / "cookiecutter.json").write_text('{"a": "x", "b": "{{ cookiecutter.a }}-y"}')
    project = cookiecutter(str(other), no_input=True, output_dir=str(tmp_path / "out"))
    assert Path(project).name == "x-y"
