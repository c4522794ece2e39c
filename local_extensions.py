"""What this template adds to cookiecutter itself, which imports this module from the template.

Cookiecutter imports this module into its own process (it is listed in `_extensions`) when it
first renders anything, before it saves the answers or writes a file. That makes it the one place
that can keep the database password away from everything cookiecutter itself does with answers,
whichever way the run ends. Each wrapper below covers a whole class of leak or half-made bake,
rather than one case of it:

- The replay file: cookiecutter saves every answer in `<replay_dir>/<template>.json`, world-
  readable, before it checks the output folder or runs a hook. Its `dump` is wrapped so the file
  is written without passwords and made 0600 as soon as it is written, at the path and `replay_dir`
  cookiecutter itself resolved (any config, `--config-file`, symlink, `.` or `gh:`): no later
  clean-up has to find it, and no way of ending (refusal, crash, Ctrl-C, kill -9) can skip one.
- Hooks: cookiecutter renders each hook into a temporary file it never deletes. The hooks take
  the answers from an environment variable set only while the hook runs, not from the rendered
  file, so no temporary file ever holds the password.
- The prompt for a connection string does not echo it, as psql's password prompt does not.
- User text is data: with `--no-input`, cookiecutter renders every answer as a Jinja template,
  so `{{`/`{%` in a password changed it, or failed and printed the whole context. Only the
  template's own expressions from cookiecutter.json are rendered now; answers are taken as typed.
- Anything cookiecutter prints or logs about the context (`-v`, `--debug-file`, its
  UndefinedVariableInTemplate report) is masked.
- The answers are checked before cookiecutter creates the project folder (a hook would run after
  it), and re-baking over an existing folder (`-f`) is refused: it would overwrite the user's
  files, `.env` and history.
- Ctrl-C or SIGTERM during the bake stops the hook and removes the half-made project, as
  cookiecutter does when a hook fails.
- cruft saves cookiecutter's answers in the project's `.cruft.json` after the hooks have run, and
  renders the template again from them for `cruft update`: once the post-gen hook has its copy,
  the connection strings and the bake-only choices are taken out of the answers cookiecutter
  keeps, so what is saved holds no password and renders only the files.
- `template_dir` tells the hooks where the template lives (`cookiecutter .` only says ".").
"""

import contextlib
import functools
import importlib.util
import inspect
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import cookiecutter.exceptions
import cookiecutter.generate
import cookiecutter.hooks
import cookiecutter.main
import cookiecutter.prompt
import cookiecutter.replay
from jinja2.ext import Extension

TEMPLATE_DIR = Path(__file__).resolve().parent


def _load_answers():
    # A name of its own: the cookiecutter process may import other templates' modules.
    spec = importlib.util.spec_from_file_location(
        "cookiecutter_django_neon_answers", TEMPLATE_DIR / "hooks" / "answers.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


answers = _load_answers()


class TemplateDir(Extension):
    """Adds `template_dir`, the template's absolute path, to every template and hook."""

    def __init__(self, environment):
        super().__init__(environment)
        environment.globals["template_dir"] = str(TEMPLATE_DIR)


class AnswerFilters(Extension):
    """Filters that write an answer into one kind of file, whatever characters it holds."""

    def __init__(self, environment):
        super().__init__(environment)
        environment.filters.update(
            toml_string=answers.toml_string,
            python_string=answers.python_string,
            docstring_text=answers.docstring_text,
            markdown_text=answers.markdown_text,
        )


class RefusedAnswer(cookiecutter.exceptions.FailedHookException):
    """An answer the template cannot use. Cookiecutter's CLI prints these in one line."""


class ProjectExists(cookiecutter.exceptions.OutputDirExistsException):
    """`-f` over a folder that already holds files."""


def _ours(path):
    with contextlib.suppress(OSError):
        return Path(path).resolve().is_relative_to(TEMPLATE_DIR)
    return False


def _our_environment(environment):
    """Whether a Jinja environment is this template's (another template may share the process)."""
    return environment.globals.get("template_dir") == str(TEMPLATE_DIR)


def _arguments(signature, args, kwargs):
    """A call's arguments by name, defaults included."""
    call = signature.bind(*args, **kwargs)
    call.apply_defaults()
    return call.arguments


def _wrap(owner, name, make_wrapper):
    """Replace owner.name with make_wrapper(original), once per process however often cookiecutter
    imports this module (each import wraps the original, not the previous wrapper)."""
    current = getattr(owner, name)
    original = getattr(current, "__wrapped__", current)
    setattr(owner, name, functools.wraps(original)(make_wrapper(original)))


# The replay file, written without passwords and private, where cookiecutter chose to put it.
def _dump(original):
    def dump(replay_dir, template_name, context):
        result = original(replay_dir, template_name, _replayable(context))
        with contextlib.suppress(OSError):
            os.chmod(cookiecutter.replay.get_file_name(replay_dir, template_name), 0o600)
        return result

    return dump


def _replayable(context):
    """The context without passwords, and without a connection string that cannot be read as one
    (`DATABASE_URL=…`, a conninfo line, `[` in a password): its password could not be found."""
    safe = answers.masked(context)
    for given in safe.values():  # "cookiecutter" and "_cookiecutter" (the answers as given)
        for field in answers.URL_VARIABLES if isinstance(given, dict) else ():
            value = given.get(field)
            if isinstance(value, str) and value.strip() and not answers.readable_url(value):
                given[field] = ""
    return safe


# Answers are data: only the template's own expressions are Jinja.
_TEMPLATE_EXPRESSIONS = {
    value
    for value in json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text("utf-8")).values()
    if isinstance(value, str) and ("{{" in value or "{%" in value)
}


