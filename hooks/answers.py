"""What the template does with the answers: check them, derive the URLs, write .env, mask the
password wherever text is shown (and the Jinja filters that write answers into files).

The URL rules are not written here: they come from the template's own config/neon.py, the
module the baked project runs with, loaded by file path because its folder name is a template.
"""

import importlib.util
import json
import keyword
import os
import re
import sys
import tempfile
from pathlib import Path

TEMPLATE_PROJECT = Path(__file__).resolve().parent.parent / "{{cookiecutter.project_slug}}"


def _load_neon():
    spec = importlib.util.spec_from_file_location("neon", TEMPLATE_PROJECT / "config" / "neon.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


neon = _load_neon()


def _dependency_names():
    """The baked project's dependencies, as distributions (normalized) name them."""
    pyproject = (TEMPLATE_PROJECT / "pyproject.toml").read_text(encoding="utf-8")
    found = re.findall(r'^\s*"([A-Za-z0-9][A-Za-z0-9._-]*)', pyproject, re.MULTILINE)
    return {re.sub(r"[-_.]+", "_", name).lower() for name in found}


# Names a project folder must not take: they would shadow what Django, Python or the baked
# project itself imports when the folder's parent is on sys.path, or clash with a dependency's
# distribution name (the slug is the project's own distribution name).
RESERVED_SLUGS = (
    set(sys.stdlib_module_names)
    | {"test", "tests", "config", "accounts", "status", "manage"}
    # Import and distribution names that differ from the requirement names in pyproject.toml.
    | {"dotenv", "psycopg_binary"}
    | _dependency_names()
)
# Control characters (line breaks, tabs, escapes) have no place in a one-line answer.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Variables that hold the connection strings when the answers leave them empty: the way to bake
# without the password passing through cookiecutter (its prompts, replay file, logs).
# The hooks read the answers from this variable; it exists only while a hook runs.
ANSWERS_VARIABLE = "COOKIECUTTER_DJANGO_NEON_ANSWERS"
URL_VARIABLES = {
    "database_url": "NEON_DATABASE_URL",
    "database_url_unpooled": "NEON_DATABASE_URL_UNPOOLED",
}


class AnswerError(ValueError):
    """An answer the template cannot use; the message names the field and what to type."""


def check_answers(answers):
    """Raise AnswerError for the first unusable answer, in the order the prompts ask them."""
    for field in ("project_name", "description", "author_name"):
        if CONTROL_CHARACTERS.search(answers[field]):
            raise AnswerError(f"{field} contains a line break or control character: type one line")
    if not answers["project_name"].strip():
        raise AnswerError("project_name is empty: type a name such as My Neon App")
    slug = answers["project_slug"]
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", slug):
        raise AnswerError(
            f"project_slug '{slug}' must be a lowercase Python identifier, e.g. my_neon_app"
        )
    if keyword.iskeyword(slug) or slug in RESERVED_SLUGS:
        raise AnswerError(
            f"project_slug '{slug}' would shadow the module of that name; pick another, "
            f"e.g. {slug}_site"
        )
    urls = {name: neon.pasted(answers[name]) for name in ("database_url", "database_url_unpooled")}
    if urls["database_url_unpooled"] and not urls["database_url"]:
        raise AnswerError(
            "database_url is empty but database_url_unpooled is set: paste the connection "
            "string as database_url"
        )
    try:
        if urls["database_url"]:
            neon.checked_urls(
                urls["database_url"],
                urls["database_url_unpooled"],
                "database_url",
                "database_url_unpooled",
            )
    except neon.NeonConfigError as error:
        raise AnswerError(str(error)) from None


def database_urls(url, unpooled=""):
    """(pooled URL for the app, direct URL for migrations) from what the user pasted."""
    url, unpooled = neon.pasted(url), neon.pasted(unpooled)
    if not url:
        return "", ""
    return neon.pooled(url), unpooled or neon.direct(url)


def env_file_text(example, values):
    """.env.example with the given variables filled in; every comment and default kept."""
    lines = []
    for line in example.splitlines():
        name = line.partition("=")[0]
        if name in values and not line.startswith("#"):
            line = f"{name}={_dotenv_quote(values[name])}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def _dotenv_quote(value):
    # Single quotes: python-dotenv takes the text literally, with \\ and \' as the only escapes.
    if not value:
        return ""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def write_private(path, text):
    """Write a file only its owner can read, without a moment where it is readable by others."""
    path = Path(path)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # 0600
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)
    os.replace(temporary, path)


def resolved(answers, environ):
    """The answers, with each empty connection string taken from its NEON_* variable if set."""
    answers = dict(answers)
    for field, variable in URL_VARIABLES.items():
        if not answers.get(field, "").strip() and environ.get(variable, "").strip():
            answers[field] = environ[variable]
            _SECRETS.update(neon.passwords(neon.pasted(environ[variable])))
    return answers


def existing_project_problem(folder):
    """Why baking into `folder` would destroy the user's work, or "" if it would not."""
    folder = Path(folder)
    if folder.is_dir() and any(folder.iterdir()):
        return f"{folder} already holds files"
    return ""


# Every password seen in a connection string, so that text which merely contains one (a log
# line already formatted) can be masked too.
_SECRETS = set()


def masked(value):
    """A copy of `value` (a context, a log argument) with every database password taken out."""
    if isinstance(value, dict):
        return type(value)((key, masked(item)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(masked(item) for item in value)
    if not isinstance(value, str):
        return value
    if value.strip().lower().startswith(("postgres://", "postgresql://", "psql ", "'", '"')):
        url = neon.pasted(value)
        if url.lower().startswith(("postgres://", "postgresql://")) and not readable_url(url):
            return ""  # a connection string whose password cannot be found: keep none of it
        found = neon.passwords(url)
        if found:
            _SECRETS.update(found)
            return neon.without_password(url)
    return mask(value, password_texts_of(_SECRETS))


def password_texts_of(passwords):
    """Every form the passwords can be printed in, longest first (so none is half-masked)."""
    forms = {form for password in passwords for form in neon.password_forms(password)}
    return sorted(forms, key=len, reverse=True)


def mask(text, forms):
    for form in forms:
        text = text.replace(form, "****")
    return text


def readable_url(value):
    """Whether `value` reads as a postgres:// URL whose password can be found."""
    try:
        return neon.urlsplit(neon.pasted(value)).scheme in ("postgres", "postgresql")
    except ValueError:  # "[" or "]" outside an IPv6 address
        return False


def toml_string(text):
    """`text` as a TOML basic string, quotes included (JSON's escapes are TOML's)."""
    return json.dumps(text, ensure_ascii=False)


def python_string(text):
    """`text` as a Python string literal, quoted the way ruff's formatter would quote it."""
    escaped = text.replace("\\", "\\\\")
    if text.count("'") < text.count('"'):
        return "'" + escaped.replace("'", "\\'") + "'"
    return '"' + escaped.replace('"', '\\"') + '"'


def docstring_text(text):
    """`text` safe inside a triple-quoted Python docstring."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def markdown_text(text):
    """`text` shown as typed in Markdown, not read as emphasis, links or HTML."""
    return re.sub(r"([\\`*_\[\]<>])", r"\\\1", text)
