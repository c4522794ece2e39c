"""Shipping a baked project, run here against the Neon stand-in: the Procfile's release and web
commands, gunicorn.conf.py, the liveness probe, and the container image (marked `container`).

The image is built with podman on a Debian base made by debootstrap (tests/container_image.py)
and its files are run through chroot, read-only, as the image's user: `podman run` does not work
on these machines. A Django 5.2 bake, since Debian bookworm's python3 is 3.11.
"""

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager

import pytest

import container_image
from served_project import free_port, get

pytestmark = pytest.mark.slow

DATABASE = "app_deploy"
IMAGE = "localhost/cookiecutter-django-neon-test:deploy-5-2"
UNLOCKED_IMAGE = "localhost/cookiecutter-django-neon-test:no-lock"
EDITED_IMAGE = "localhost/cookiecutter-django-neon-test:code-edited"


@pytest.fixture(scope="module")
def project(standin_project):
    """A Django 5.2 project baked with the stand-in's URLs, on a database of its own."""
    return standin_project(DATABASE, project_name="Deploy 5.2", django_version="5.2")


def procfile(project):
    """{process type: command}, as a Procfile platform reads it."""
    lines = (project.project / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip())


def procfile_env(project, **env):
    """The project's environment with its virtualenv first on PATH, as a buildpack leaves it."""
    path = f"{project.project / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"
    production = {"DJANGO_DEBUG": "false", "DJANGO_ALLOWED_HOSTS": "127.0.0.1"}
    return project.env(PATH=path, **production, **env)


@contextmanager
def serving(start, port):
    """Start a server with start(log) and wait until `port` accepts; yield (base URL, log)."""
    with tempfile.TemporaryFile(mode="w+") as log:
        process = start(log)
        try:
            deadline = time.monotonic() + 30
            while True:
                with socket.socket() as sock:
                    if sock.connect_ex(("127.0.0.1", port)) == 0:
                        break
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    pytest.fail(f"the server did not start:\n{log.read()[-3000:]}")
                time.sleep(0.1)
            yield f"http://127.0.0.1:{port}", log
        finally:
            process.terminate()
            process.wait(timeout=30)


