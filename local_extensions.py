"""What this template adds to cookiecutter itself, which imports this module from the template.

- `template_dir`: cookiecutter passes the template's location to hooks only as it was typed
  (`cookiecutter .` gives "."), renders each hook into a temporary file and runs it from the
  project being made, so a hook cannot find hooks/answers.py and hooks/build.py on its own. This
  module's own path is the answer.
- When a hook refuses an answer, it prints one line saying what to type; cookiecutter would add a
  stack trace of its own machinery after it. The filter below keeps cookiecutter's message and
  drops the trace.
"""

import logging
from pathlib import Path

from jinja2.ext import Extension

TEMPLATE_DIR = Path(__file__).resolve().parent


class TemplateDir(Extension):
    """Adds `template_dir`, the template's absolute path, to every template and hook."""

    def __init__(self, environment):
        super().__init__(environment)
        environment.globals["template_dir"] = str(TEMPLATE_DIR)


class WithoutHookTraceback(logging.Filter):
    """A failed hook has said why; the trace through cookiecutter's code adds nothing."""

    def filter(self, record):
        if "hook script didn't exit successfully" in str(record.msg):
            record.exc_info = record.exc_text = None
        return True


logging.getLogger("cookiecutter.hooks").addFilter(WithoutHookTraceback())
