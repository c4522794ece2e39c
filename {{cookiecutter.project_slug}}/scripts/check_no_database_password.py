"""pre-commit hook: refuse .env files and PostgreSQL connection strings that carry a password.

Usage: check_no_database_password.py FILE...   (pre-commit passes the staged files)

Prints one line per refused file, naming it and the line, never the password; exits 1 if any.
A password shorter than MIN_PASSWORD_LENGTH counts as a stand-in (tests use `u:p@host`), and so
does a placeholder standing for the whole password (`{password}`, `<password>`, `$PGPASSWORD`,
`****`): Neon generates passwords of 16 characters (`npg_` and 12 more). A line that must keep
a long fake one says `allow-database-password`.
"""

import re
import sys
from pathlib import Path

# A connection string: postgres://, postgresql:// or SQLAlchemy's postgresql+driver://, up to the
# first blank or quote. Its password is in the user-info (user:PASSWORD@host) or a parameter.
URL = re.compile(r"postgres(?:ql)?(?:\+\w+)?://(?P<rest>[^\s'\"`]+)")
USERINFO_PASSWORD = re.compile(r"^[^/?#@:]*:(?P<password>[^/?#@]+)@")
PARAMETER_PASSWORD = re.compile(r"[?&]password=(?P<password>[^&#]+)")
# libpq's keyword form: host=… user=… password=… (a password= beside a host= or dbname=).
KEYWORD_PASSWORD = re.compile(r"\bpassword\s*=\s*(?P<password>'[^']*'|[^\s'\"]+)")
KEYWORD_CONNINFO = re.compile(r"\b(?:host|hostaddr|dbname)\s*=")
# What documentation and code put where a password goes; a real password is none of these.
PLACEHOLDER = re.compile(
    r"\{[^}]*\}|<[^>]*>|\$\{?\w+\}?|%\(\w+\)s|\*+|\.\.\.|x+|password|pass|pwd|secret|changeme",
    re.IGNORECASE,
)
MIN_PASSWORD_LENGTH = 10
ALLOW_MARK = "allow-database-password"
# .env holds this project's secrets (.envrc is direnv's); .env.example is the template for it.
ENV_FILE = re.compile(r"^\.env(?:rc|\..+)?$")
ENV_TEMPLATES = {".env.example", ".env.sample", ".env.template"}


def is_env_file(path):
    return bool(ENV_FILE.match(path.name)) and path.name not in ENV_TEMPLATES


def passwords(line):
    """The passwords written in a line's connection strings."""
    for url in URL.finditer(line):
        rest = url["rest"]
        for pattern in (USERINFO_PASSWORD, PARAMETER_PASSWORD):
            yield from (found["password"] for found in pattern.finditer(rest))
    if KEYWORD_CONNINFO.search(line):
        yield from (found["password"].strip("'") for found in KEYWORD_PASSWORD.finditer(line))


def is_real(password):
    return len(password) >= MIN_PASSWORD_LENGTH and not PLACEHOLDER.fullmatch(password)


def first_password_line(text):
    """Number of the first line with a connection string holding a real-looking password."""
    for number, line in enumerate(text.splitlines(), start=1):
        if ALLOW_MARK not in line and any(map(is_real, passwords(line))):
            return number
    return None


def problem(path):
    """One line saying why this file must not be committed, or None."""
    if is_env_file(path):
        return f"{path}: .env files hold this project's secrets and stay out of git"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:  # deleted or unreadable: nothing of it is committed
        return None
    line = first_password_line(text)
    if line is None:
        return None
    return (
        f"{path}:{line}: a PostgreSQL connection string with a password; "
        "keep it in .env (git ignores it) and read it from the environment"
    )


def main(paths):
    problems = [found for found in map(problem, map(Path, paths)) if found]
    for found in problems:
        print(found)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
