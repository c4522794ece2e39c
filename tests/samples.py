"""Answers and connection strings (shaped like those of Neon's Connect dialog) for the template's
tests."""

import html
import json
import shlex
from urllib.parse import quote, quote_plus

# Every character that breaks naive URL, shell, .env or config-file handling.
HARD_PASSWORD = "p@ss:w/rd?#%& x'\"$\\"
ENCODED_PASSWORD = quote(HARD_PASSWORD, safe="")
POOLED = (
    f"postgresql://neondb_owner:{ENCODED_PASSWORD}@ep-cool-darkness-a1b2c3d4-pooler"
    ".us-east-2.aws.neon.tech/neondb?sslmode=require&channel_binding=require"
)
DIRECT = POOLED.replace("-pooler", "")

# A bake with nothing installed: what tests of the files alone need.
QUICK = {"install_with": "none", "git_init": "no"}
# The installed bake the CI-file tests share (the same answers: one bake for all of them).
CI_BAKE = {"project_name": "CI Check", "check_connection": "no"}

# How each kind of output writes a text out: where a password must be looked for.
ENCODERS = (
    str,
    lambda text: quote(text, safe=""),  # percent-encoded, as in a URL's user-info
    quote,
    quote_plus,  # a form or query string
    lambda text: json.dumps(text)[1:-1],
    lambda text: json.dumps(text, ensure_ascii=False)[1:-1],
    lambda text: repr(text)[1:-1],  # Python's repr, as logs and debug pages show values
    shlex.quote,
    lambda text: text.replace("\\", "\\\\").replace("'", "\\'"),  # libpq's conninfo
)


def written_forms(text):
    """`text` as each kind of output writes it, and each of those in HTML."""
    forms = {encode(text) for encode in ENCODERS}
    return forms | {html.escape(form) for form in forms}
