"""Build a baked project's image with podman, and run what it holds, without a container engine.

No image registry is reachable from these machines, so the base image is made here from Debian's
own packages (debootstrap) and cached in podman's storage under a tag that names its contents:
the first run on a machine takes about a minute longer, later runs reuse it. `podman run` does not
work here either, so `run_in_image` runs a command in the image's files through chroot, applying
the image's USER, ENV and WORKDIR itself, as a container engine would.
"""

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

# Change the version when the package list changes: a new tag makes a new base image.
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
BASE_IMAGE = "localhost/cookiecutter-django-neon-base:bookworm-python3-1"
WORK_DIR = Path("/var/tmp/cookiecutter-django-neon")
# This machine's CA bundle: the package registries are reachable only through it.
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


class CannotBuildImages(RuntimeError):
    """podman or debootstrap is missing, or we are not root; the message says which."""


def tool_path(name):
    """Where a tool is, /usr/sbin included (debootstrap lives there; PATH may not say so)."""
    return shutil.which(name, path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")


def missing_tools():
    return [tool for tool in ("podman", "debootstrap") if tool_path(tool) is None]


def podman(*args, timeout=900, **kwargs):
    """Run podman; raise with its output if it fails."""
    result = subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=timeout, **kwargs
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"podman {' '.join(args)} failed ({result.returncode}):\n"
            + (result.stdout + result.stderr)[-4000:]
        )
    return result


def ensure_base_image():
    """The local base image (Debian bookworm, python3): made once per machine, then reused."""
    if missing_tools():
        raise CannotBuildImages(f"install {' and '.join(missing_tools())} (apt-get install)")
    if os.geteuid() != 0:
        raise CannotBuildImages("debootstrap, chroot and mount need root")
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    # One maker at a time: parallel sessions on one machine would debootstrap twice.
    with open(WORK_DIR / "base.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if subprocess.run(["podman", "image", "exists", BASE_IMAGE]).returncode == 0:
            return BASE_IMAGE
        rootfs = Path(tempfile.mkdtemp(prefix="rootfs-", dir=WORK_DIR))
        try:
            made = subprocess.run(
                [
                    tool_path("debootstrap"),
                    "--variant=minbase",
                    f"--include={','.join(BASE_PACKAGES)}",
                    "bookworm",
                    str(rootfs),
                    "http://deb.debian.org/debian",
                ],
                capture_output=True,
                text=True,
                timeout=1200,
            )
            if made.returncode != 0:
                raise RuntimeError(f"debootstrap failed:\n{(made.stdout + made.stderr)[-4000:]}")
            for leftover in (rootfs / "var/cache/apt/archives").glob("*.deb"):
                leftover.unlink()
            tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
            podman("import", "-", BASE_IMAGE, stdin=tar.stdout)
            tar.wait()
        finally:
            shutil.rmtree(rootfs, ignore_errors=True)
    return BASE_IMAGE


def build(context, tag, base_image):
    """podman build the Dockerfile in `context` on `base_image`; returns the build's output."""
    ca_mount = []
    if HOST_CA_BUNDLE.is_file():
        ca_mount = ["--volume", f"{HOST_CA_BUNDLE}:/etc/ssl/certs/ca-certificates.crt:ro"]
    result = podman(
        "build",
        "--isolation=chroot",
        # Docker's format keeps HEALTHCHECK; OCI's has no field for it.
        "--format=docker",
        f"--build-arg=PYTHON_IMAGE={base_image}",
        *ca_mount,
        "--tag",
        tag,
        str(context),
    )
    return result.stdout + result.stderr


def inspect(tag):
    """What podman knows of the image: Config (User, Env, WorkingDir, Cmd), Healthcheck…"""
    return json.loads(podman("image", "inspect", tag).stdout)[0]


@contextmanager
def mounted(tag):
    """The image's files, read-write on a throwaway layer, at a host path."""
    root = Path(podman("image", "mount", tag).stdout.strip())
    try:
        yield root
    finally:
        podman("image", "unmount", tag)


def image_user(root, user):
    """(uid, gid) of the image's USER, read from the image's own /etc/passwd."""
    name, _, group = user.partition(":")
    for line in (root / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if name in (fields[0], fields[2]):
            return int(fields[2]), int(group or fields[3])
    raise LookupError(f"USER {user} is not in the image's /etc/passwd")


def run_in_image(root, config, command, env, **popen):
    """Start `command` in the image's files as a container engine would: USER, ENV, WORKDIR.

    `env` adds to the image's ENV, as `docker run -e` does. Returns the Popen.
    """
    uid, gid = image_user(root, config["User"])
    environment = dict(item.split("=", 1) for item in config.get("Env") or [])
    environment.update(env)
    workdir = config.get("WorkingDir") or "/"

    def enter():
        os.chroot(root)
        os.chdir(workdir)
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)

    return subprocess.Popen(command, env=environment, preexec_fn=enter, **popen)
