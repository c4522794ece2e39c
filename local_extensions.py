"""What this template adds to cookiecutter itself, which imports this module from the template.

- `template_dir`: cookiecutter passes the template's location to hooks only as it was typed
  (`cookiecutter .` gives "."), renders each hook into a temporary file and runs it from the
  project being made, so a hook cannot find hooks/answers.py and hooks/build.py on its own. This
  module's own path is the answer.
- When a hook refuses an answer, it prints one line saying what to type; cookiecutter would add a
  stack trace of its own machinery after it. The filter below keeps cookiecutter's message and
  drops the trace.
- `answers_for_the_build`: the post-gen hook gets the answers from it, and cookiecutter's own copy
  of them loses the connection strings then (see AnswersForTheBuild).
"""

import logging
from pathlib import Path

from jinja2 import pass_eval_context
from jinja2.ext import Extension
from jinja2.filters import do_tojson

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


# Answers that steer only the bake itself, and the values that make a second render skip them.
BAKE_ONLY_ANSWERS = {
    "database_url": "",
    "database_url_unpooled": "",
    "install_with": "none",
    "check_connection": "no",
    "git_init": "no",
}


class AnswersForTheBuild(Extension):
    """Adds the `answers_for_the_build` filter: the answers as JSON, handed over once.

    cruft saves cookiecutter's answers in the project's .cruft.json, after the hooks have run, and
    renders the template again from them for `cruft update` and `cruft diff`. Cookiecutter renders
    each hook with the very dict it keeps, in this process, so the moment the post-gen hook has its
    copy is the one place to take the connection strings (the password) out of it, whatever way
    the template was run. What is saved then renders only the files, which is all an update needs:
    no second install, connection check or git repository, and no password.
    """

    def __init__(self, environment):
        super().__init__(environment)
        environment.filters["answers_for_the_build"] = answers_for_the_build


@pass_eval_context
def answers_for_the_build(eval_context, answers):
    handed_over = do_tojson(eval_context, answers)
    answers.update((name, value) for name, value in BAKE_ONLY_ANSWERS.items() if name in answers)
    return handed_over
