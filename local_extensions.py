"""Tells the hooks where this template lives.

Cookiecutter passes the template's location to hooks only as it was typed (`cookiecutter .`
gives "."), renders each hook into a temporary file and runs it from the project being made, so a
hook cannot find hooks/answers.py and hooks/build.py on its own. Cookiecutter imports this module
from the template folder (see "_extensions" in cookiecutter.json), so its own path is the answer.
"""

from pathlib import Path

from jinja2.ext import Extension

TEMPLATE_DIR = Path(__file__).resolve().parent


class TemplateDir(Extension):
    """Adds `template_dir`, the template's absolute path, to every template and hook."""

    def __init__(self, environment):
        super().__init__(environment)
        environment.globals["template_dir"] = str(TEMPLATE_DIR)
