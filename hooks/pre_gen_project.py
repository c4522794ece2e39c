"""Check the answers before cookiecutter writes a file, so a typo never leaves a half-made project.

Cookiecutter renders this script with the answers, password included, into a temporary file
that it never deletes: the first thing the script does is delete itself. It also takes the
password out of cookiecutter's replay file. The checks themselves live in answers.py.
"""

import json
import os
import sys

os.unlink(__file__)
sys.dont_write_bytecode = True  # keep __pycache__ out of the template
sys.path.insert(0, r"{{ template_dir }}/hooks")

import answers  # noqa: E402

answers.scrub_replay(answers.replay_file(r"{{ template_dir }}"))
try:
    # The answers arrive as JSON in a raw triple-quoted string: no character in them can end it.
    answers.check_answers(json.loads(r"""{{ cookiecutter | tojson }}"""))
except answers.AnswerError as error:
    sys.exit(f"Error: {error}")
