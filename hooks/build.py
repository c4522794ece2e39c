"""The post-gen build check: leave the user a project that is installed and verified, or nothing.

Each step prints one line: ✓ (done), ! (a warning, the bake goes on) or ✗, what it did and how
long it took. A failing step prints the command and its last lines and raises StepFailed; the
hook then exits non-zero and cookiecutter deletes the half-made project (unless it was run with
--keep-project-on-failure). The database password never reaches the terminal: every line
printed goes through Report.mask.
"""

import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import answers

# A template tag that cookiecutter did not render; Django's own {% %} tags do not name it.
LEFTOVER_TAG = re.compile(r"\{[{%][^}]*cookiecutter")
CHECK_TIMEOUT_SECONDS = 5


class StepFailed(Exception):
    """A step that failed; the message says which command and shows its last lines."""


class Report:
    def __init__(self, secret_texts=(), out=None):
        self.secret_texts = sorted({text for text in secret_texts if text}, key=len, reverse=True)
        self.out = out or sys.stdout
        self.count = 0

    def mask(self, text):
        return answers.mask(text, self.secret_texts)

    def say(self, text=""):
        try:
            print(self.mask(text), file=self.out, flush=True)
        except BrokenPipeError:  # `cookiecutter … | head`: stop printing, keep baking
            self.out = open(os.devnull, "w")  # noqa: SIM115 (lives as long as the report)

    @contextmanager
    def step(self, title):
        """Time a step and print its line; the body may set .title, .detail and .warning."""
        self.count += 1
        line = StepLine(title)
        started = time.perf_counter()
        try:
            yield line
        except StepFailed as failure:
            self.say(f"{self.count:>3} ✗ {line.title}  ({time.perf_counter() - started:.2f} s)")
            self.say("\n".join(f"      {text}" for text in str(failure).splitlines()))
            raise
        mark = "!" if line.warning else "✓"
        detail = f": {line.detail}" if line.detail else ""
        self.say(
            f"{self.count:>3} {mark} {line.title}{detail}  ({time.perf_counter() - started:.2f} s)"
        )


class StepLine:
    def __init__(self, title):
        self.title, self.detail, self.warning = title, "", False