def _render_variable(original):
    def render_variable(env, raw, cookiecutter_dict):
        if _our_environment(env) and isinstance(raw, str) and raw not in _TEMPLATE_EXPRESSIONS:
            return raw
        return original(env, raw, cookiecutter_dict)  # lists and dicts come back through here

    return render_variable


# At the prompt, a connection string (the password in it) is typed without echo.
def _read_user_variable(original):
    def read_user_variable(var_name, default_value, prompts=None, prefix=""):
        if var_name not in answers.URL_VARIABLES:
            return original(var_name, default_value, prompts, prefix)
        from rich.prompt import Prompt  # cookiecutter's own dependency

        question = (prompts or {}).get(var_name) or var_name
        return Prompt.ask(
            f"{prefix}{question}, not shown as you type or paste",
            default=default_value,
            show_default=False,
            password=True,
        )

    return read_user_variable


# Hooks get the answers from the environment, never from the file cookiecutter renders them into.
_hook_processes = []


def _tracked_popen(*args, **kwargs):
    process = subprocess.Popen(*args, **kwargs)
    _hook_processes[:] = [*(p for p in _hook_processes if p.poll() is None), process]
    return process


# Answers that steer only the bake itself, and the values that make a second render skip them.
BAKE_ONLY_ANSWERS = {
    "database_url": "",
    "database_url_unpooled": "",
    "install_with": "none",
    "check_connection": "no",
    "git_init": "no",
}


def _run_script_with_context(original):
    def run_script_with_context(script_path, cwd, context):
        if not _ours(script_path):
            return original(script_path, cwd, context)
        answers_given = context["cookiecutter"]
        os.environ[answers.ANSWERS_VARIABLE] = json.dumps(answers_given)
        # The hook has its copy now; cruft saves this very dict in .cruft.json.
        answers_given.update(
            (name, value) for name, value in BAKE_ONLY_ANSWERS.items() if name in answers_given
        )
        try:
            return original(script_path, cwd, context)
        finally:
            os.environ.pop(answers.ANSWERS_VARIABLE, None)

    return run_script_with_context


# An interrupted bake leaves nothing behind.
def _generate_files(original):
    signature = inspect.signature(original)

    def generate_files(*args, **kwargs):
        options = _arguments(signature, args, kwargs)
        if not _ours(options["repo_dir"]):
            return original(*args, **kwargs)
        context = options["context"]["cookiecutter"]
        project = Path(options["output_dir"], context["project_slug"]).absolute()
        existed = project.exists()
        try:
            with _sigterm_as_interrupt():
                return original(*args, **kwargs)
        except KeyboardInterrupt:
            _stop_hooks()
            if not existed and not options["keep_project_on_failure"]:
                shutil.rmtree(project, ignore_errors=True)
                print(f"Interrupted: removed the half-made {project}", file=sys.stderr)
            raise

    return generate_files


