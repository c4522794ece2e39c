"""Write .env, then prove the baked project builds: install it, run Django's checks, connect once.

Cookiecutter renders this script with the answers, password included, into a temporary file
that it never deletes: the first thing the script does is delete itself. The steps live in
build.py beside this file; a non-zero exit makes cookiecutter remove the half-made project.
"""

import json
import os
import sys

os.unlink(__file__)
sys.dont_write_bytecode = True  # keep __pycache__ out of the template
sys.path.insert(0, r"{{ template_dir }}/hooks")

import build  # noqa: E402

# The answers arrive as JSON in a raw triple-quoted string: no character in them can end it.
# answers_for_the_build (local_extensions.py) is tojson that then takes the connection strings
# out of cookiecutter's own copy of the answers, which cruft saves in .cruft.json.
sys.exit(build.main(json.loads(r"""{{ cookiecutter | answers_for_the_build }}"""), os.getcwd()))