def plain_get(url):
    """A GET over plain HTTP with no proxy header: what a platform's health probe sends."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args):
            return None

    try:
        with urllib.request.build_opener(NoRedirect).open(url, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_procfile_release_migrates_over_the_direct_host(project, neon):
    with neon.pooler_stopped():
        result = project.run("bash", "-c", procfile(project)["release"], env=procfile_env(project))
    assert "Applying accounts.0001_initial... OK" in result.stdout


def test_procfile_web_serves_both_probes_on_port(project):
    port = free_port()

    def start(log):
        return subprocess.Popen(
            ["bash", "-c", procfile(project)["web"]],
            cwd=project.project,
            env=procfile_env(project, PORT=str(port), WEB_CONCURRENCY="2"),
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    with serving(start, port) as (base, log):
        # Probes come over plain HTTP: the HTTPS redirect spares /health/, not the rest.
        assert plain_get(f"{base}/health/") == (200, '{"status": "ok"}')
        assert plain_get(f"{base}/health/live/") == (200, '{"status": "ok"}')
        status, _ = plain_get(f"{base}/")
        assert status == 301
        assert get(f"{base}/")[0] == 200  # through the proxy (X-Forwarded-Proto: https)
        time.sleep(0.5)
        log.seek(0)
        output = log.read()
    assert f"Listening at: http://0.0.0.0:{port}" in output
    assert output.count("Booting worker") == 2
    assert '"GET /health/live/ HTTP/1.1" 200' in output  # the access log, on the console


def printed_config(project, **env):
    """gunicorn's settings as gunicorn.conf.py resolves them in `env`: {name: value}."""
    platform = ("PORT", "WEB_CONCURRENCY", "FORWARDED_ALLOW_IPS")  # only those given here
    environment = {k: v for k, v in project.env(**env).items() if k not in platform or k in env}
    result = subprocess.run(
        [project.project / ".venv" / "bin" / "gunicorn", "--print-config", "config.wsgi"],
        cwd=project.project,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    pairs = (line.split(" = ", 1) for line in result.stdout.splitlines() if " = " in line)
    return {name.strip(): value.strip() for name, value in pairs}


def test_gunicorn_conf_reads_the_platforms_variables(project):
    config = printed_config(
        project, PORT="5123", WEB_CONCURRENCY="3", FORWARDED_ALLOW_IPS="10.0.0.0/8"
    )
    assert config["bind"] == "['0.0.0.0:5123']"
    assert config["workers"] == "3"
    assert config["forwarded_allow_ips"] == "['10.0.0.0/8']"
    assert config["accesslog"] == "-"
    assert config["timeout"] == "30"


def test_gunicorn_conf_defaults(project):
    config = printed_config(project)
    cores = len(os.sched_getaffinity(0))
    assert config["bind"] == "['0.0.0.0:8000']"
    assert config["workers"] == str(min(2 * cores + 1, 8))
    assert config["forwarded_allow_ips"] == "['127.0.0.1', '::1']"
    assert config["control_socket_disable"] == "True"


def test_liveness_answers_without_the_database(project, neon):
    port = free_port()

    def start(log):
        return subprocess.Popen(
            [project.project / ".venv" / "bin" / "gunicorn", "config.wsgi"],
            cwd=project.project,
            env=procfile_env(project, PORT=str(port), WEB_CONCURRENCY="1"),
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    slug = project.project.name
    with serving(start, port) as (base, _):
        with neon.pooler_stopped():
            # Requests reach the database only through the pooler: it is down.
            assert plain_get(f"{base}/health/")[0] == 503
            backends = neon.backend_count(slug)
            answers = [plain_get(f"{base}/health/live/") for _ in range(50)]
            assert neon.backend_count(slug) == backends
        assert set(answers) == {(200, '{"status": "ok"}')}


# The container image.


@pytest.fixture(scope="module")
def image(project, base_image):
    """The project's image, built with podman on the local Debian base; its inspect data."""
    container_image.build(project.project, IMAGE, base_image)
    return container_image.inspect(IMAGE)


@pytest.fixture(scope="module")
def image_root(image):
    with container_image.mounted(IMAGE) as root:
        yield root


@pytest.mark.container
def test_the_image_runs_gunicorn_as_a_user_of_its_own(image):
    config = image["Config"]
    assert config["User"] == "10001:10001"
    assert config["WorkingDir"] == "/app"
    assert config["Cmd"] == ["gunicorn", "config.wsgi"]
    assert "/health/live/" in " ".join(image["Healthcheck"]["Test"])
    # The key collectstatic used at build time is not the running container's.
    assert not any(item.startswith("DJANGO_SECRET_KEY") for item in config["Env"])


@pytest.mark.container
def test_the_image_holds_no_secret_and_no_dev_tool(project, neon, image_root):
    app = image_root / "app"
    files = [path for path in app.rglob("*") if path.is_file() and not path.is_symlink()]
    assert not [path for path in files if path.name == ".env"]
    assert not (app / ".git").exists()
    secrets = [project.dotenv()["DJANGO_SECRET_KEY"], neon.password]
    for path in files:
        content = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in content, path
    assert (app / "staticfiles" / "admin" / "css" / "base.css").is_file()
    # Production dependencies only: no pytest, no ruff.
    site_packages = next((app / ".venv" / "lib").glob("python3*/site-packages"))
    assert (site_packages / "gunicorn").is_dir()
    assert not (site_packages / "pytest").exists() and not (site_packages / "ruff").exists()


@contextmanager
def writable_tmp(root):
    """tmpfs on /tmp and /dev/shm, as a container engine gives them; the rest stays read-only,
    as with `docker run --read-only`."""
    folders = [root / "tmp", *[path for path in [root / "dev" / "shm"] if path.is_dir()]]
    mounted = []
    try:
        for folder in folders:
            subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(folder)], check=True)
            mounted.append(folder)
        yield
    finally:
        for folder in reversed(mounted):
            subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.container
