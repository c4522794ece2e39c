"""The password reaches no file but .env and no terminal, however cookiecutter ends.

Each bake here runs the real `cookiecutter` command in a process of its own, with a home, a
temporary folder and a cookiecutter config of its own, so that afterwards every file it could
have left behind can be searched, together with everything it printed, for the password in
every form it can be written in.
"""

import json
import os
import pty
import select
import shutil
import signal
import stat
import subprocess
import sys
import termios
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from dotenv import dotenv_values

from samples import written_forms
from served_project import wait_until

pytestmark = pytest.mark.slow  # fifteen real cookiecutter runs, a few seconds each

TEMPLATE_DIR = Path(__file__).resolve().parent.parent
COOKIECUTTER = Path(sys.executable).parent / "cookiecutter"

# Special to URLs, shells, Jinja, python-dotenv, JSON, Python and HTML; and not ASCII.
PASSWORD = "p@ss:w/rd?#%& x'\"$\\{{ cookiecutter.project_slug }}{% if 1 %}${HOME}`ü€"
POOLED = (
    f"postgresql://neondb_owner:{quote(PASSWORD, safe='')}@ep-cool-darkness-a1b2c3d4-pooler"
    ".us-east-2.aws.neon.tech/neondb?sslmode=require&channel_binding=require"
)
# The same characters written into the URL as typed, where a URL allows them.
UNENCODED_PASSWORD = "x'\"$\\{{ a }}{%b%}${HOME}`ü€&;|"
UNENCODED = POOLED.replace(quote(PASSWORD, safe=""), UNENCODED_PASSWORD)
# The password as a parameter, as libpq also accepts it.
AS_PARAMETER = POOLED.replace(f":{quote(PASSWORD, safe='')}@", "@") + (
    f"&password={quote(PASSWORD, safe='')}"
)
QUICK = ["install_with=none", "check_connection=no"]


def encodings(password):
    # And a fragment long enough to be the password and nothing else, in case it is cut.
    return written_forms(password) | {password[-12:]}


def leaks(password, texts):
    forms = encodings(password)
    return sorted({f"{where}: {form!r}" for where, text in texts for form in forms if form in text})


class Machine:
    """A home, a temporary folder and an output folder of their own for one cookiecutter run."""

    def __init__(self, root):
        self.root = root
        self.home, self.tmp, self.out = root / "home", root / "tmp", root / "out"
        for folder in (self.home, self.tmp, self.out):
            folder.mkdir()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("COOKIECUTTER", "NEON_"))},
            "HOME": str(self.home),
            "TMPDIR": str(self.tmp),
            "PWD": str(self.out),
        }
        self.env.pop("XDG_CONFIG_HOME", None)

    def command(self, *args, template=TEMPLATE_DIR):
        return [str(COOKIECUTTER), "--no-input", str(template), "-o", str(self.out), *args]

    def bake(self, *args, template=TEMPLATE_DIR, cwd=None):
        result = subprocess.run(
            self.command(*args, template=template),
            capture_output=True,
            text=True,
            env=self.env,
            cwd=cwd or self.out,
            timeout=120,
        )
        return result.returncode, result.stdout + result.stderr

    def texts(self, output):
        """(where, text) for every file this run could have written, but .env, and the output."""
        found = [("output", output)]
        for base in (self.home, self.tmp, self.out):
            for path in base.rglob("*"):
                if path.is_file() and not path.is_symlink() and path.name != ".env":
                    found.append((str(path), path.read_bytes().decode("utf-8", "replace")))
        for git in self.out.rglob(".git"):  # its objects are compressed: ask git for them
            history = ["git", "-C", git.parent, "log", "--all", "-p", "--format=%B"]
            shown = subprocess.run(history, capture_output=True, text=True, check=True)
            found.append((f"{git} history", shown.stdout))
        return found

    def replays(self):
        return [path for path in self.home.rglob("*.json") if "replay" in str(path)]


@pytest.fixture
def machine(tmp_path):
    return Machine(tmp_path)