def run(command, cwd, env=None, timeout=600, shown=None):
    """Run a command; raise StepFailed with its last output lines if it fails.

    `shown` is how the failure names the command, when the command itself reads badly.
    """
    try:
        result = subprocess.run(
            [str(part) for part in command],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        output = str(error)
    else:
        if result.returncode == 0:
            return result
        output = result.stdout + result.stderr
    tail = output.strip().splitlines()[-15:]
    raise StepFailed("\n".join([f"$ {shown or shlex.join(map(str, command))}", *tail]))


# Variables of the user's shell that would make the bake check something other than the project
# as baked: another virtualenv or settings module, a database other than the one in .env.
FOREIGN_VARIABLES = (
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "UV_PROJECT_ENVIRONMENT",
    "DJANGO_SETTINGS_MODULE",
)
FOREIGN_PREFIXES = ("DATABASE_URL", "PG", "DJANGO_", "NEON_")


def clean_env(**overrides):
    """The environment for the project's own processes: the user's, less what would mislead."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in FOREIGN_VARIABLES and not name.startswith(FOREIGN_PREFIXES)
    }
    env.update(overrides)
    return env


def write_env_file(project, context):
    pooled, _ = answers.database_urls(context["database_url"], context["database_url_unpooled"])
    values = {
        "DATABASE_URL": pooled,
        # Derived at runtime when left empty, so that pointing DATABASE_URL at another branch
        # later moves both: only a direct URL the user typed is written.
        "DATABASE_URL_UNPOOLED": answers.neon.pasted(context["database_url_unpooled"]),
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
    }
    try:
        example = (project / ".env.example").read_text(encoding="utf-8")
        answers.write_private(project / ".env", answers.env_file_text(example, values))
    except OSError as error:
        raise StepFailed(f"{error.strerror}: {error.filename}") from None
    return pooled


def static_check(project):
    """Every .py compiles, pyproject.toml parses, no template tag was left unrendered."""
    # Bytecode that running the template's tests left in it was copied along: drop it.
    for cache in list(project.rglob("__pycache__")):
        shutil.rmtree(cache)
    files = [p for p in project.rglob("*") if p.is_file() and ".venv" not in p.parts]
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        if LEFTOVER_TAG.search(text):
            raise StepFailed(f"{path.relative_to(project)} has an unrendered template tag")
        if path.suffix == ".py":
            try:
                compile(text, str(path), "exec")
            except SyntaxError as error:
                raise StepFailed(
                    f"{path.relative_to(project)}:{error.lineno}: {error.msg}"
                ) from None
    try:
        import tomllib
    except ImportError:  # Python 3.10: uv and pip parse it in the next step anyway.
        return len(files)
    try:
        tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise StepFailed(f"pyproject.toml: {error}") from None
    return len(files)


def find_python(minimum):
    """An interpreter at least `minimum`: this one, uv's, one on PATH, or one pyenv installed."""
    if sys.version_info[:2] >= tuple(minimum):
        return sys.executable
    probe = f"import sys; sys.exit(sys.version_info[:2] < {tuple(minimum)})"
    for candidate in _python_candidates(minimum):
        if subprocess.run([candidate, "-c", probe], capture_output=True).returncode == 0:
            return str(candidate)
    return None


def _python_candidates(minimum):
    uv = find_uv()
    if uv:
        wanted = f">={minimum[0]}.{minimum[1]}"
        found = subprocess.run(
            [uv, "python", "find", "--no-python-downloads", wanted], capture_output=True, text=True
        )
        yield from found.stdout.split()
    for minor in range(20, minimum[1] - 1, -1):
        found = shutil.which(f"python3.{minor}")
        if found:
            yield found
    pyenv_versions = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    yield from sorted(pyenv_versions.glob("3.*/bin/python3"), key=_version_key, reverse=True)


def _version_key(python):
    # .../versions/3.12.1/bin/python3 -> (3, 12, 1): "3.9" must sort below "3.12".
    return tuple(int(part) for part in python.parts[-3].split(".") if part.isdigit())


def find_uv():
    """uv's path: the one running us (uvx sets UV), one on PATH, or the uv package's."""
    found = os.environ.get("UV") or shutil.which("uv")
    if found:
        return found
    try:
        from uv import find_uv_bin
    except ImportError:
        return None
    return find_uv_bin()


# The project's interpreter, as every command here runs it: from the project folder.
VENV_PYTHON = ".venv/bin/python"


def choose_installer(tool):
    """(tool to use, why it differs): without uv, pip does the job more slowly."""
    if tool == "uv" and find_uv() is None:
        return "pip", "uv not found: pip install uv for faster bakes"
    return tool, ""


def install(project, tool, python):
    """Create .venv and install the project with its dev tools; says which Django and Python."""
    env = clean_env()
    if tool == "uv":
        run([find_uv(), "sync", "--quiet", "--python", python], cwd=project, env=env)
    else:
        try:
            run([python, "-m", "venv", "--upgrade-deps", ".venv"], cwd=project, env=env)
            pip = [VENV_PYTHON, "-m", "pip", "install", "--quiet"]
            run([*pip, ".", "--group", "dev"], cwd=project, env=env)
        except StepFailed as failure:
            if INDEX_UNREACHABLE.search(str(failure)):
                raise StepFailed(f"{NO_INDEX}\n{failure}") from None
            raise
        remove_build_leftovers(project)
    return installed_versions(project / ".venv")


# What pip says when it reached no package index: nothing found at all, or (venv's
# --upgrade-deps fails quietly) a pip too old for --group left in .venv.
INDEX_UNREACHABLE = re.compile(
    r"from versions: none|no such option: --group|NewConnectionError|Connection refused"
    r"|Failed to establish|Temporary failure in name resolution|ProxyError"
)
NO_INDEX = (
    "pip could not reach a package index: check the network, your proxy or PIP_INDEX_URL, "
    "or bake with install_with=none and install later"
)


def remove_build_leftovers(project):
    """pip builds the project to install its dependencies and leaves the build in the folder."""
    for leftover in [project / "build", *project.glob("*.egg-info")]:
        shutil.rmtree(leftover, ignore_errors=True)


def write_python_version(project):
    """.python-version names the Python of .venv, so that uv and pyenv keep using that one.

    Any other name would make `uv run` rebuild .venv with another Python. Without a .venv it
    names the lowest Python the project allows (its requires-python).
    """
    venv = project / ".venv"
    version = venv_python_version(venv) if (venv / "pyvenv.cfg").is_file() else None
    if version:
        major_minor = ".".join(version.split(".")[:2])
    else:
        major_minor = "{}.{}".format(*required_python(project))
    (project / ".python-version").write_text(f"{major_minor}\n", encoding="utf-8")


def venv_python_version(venv):
    """'3.12.1', read from the virtualenv's pyvenv.cfg; None if it does not say."""
    config = (venv / "pyvenv.cfg").read_text(encoding="utf-8")
    found = re.search(r"^version(?:_info)?\s*=\s*([\d.]+)", config, re.MULTILINE)
    return found[1] if found else None


def installed_versions(venv):
    """'Django 5.2.19 on Python 3.12.1', read from the files the install left."""
    python = venv_python_version(venv)
    django = next(venv.glob("lib/python*/site-packages/django-*.dist-info"), None)
    django_version = (
        django.name.removeprefix("django-").removesuffix(".dist-info") if django else "?"
    )
    return f"Django {django_version} on Python {python or '?'}"


# `check` and `makemigrations --check` in one process, so Django starts once for both.
CHECK_AND_MAKEMIGRATIONS = """
import django
from django.core.management import call_command

django.setup()
call_command("check", fail_level="WARNING")
call_command("makemigrations", check=True, dry_run=True)
"""


def django_checks(project):
    """check, makemigrations --check and check --deploy; none of them touches the database.

    Two processes side by side, one per settings mode. They compile Django in memory: writing
    its bytecode to disk would cost more than it saves here.
    """
    offline = clean_env(DATABASE_URL="", PGHOST="", PYTHONDONTWRITEBYTECODE="1")
    production = {**offline, "DJANGO_DEBUG": "false", "DJANGO_ALLOWED_HOSTS": "example.com"}
    development = {
        "command": [VENV_PYTHON, "-c", CHECK_AND_MAKEMIGRATIONS],
        "env": {**offline, "DJANGO_SETTINGS_MODULE": "config.settings"},
        "shown": f"{VENV_PYTHON} manage.py check --fail-level WARNING, then "
        "makemigrations --check --dry-run",
    }
    deploy = {
        "command": [VENV_PYTHON, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        "env": production,
    }

    def failure(check):
        try:
            run(cwd=project, **check)
        except StepFailed as failed:
            return str(failed)
        return None

    with ThreadPoolExecutor() as pool:
        failures = [text for text in pool.map(failure, [development, deploy]) if text]
    if failures:
        raise StepFailed("\n".join(failures))


def live_check(project):
    """Connect once over the direct host; returns dbcheck's one-line report."""
    command = [VENV_PYTHON, "manage.py", "dbcheck", "--timeout", CHECK_TIMEOUT_SECONDS]
    result = run(command, cwd=project, env=clean_env(), timeout=CHECK_TIMEOUT_SECONDS * 3)
    return result.stdout.strip()


def git_commit(project, author_name, slug):
    """git init and a first commit that leaves .env out; returns how many files it holds."""
    env = clean_env()
    run(["git", "init", "--quiet"], cwd=project, env=env)
    if subprocess.run(["git", "check-ignore", "--quiet", ".env"], cwd=project).returncode != 0:
        raise StepFailed(".env is not in .gitignore: a commit would publish the password")
    identity = []
    configured = subprocess.run(["git", "config", "user.email"], cwd=project, capture_output=True)
    if configured.returncode != 0:
        identity = ["-c", f"user.name={author_name}", "-c", f"user.email={slug}@localhost"]
    # The user's global commit hooks and signing are for their own commits, not this one.
    commit = ["commit", "--quiet", "--no-verify", "--no-gpg-sign"]
    try:
        run(["git", "add", "--all"], cwd=project, env=env)
        run(
            ["git", *identity, *commit, "--message", "Start from cookiecutter-django-neon"],
            cwd=project,
            env=env,
        )
    except StepFailed as failure:
        raise GitCommitFailed(str(failure).splitlines()[-1]) from None
    tracked = run(["git", "ls-files"], cwd=project, env=env).stdout.split()
    if ".env" in tracked:
        raise StepFailed(".env was committed: check .gitignore")
    return len(tracked)


class GitCommitFailed(Exception):
    """git could not commit (a broken git setup); the project itself is fine."""


def password_texts(*urls):
    """Each password in the URLs, in every form it can be printed in, for Report to mask."""
    found = {p for url in urls for p in answers.neon.passwords(answers.neon.pasted(url))}
    return answers.password_texts_of(found)


def main(context, project):
    """Run every step for the project in `project`; returns the hook's exit status."""
    project = Path(project)
    context = answers.resolved(context, os.environ)
    report = Report(password_texts(context["database_url"], context["database_url_unpooled"]))
    tool = context["install_with"]
    report.say(f"Checking {project.name}:")
    try:
        with report.step("wrote .env, readable only by you") as line:
            pooled = write_env_file(project, context)
            if not pooled:
                line.detail = "DATABASE_URL is empty: paste your Neon connection string there"
        with report.step("static check") as line:
            count = static_check(project)
            line.detail = f"{count} files: Python compiles, pyproject.toml parses, no leftover tags"
        if tool != "none":
            install_and_check(report, project, context, tool, pooled)
        elif pooled and context["check_connection"] != "no":
            with report.step("connect over the direct host") as line:
                line.detail, line.warning = "skipped: nothing installed (install_with=none)", True
        write_python_version(project)
        if context["git_init"] == "yes":
            with report.step("git repository") as line:
                line.detail, line.warning = git_step(project, context)
    except StepFailed:
        report.say()
        report.say(
            "The bake failed at the step marked ✗: cookiecutter removes the half-made project "
            "(unless run with --keep-project-on-failure, which keeps it for a look)."
        )
        return 1
    report.say()
    report.say(next_steps(project, tool, pooled))
    return 0


def required_python(project):
    """(major, minor) from the project's requires-python, which cookiecutter.json sets."""
    pyproject = (project / "pyproject.toml").read_text(encoding="utf-8")
    found = re.search(r'^requires-python\s*=\s*">=(\d+)\.(\d+)', pyproject, re.MULTILINE)
    return (int(found[1]), int(found[2])) if found else (3, 10)


def install_and_check(report, project, context, tool, pooled):
    minimum = required_python(project)
    with report.step(f"install with {tool} into .venv") as line:
        python = find_python(minimum)
        if python is None:
            raise StepFailed(
                f"Django {context['django_version']} needs Python {minimum[0]}.{minimum[1]} "
                "or newer and none was found: install one (uv python install, pyenv) and bake again"
            )
        tool, why = choose_installer(tool)
        if why:
            line.title, line.warning = f"install with {tool} into .venv ({why})", True
        line.detail = install(project, tool, python)
    with report.step("Django checks") as line:
        django_checks(project)
        line.detail = "check, makemigrations --check, check --deploy: no issues"
    if pooled and context["check_connection"] != "no":
        with report.step("connect over the direct host") as line:
            try:
                line.detail = live_check(project)
            except StepFailed as failure:
                if context["check_connection"] == "strict":
                    raise
                line.warning = True
                reason = str(failure).splitlines()[-1].removeprefix("CommandError: ")
                line.detail = f"failed, bake kept: {reason}"


def git_step(project, context):
    """(what happened, whether it is a warning); only a .env that git would take is fatal."""
    if shutil.which("git") is None:
        return "git not found, skipped", True
    inside = subprocess.run(
        ["git", "rev-parse", "--is-inside-work-tree"], cwd=project.parent, capture_output=True
    )
    if inside.returncode == 0:
        return "already inside a git repository, skipped", True
    try:
        count = git_commit(project, context["author_name"], context["project_slug"])
    except GitCommitFailed as failure:
        return f"repository created, first commit failed: {failure}", True
    return f"first commit with {count} files, .env left out", False


def next_steps(project, tool, pooled):
    python = VENV_PYTHON if tool != "none" else "uv run python"
    steps = [f"  cd {shlex.quote(shown_path(project))}"]
    if tool == "none":
        steps.append(
            "  uv sync      # or: python -m venv --upgrade-deps .venv && "
            ".venv/bin/pip install . --group dev"
        )
    if not pooled:
        steps.append("  $EDITOR .env                             # paste DATABASE_URL from Neon")
    steps += [
        f"  {python} manage.py migrate       # over the direct host",
        f"  {python} manage.py runserver     # then open http://127.0.0.1:8000/",
        f"  {python} -m pytest",
    ]
    return "Next steps:\n" + "\n".join(steps)


def shown_path(project):
    """The project's path as the user should type it: relative to their shell's folder if inside."""
    shell_folder = os.environ.get("PWD")
    if shell_folder:
        relative = os.path.relpath(project, shell_folder)
        if not relative.startswith(".."):
            return relative
    return str(project)
