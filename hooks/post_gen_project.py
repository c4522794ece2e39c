"""Write .env, then prove the baked project builds: install it, run Django's checks, connect once.

The answers were checked before cookiecutter made the project folder (local_extensions.py). They
arrive in an environment variable that exists only while this hook runs, not in this file:
cookiecutter renders each hook into a temporary file that it never deletes. The steps live in
build.py beside this file; a non-zero exit makes cookiecutter remove the half-made project.
"""

import json
import os
import signal
import sys

os.unlink(__file__)
sys.dont_write_bytecode = True  # keep __pycache__ out of the template
sys.path.insert(0, r"{{ template_dir }}/hooks")

import build  # noqa: E402

handed_over = os.environ.pop(build.answers.ANSWERS_VARIABLE, None)
if handed_over is None:
    sys.exit("Error: this hook needs cookiecutter to load the template's local_extensions.py")
answers = json.loads(handed_over)


def stop(signum, frame):
    raise KeyboardInterrupt  # SIGTERM from cookiecutter: stop the running step with it


signal.signal(signal.SIGTERM, stop)
try:
    sys.exit(build.main(answers, os.getcwd()))
except KeyboardInterrupt:
    sys.exit(130)  # cookiecutter, interrupted too, removes the half-made project