@pytest.mark.parametrize(
    "url", [POOLED, UNENCODED, AS_PARAMETER], ids=["encoded", "unencoded", "parameter"]
)
def test_a_successful_bake_keeps_the_password_in_env_only(machine, url):
    code, output = machine.bake(*QUICK, "git_init=yes", f"database_url={url}")
    assert code == 0, output
    project = machine.out / "my_neon_app"
    assert (project / ".git").is_dir()
    assert dotenv_values(project / ".env", interpolate=False)["DATABASE_URL"] == url
    password = PASSWORD if url != UNENCODED else UNENCODED_PASSWORD
    assert leaks(password, machine.texts(output)) == []
    [replay] = machine.replays()
    assert stat.S_IMODE(replay.stat().st_mode) == 0o600
    assert "ep-cool-darkness-a1b2c3d4-pooler" in replay.read_text()


def test_verbose_logs_show_the_answers_once_before_the_template_loads(machine):
    """Where the promise stops: cookiecutter -v logs the answers before any template code runs."""
    debug_log = machine.home / "debug.log"
    code, output = machine.bake(
        *QUICK, f"database_url={POOLED}", "-v", "--debug-file", str(debug_log)
    )
    assert code == 0, output
    assert "context is" in debug_log.read_text()  # the later, masked, log of the answers
    lines = [line for _, text in machine.texts(output) for line in text.splitlines()]
    leaking = [line for line in lines if leaks(PASSWORD, [("", line)])]
    assert leaking and all("Context generated is" in line for line in leaking)


def test_the_url_from_the_environment_leaves_no_trace_even_in_verbose_logs(machine):
    machine.env["NEON_DATABASE_URL"] = POOLED
    debug_log = machine.home / "debug.log"
    code, output = machine.bake(*QUICK, "-v", "--debug-file", str(debug_log))
    assert code == 0, output
    dotenv = (machine.out / "my_neon_app" / ".env").read_text()
    assert f"DATABASE_URL='{POOLED}'" in dotenv
    [replay] = machine.replays()
    assert json.loads(replay.read_text())["cookiecutter"]["database_url"] == ""
    assert leaks(PASSWORD, machine.texts(output)) == []


def test_a_refused_answer_leaves_nothing_and_no_password(machine):
    code, output = machine.bake(*QUICK, "project_slug=django", f"database_url={POOLED}")
    assert code != 0
    assert output.splitlines()[0].startswith("Error: project_slug 'django' would shadow")
    assert "Traceback" not in output
    assert list(machine.out.iterdir()) == []
    assert leaks(PASSWORD, machine.texts(output)) == []


def test_an_existing_output_folder_fails_before_any_hook_without_the_password(machine):
    (machine.out / "my_neon_app").mkdir()
    code, output = machine.bake(*QUICK, f"database_url={POOLED}")
    assert code != 0 and "already exists" in output
    assert leaks(PASSWORD, machine.texts(output)) == []
    [replay] = machine.replays()
    assert stat.S_IMODE(replay.stat().st_mode) == 0o600