def test_the_image_migrates_and_serves_against_the_standin(project, neon, image, image_root):
    dotenv = project.dotenv()
    port = free_port()
    env = {
        "DATABASE_URL": dotenv["DATABASE_URL"],
        "DATABASE_URL_UNPOOLED": dotenv["DATABASE_URL_UNPOOLED"],
        "DJANGO_SECRET_KEY": dotenv["DJANGO_SECRET_KEY"],
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "PORT": str(port),
    }

    def in_image(command, log):
        return container_image.run_in_image(
            image_root, image["Config"], command, env, stdout=log, stderr=subprocess.STDOUT
        )

    with writable_tmp(image_root):
        with neon.pooler_stopped(), tempfile.TemporaryFile(mode="w+") as log:
            release = in_image(["python", "manage.py", "migrate", "--noinput"], log)
            assert release.wait(timeout=120) == 0, log.seek(0) or log.read()
            log.seek(0)
            output = log.read()
        # Applied here, or already by the Procfile's release step earlier in the module.
        assert "accounts.0001_initial... OK" in output or "No migrations to apply" in output
        with serving(lambda log: in_image(image["Config"]["Cmd"], log), port) as (base, log):
            assert plain_get(f"{base}/health/") == (200, '{"status": "ok"}')
            assert plain_get(f"{base}/health/live/") == (200, '{"status": "ok"}')
            status, css = get(f"{base}/static/admin/css/base.css")
            assert status == 200 and "body" in css
            healthcheck = image["Healthcheck"]["Test"]
            assert healthcheck[0] == "CMD"
            probe = in_image(healthcheck[1:], log)
            assert probe.wait(timeout=10) == 0, log.seek(0) or log.read()


@pytest.mark.container
def test_a_project_baked_without_uv_lock_builds_too(bake, base_image):
    baked = bake(install_with="none", git_init="no")
    assert not (baked.project / "uv.lock").exists()
    container_image.build(baked.project, UNLOCKED_IMAGE, base_image)
    with container_image.mounted(UNLOCKED_IMAGE) as root:
        assert (root / "app" / "uv.lock").is_file()  # resolved afresh by the build
        assert (root / "app" / "staticfiles" / "admin" / "css" / "base.css").is_file()
        assert not (root / "app" / ".env").exists()


@pytest.mark.container
def test_a_code_change_leaves_the_dependencies_layer_cached(project, image, base_image, tmp_path):
    edited = tmp_path / "edited"
    shutil.copytree(project.project, edited, ignore=shutil.ignore_patterns(".venv"))
    with open(edited / "status" / "views.py", "a") as views:
        views.write(f"\n# edited at {time.time()}\n")
    # A .python-version naming another Python than the base image's must not steer the build.
    (edited / ".python-version").write_text("3.10\n")
    steps = build_steps(container_image.build(edited, EDITED_IMAGE, base_image))
    # Each run's edit makes new layers: remove them, so that runs do not pile up images.
    made = [found for step in steps if "Using cache" not in step for found in built_ids(step)]
    try:
        dependencies = next(step for step in steps if "--no-install-project" in step)
        code = next(step for step in steps if "COPY . ." in step)
        assert "Using cache" in dependencies
        assert "Using cache" not in code
    finally:
        subprocess.run(["podman", "rmi", *reversed(made)], capture_output=True)


def build_steps(output):
    """podman build's output, one text per step (its STEP line and what it printed)."""
    return re.split(r"^(?=\[\d+/\d+\] STEP )", output, flags=re.MULTILINE)[1:]


def built_ids(step):
    return re.findall(r"^--> ([0-9a-f]{11,})$", step, flags=re.MULTILINE)
