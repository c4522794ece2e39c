"""What the hooks do with the answers: check them, derive the URLs, write .env, forget secrets.

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

# Names a project folder must not take: they would shadow what Django, Python or the baked
# project itself imports when the folder's parent is on sys.path.
RESERVED_SLUGS = (
    set(sys.stdlib_module_names)
    | {"django", "test", "tests", "site", "config", "accounts", "status", "manage"}
    | {"psycopg", "dotenv", "dj_database_url", "certifi", "gunicorn", "pytest", "ruff"}
)
# Characters that would break the Python, TOML and Markdown the answers are written into.
UNSAFE_TEXT = re.compile(r'["\\\n\r{}]')


class AnswerError(ValueError):
    """An answer the template cannot use; the message names the field and what to type."""


def check_answers(answers):
    """Raise AnswerError for the first unusable answer, in the order the prompts ask them."""
    for field in ("project_name", "description", "author_name"):
        if UNSAFE_TEXT.search(answers[field]):
            raise AnswerError(f"{field} may not contain quotes, backslashes, braces or line breaks")
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
    urls = {name: answers[name].strip() for name in ("database_url", "database_url_unpooled")}
    if urls["database_url_unpooled"] and not urls["database_url"]:
        raise AnswerError(
            "database_url is empty but database_url_unpooled is set: paste the connection "
            "string as database_url"
        )
    try:
        if urls["database_url"]:
            neon.check(urls["database_url"], "database_url")
        if urls["database_url_unpooled"]:
            neon.check_direct(
                urls["database_url_unpooled"],
                urls["database_url"],
                "database_url_unpooled",
                "database_url",
            )
    except neon.NeonConfigError as error:
        raise AnswerError(str(error)) from None


def database_urls(url, unpooled=""):
    """(pooled URL for the app, direct URL for migrations) from what the user pasted."""
    url, unpooled = url.strip(), unpooled.strip()
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


def replay_file(repo_dir):
    """Where cookiecutter saved these answers (its replay file), per the user's config."""
    from cookiecutter.config import get_user_config

    replay_dir = get_user_config().get("replay_dir")
    return Path(replay_dir) / f"{Path(repo_dir).name}.json"


def scrub_replay(path):
    """Take the passwords out of cookiecutter's replay file, which it leaves world-readable."""
    path = Path(path)
    if not path.is_file():
        return False
    replay = json.loads(path.read_text(encoding="utf-8"))
    for answers in replay.values():
        if isinstance(answers, dict):
            for name in ("database_url", "database_url_unpooled"):
                if isinstance(answers.get(name), str):
                    answers[name] = neon.without_password(answers[name])
    write_private(path, json.dumps(replay, indent=2))
    return True