# The answers are checked where the project folder is made: cookiecutter's generate_files, but
# also cruft (which imports generate_files before this module loads) and `cookiecutter --replay`
# (which loads this module inside generate_files) reach this function.
def _render_and_create_dir(original):
    signature = inspect.signature(original)

    def render_and_create_dir(*args, **kwargs):
        options = _arguments(signature, args, kwargs)
        if (
            not _our_environment(options["environment"])
            or options["dirname"] != "{{cookiecutter.project_slug}}"
        ):
            return original(*args, **kwargs)  # another template, or a folder inside the project
        context = options["context"]["cookiecutter"]
        try:
            answers.check_answers(answers.resolved(context, os.environ))
        except answers.AnswerError as error:
            raise RefusedAnswer(f"Error: {error}") from None
        project = Path(options["output_dir"], context["project_slug"]).absolute()
        problem = answers.existing_project_problem(project)
        if options["overwrite_if_exists"] and problem:
            raise ProjectExists(
                f"Error: {problem}; baking over it (-f) would overwrite them, .env and git "
                "history included: bake into another folder (-o) or move it away"
            )
        return original(*args, **kwargs)

    return render_and_create_dir


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM ends the bake the way Ctrl-C does, so the same clean-up runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stop_hooks():
    """A terminal's Ctrl-C reaches the hook too; a SIGTERM to cookiecutter alone does not."""
    while _hook_processes:
        process = _hook_processes.pop()
        if process.poll() is None:
            process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)


# What cookiecutter prints or logs about the context, masked.
class MaskedLog(logging.Filter):
    def filter(self, record):
        if "hook script didn't exit successfully" in str(record.msg):
            # The hook has said why; the trace through cookiecutter's code adds nothing.
            record.exc_info = record.exc_text = None
        record.msg = answers.masked(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(answers.masked(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = answers.masked(record.args)
        return True


def _undefined_variable_init(original):
    def __init__(self, message, error, context):  # noqa: N807
        original(self, message, error, answers.masked(context))

    return __init__


# What the wrappers above replace, and the parameters they use; another cookiecutter stops the
# bake here, in one line.
_WRAPPERS = (
    (cookiecutter.main, "dump", _dump, "replay_dir template_name context"),
    (
        cookiecutter.main,
        "generate_files",
        _generate_files,
        "repo_dir context output_dir keep_project_on_failure",
    ),
    (
        cookiecutter.generate,
        "render_and_create_dir",
        _render_and_create_dir,
        "dirname context output_dir environment",
    ),
    (cookiecutter.prompt, "render_variable", _render_variable, "env raw cookiecutter_dict"),
    (
        cookiecutter.prompt,
        "read_user_variable",
        _read_user_variable,
        "var_name default_value prompts prefix",
    ),
    (
        cookiecutter.hooks,
        "run_script_with_context",
        _run_script_with_context,
        "script_path cwd context",
    ),
    (cookiecutter.exceptions.UndefinedVariableInTemplate, "__init__", _undefined_variable_init, ""),
)


def _check_cookiecutter():
    for owner, name, _, parameters in _WRAPPERS:
        function = getattr(owner, name, None)
        found = set(inspect.signature(function).parameters) if callable(function) else set()
        if not set(parameters.split()) <= found:
            # cookiecutter reports an ImportError from an extension as one line, no traceback.
            raise ImportError(
                f"this template needs cookiecutter 2.6 or newer, not "
                f"{getattr(cookiecutter, '__version__', '?')} ({owner.__name__}.{name} differs): "
                "run it with python3 -m uv tool run cookiecutter"
            )


def _install():
    _check_cookiecutter()
    for owner, name, make_wrapper, _ in _WRAPPERS:
        _wrap(owner, name, make_wrapper)
    cookiecutter.hooks.subprocess = SimpleNamespace(Popen=_tracked_popen)
    for name in ("cookiecutter", "main", "generate", "prompt", "hooks", "replay", "utils"):
        logger = logging.getLogger(name if name == "cookiecutter" else f"cookiecutter.{name}")
        logger.filters = [f for f in logger.filters if type(f).__name__ != "MaskedLog"]
        logger.addFilter(MaskedLog())


_install()