def test_an_exception_inside_cookiecutter_prints_no_password(machine):
    (machine.root / "a-file").write_text("")
    command = machine.command(*QUICK, f"database_url={POOLED}")
    command[command.index("-o") + 1] = str(machine.root / "a-file" / "out")
    result = subprocess.run(command, capture_output=True, text=True, env=machine.env, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "Traceback" in output  # cookiecutter's own crash
    assert leaks(PASSWORD, machine.texts(output)) == []


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_an_interrupted_bake_removes_the_project_and_leaves_no_password(machine, how):
    # A `git` that hangs, so the bake can be interrupted in its last step, .env written.
    bin_dir = machine.root / "bin"
    bin_dir.mkdir()
    started = machine.root / "git-started"
    (bin_dir / "git").write_text(f"#!/bin/sh\necho $$ > {started}\nexec sleep 60\n")
    (bin_dir / "git").chmod(0o755)
    env = {**machine.env, "PATH": f"{bin_dir}:{machine.env['PATH']}"}
    process = subprocess.Popen(
        machine.command(*QUICK, "git_init=yes", f"database_url={POOLED}"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=machine.out,
        start_new_session=True,  # its own process group, as a terminal gives it
        # A terminal's foreground job takes Ctrl-C; a shell's background job (as CI may run
        # this suite) ignores SIGINT, and the bake would inherit that.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert started.exists(), "the bake never reached its git step"
    assert (machine.out / "my_neon_app" / ".env").is_file()
    if how == "ctrl-c":
        os.killpg(process.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
    else:
        process.terminate()  # cookiecutter alone
    output = process.communicate(timeout=30)[0].decode()
    assert process.returncode != 0
    assert "Interrupted: removed the half-made" in output
    assert not (machine.out / "my_neon_app").exists()
    assert leaks(PASSWORD, machine.texts(output)) == []
    assert not still_running(int(started.read_text()))  # the step the hook was running, too


def still_running(pid, seconds=5):
    return not wait_until(lambda: not alive(pid), seconds)


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("naming", ["relative", "dot", "symlink"])
def test_every_way_of_naming_the_template_gets_a_clean_replay_file(machine, naming):
    link = machine.home / "neon-template"
    link.symlink_to(TEMPLATE_DIR)
    template, cwd = {
        "relative": (os.path.relpath(TEMPLATE_DIR, machine.out), machine.out),
        "dot": (".", TEMPLATE_DIR),
        "symlink": (link, machine.out),
    }[naming]
    code, output = machine.bake(*QUICK, f"database_url={POOLED}", template=template, cwd=cwd)
    assert code == 0, output
    [replay] = machine.replays()
    assert stat.S_IMODE(replay.stat().st_mode) == 0o600
    assert leaks(PASSWORD, machine.texts(output)) == []


def test_a_template_cloned_with_git_as_gh_does_gets_a_clean_replay_file(machine):
    clone = machine.root / "template-repo"
    shutil.copytree(
        TEMPLATE_DIR, clone, ignore=shutil.ignore_patterns(".venv", ".git", "*cache*", "tests")
    )
    git = ["git", "-C", clone, "-c", "user.name=t", "-c", "user.email=t@t"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "template"]):
        subprocess.run([*git, *command], check=True)
    code, output = machine.bake(*QUICK, f"database_url={POOLED}", template=f"git+file://{clone}")
    assert code == 0, output
    assert (machine.home / ".cookiecutters" / "template-repo").is_dir()
    [replay] = machine.replays()
    assert replay.name == "template-repo.json"
    assert stat.S_IMODE(replay.stat().st_mode) == 0o600
    assert leaks(PASSWORD, machine.texts(output)) == []


def test_a_config_file_with_its_own_replay_dir_gets_a_clean_replay_file(machine):
    config = machine.home / "elsewhere.yaml"
    config.write_text(f"replay_dir: {machine.home / 'my-replays'}\n")
    code, output = machine.bake(*QUICK, f"database_url={POOLED}", "--config-file", str(config))
    assert code == 0, output
    [replay] = (machine.home / "my-replays").iterdir()
    assert stat.S_IMODE(replay.stat().st_mode) == 0o600
    assert leaks(PASSWORD, machine.texts(output)) == []


def test_rebaking_over_a_project_is_refused_and_keeps_it(machine):
    code, output = machine.bake(*QUICK, "git_init=no", f"database_url={POOLED}")
    assert code == 0, output
    project = machine.out / "my_neon_app"
    env_before = (project / ".env").read_text()
    (project / "config" / "settings.py").write_text("# my changes\n")
    code, output = machine.bake(*QUICK, "-f", f"database_url={POOLED}")
    assert code != 0
    assert output.splitlines()[0].startswith("Error: ")
    assert "already holds files; baking over it (-f) would overwrite them" in output
    assert (project / ".env").read_text() == env_before
    assert (project / "config" / "settings.py").read_text() == "# my changes\n"


def test_a_replayed_bake_is_checked_and_never_bakes_over_the_project(machine):
    """--replay loads the template's code only inside generate_files: the checks still run."""
    code, output = machine.bake(*QUICK, "git_init=no", f"database_url={POOLED}")
    assert code == 0, output
    project = machine.out / "my_neon_app"
    env_before = (project / ".env").read_text()
    (project / "manage.py").write_text("# my changes\n")
    for again in (["--replay", "-f"], ["--replay", "-o", str(machine.root / "elsewhere")]):
        command = [str(COOKIECUTTER), *again, str(TEMPLATE_DIR)]
        if "-o" not in again:
            command += ["-o", str(machine.out)]
        result = subprocess.run(command, capture_output=True, text=True, env=machine.env)
        output = result.stdout + result.stderr
        assert result.returncode != 0, output
        assert output.splitlines()[0].startswith("Error: database_url has no password"), output
        assert "Traceback" not in output
    assert (project / ".env").read_text() == env_before
    assert (project / "manage.py").read_text() == "# my changes\n"
    assert not (machine.root / "elsewhere" / "my_neon_app").exists()


@pytest.mark.parametrize(
    "answer",
    [
        f"DATABASE_URL={POOLED}",  # the .env line Neon's dialog also shows
        f"host=ep-x.neon.tech user=neondb_owner password={quote(PASSWORD)} dbname=neondb",
        POOLED.replace(quote(PASSWORD, safe=""), f"[{quote(PASSWORD, safe='')}"),  # an [
    ],
    ids=["env-line", "conninfo", "bracket"],
)
def test_a_connection_string_that_is_not_a_url_is_refused_in_one_line_and_kept_nowhere(
    machine, answer
):
    code, output = machine.bake(*QUICK, f"database_url={answer}")
    assert code != 0
    assert output.splitlines()[0].startswith("Error: database_url"), output
    assert "Traceback" not in output
    assert leaks(PASSWORD, machine.texts(output)) == []


def test_the_prompt_does_not_echo_the_connection_string(machine):
    """A person at a terminal answering every prompt: the pasted string is not shown."""
    answers = [
        ("Project name", ""),
        ("Folder and package name", ""),
        ("One-line description", ""),
        ("Author", ""),
        ("Neon connection string", POOLED),
        ("Direct connection string", ""),
        ("Django version", ""),
        ("Install the project", "3"),  # nothing
        ("Connect to the database once", "2"),  # no
        ("Create a git repository", "2"),  # no
    ]
    command = [str(COOKIECUTTER), str(TEMPLATE_DIR), "-o", str(machine.out)]
    pid, terminal = pty.fork()
    if pid == 0:  # the child: cookiecutter on the terminal's other end
        os.chdir(machine.out)
        os.execve(command[0], command, machine.env)
    shown = b""
    for label, answer in answers:
        shown = read_until(terminal, shown, label.encode())
        if answer == POOLED:  # paste only once the terminal stopped echoing
            echo_off = lambda: not termios.tcgetattr(terminal)[3] & termios.ECHO  # noqa: E731
            assert wait_until(echo_off), "the terminal still echoes at the connection string prompt"
        else:
            time.sleep(0.2)
        os.write(terminal, answer.encode() + b"\r")
    shown = read_until(terminal, shown, None)
    assert os.waitpid(pid, 0)[1] == 0, shown.decode(errors="replace")
    output = shown.decode(errors="replace")
    assert "not shown as you type or paste" in output
    env = dotenv_values(machine.out / "my_neon_app" / ".env", interpolate=False)
    assert env["DATABASE_URL"] == POOLED
    assert leaks(PASSWORD, machine.texts(output)) == []


def read_until(terminal, shown, wanted, seconds=60):
    """What the terminal showed so far, read until `wanted` appears (None: until it closes)."""
    start = len(shown)
    deadline = time.monotonic() + seconds
    while wanted is None or wanted not in shown[start:]:
        assert time.monotonic() < deadline, f"no {wanted!r} in {shown!r}"
        if not select.select([terminal], [], [], 0.1)[0]:
            continue
        try:
            chunk = os.read(terminal, 4096)
        except OSError:  # the other end closed
            chunk = b""
        if not chunk:
            assert wanted is None, f"closed before {wanted!r}: {shown!r}"
            return shown
        shown += chunk
    return shown


def test_a_cookiecutter_whose_internals_differ_stops_in_one_line(monkeypatch):
    """The extension wraps cookiecutter's functions: another signature must not half-work."""
    import cookiecutter.prompt

    import local_extensions

    original = cookiecutter.prompt.read_user_variable.__wrapped__

    def old_style(var_name, default_value):  # cookiecutter 2.1's
        return original(var_name, default_value)

    monkeypatch.setattr(cookiecutter.prompt, "read_user_variable", old_style)
    with pytest.raises(ImportError, match="needs cookiecutter 2.6 or newer"):
        local_extensions._check_cookiecutter()
