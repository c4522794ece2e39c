"""Unit tests of hooks/answers.py: what the hooks do with the answers, no bake needed."""

import stat

import pytest
from dotenv import dotenv_values

import answers
from samples import DIRECT, ENCODED_PASSWORD, POOLED


def good_answers(**changes):
    base = {
        "project_name": "My Neon App",
        "project_slug": "my_neon_app",
        "description": "A site.",
        "author_name": "Ada",
        "database_url": POOLED,
        "database_url_unpooled": "",
    }
    return {**base, **changes}


def test_good_answers_pass():
    answers.check_answers(good_answers())
    answers.check_answers(good_answers(database_url=""))


@pytest.mark.parametrize(
    "changes",
    [
        {"project_name": 'The "Best" App', "description": "It's \\ {{ fine }} {% too %}"},
        {"author_name": "Zoë O'Brien"},
        {"database_url": f"'{POOLED}'"},
        {"database_url": f"psql '{POOLED}'\n"},
        {"database_url": f'"{POOLED}"', "database_url_unpooled": f"psql '{DIRECT}'"},
        {"database_url": POOLED.replace(f":{ENCODED_PASSWORD}@", "@") + "&password=x"},
        {"database_url": "postgresql://local@db.lan/app"},  # a server of your own may trust you
    ],
)
def test_answers_people_reasonably_type_pass(changes):
    answers.check_answers(good_answers(**changes))


def test_a_pasted_psql_line_or_quoted_url_gives_the_plain_urls():
    assert answers.database_urls(f"psql '{POOLED}'", f'"{DIRECT}"') == (POOLED, DIRECT)


def test_empty_urls_come_from_the_documented_variables():
    environ = {"NEON_DATABASE_URL": POOLED, "NEON_DATABASE_URL_UNPOOLED": DIRECT}
    resolved = answers.resolved(good_answers(database_url=""), environ)
    assert (resolved["database_url"], resolved["database_url_unpooled"]) == (POOLED, DIRECT)
    typed = answers.resolved(good_answers(), {"NEON_DATABASE_URL": "postgresql://other/db"})
    assert typed["database_url"] == POOLED  # what was typed wins


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"project_slug": "My App"}, "project_slug 'My App' must be a lowercase Python identifier"),
        ({"project_slug": "2fast"}, "must be a lowercase Python identifier"),
        ({"project_slug": "class"}, "project_slug 'class' would shadow"),
        ({"project_slug": "django"}, "project_slug 'django' would shadow"),
        ({"project_slug": "site"}, "would shadow"),
        ({"project_slug": "json"}, "would shadow"),
        ({"project_slug": "config"}, "would shadow"),
        ({"project_slug": "dj_database_url"}, "project_slug 'dj_database_url' would shadow"),
        ({"project_slug": "python_dotenv"}, "project_slug 'python_dotenv' would shadow"),
        ({"project_slug": "whitenoise"}, "project_slug 'whitenoise' would shadow"),
        ({"project_slug": "a/b"}, "project_slug 'a/b' must be a lowercase Python identifier"),
        ({"description": "two\nlines"}, "description contains a line break or control char"),
        ({"author_name": "Ada\x1b[31m"}, "author_name contains a line break or control char"),
        ({"project_name": "Tab\there"}, "project_name contains a line break or control char"),
        (
            {"database_url": POOLED + "&sslmode=require"},
            "database_url gives sslmode more than once: keep one",
        ),
        (
            {"database_url": POOLED.replace("sslmode=require", "sslmode=REQUIRE")},
            "database_url has sslmode=REQUIRE, which libpq does not know: use sslmode=require",
        ),
        (
            {"database_url": POOLED.replace("neon.tech/", "neon.tech./")},
            "database_url has a host ending in a dot: remove it",
        ),
        (
            {"database_url": POOLED.replace(".tech/", ".tech,ep-b.us-east-2.aws.neon.tech/")},
            "database_url names several hosts; Neon gives one",
        ),
        (
            {"database_url": POOLED.replace(f":{ENCODED_PASSWORD}@", "@")},
            "database_url has no password: copy the whole string from Neon's Connect dialog",
        ),
        ({"project_name": "  "}, "project_name is empty"),
        ({"database_url": "mysql://u:p@h/db"}, "database_url must start with postgresql://"),
        ({"database_url_unpooled": "postgresql://u:p@h"}, "database_url_unpooled names no"),
        ({"database_url": "", "database_url_unpooled": DIRECT}, "database_url is empty but"),
        ({"database_url_unpooled": POOLED}, "database_url_unpooled points at Neon's pooler"),
        (
            {"database_url_unpooled": DIRECT.replace("ep-cool-darkness", "ep-elsewhere")},
            "database_url_unpooled is not the direct twin of database_url",
        ),
    ],
)
def test_bad_answers_name_the_field(changes, message):
    with pytest.raises(answers.AnswerError, match=message):
        answers.check_answers(good_answers(**changes))


@pytest.mark.parametrize(
    ("pasted", "unpooled", "expected"),
    [
        pytest.param(POOLED, "", (POOLED, DIRECT), id="pooled-derives-direct"),
        pytest.param(DIRECT, "", (POOLED, DIRECT), id="direct-derives-pooled"),
        pytest.param(
            "postgresql://u:p@pgbouncer/db",
            "postgresql://u:p@x/db",
            ("postgresql://u:p@pgbouncer/db", "postgresql://u:p@x/db"),
            id="both-not-neon",
        ),
        pytest.param(DIRECT, DIRECT, (POOLED, DIRECT), id="both-direct-app-gets-pooler"),
        pytest.param(
            "postgresql://u:p@db.lan/app",
            "",
            ("postgresql://u:p@db.lan/app",) * 2,
            id="not-neon-used-for-both",
        ),
        pytest.param("", "", ("", ""), id="empty"),
    ],
)
def test_database_urls(pasted, unpooled, expected):
    assert answers.database_urls(pasted, unpooled) == expected


def test_env_file_round_trips_through_python_dotenv(tmp_path):
    url = POOLED
    values = {"DATABASE_URL": url, "DJANGO_SECRET_KEY": "it's \\ tricky", "EMPTY": ""}
    example = (
        "# a comment\nDATABASE_URL=\n# DJANGO_SECRET_KEY=keep me commented\n"
        "DJANGO_SECRET_KEY=\nEMPTY=\nKEPT=1\n"
    )
    text = answers.env_file_text(example, values)
    (tmp_path / ".env").write_text(text)
    assert dotenv_values(tmp_path / ".env") == {
        "DATABASE_URL": url,
        "DJANGO_SECRET_KEY": "it's \\ tricky",
        "EMPTY": "",
        "KEPT": "1",
    }
    assert "# DJANGO_SECRET_KEY=keep me commented" in text


def test_write_private_makes_an_owner_only_file_even_over_an_open_one(tmp_path):
    (tmp_path / "secret").write_text("old")
    (tmp_path / "secret").chmod(0o644)
    answers.write_private(tmp_path / "secret", "x")
    assert stat.S_IMODE((tmp_path / "secret").stat().st_mode) == 0o600
    assert (tmp_path / "secret").read_text() == "x"
    assert [path.name for path in tmp_path.iterdir()] == ["secret"]


def test_masked_takes_passwords_out_of_a_context_and_keeps_the_rest():
    context = {"cookiecutter": good_answers(database_url_unpooled=DIRECT), "_n": [POOLED]}
    saved = answers.masked(context)
    assert saved["cookiecutter"]["database_url"] == POOLED.replace(f":{ENCODED_PASSWORD}@", "@")
    assert saved["cookiecutter"]["database_url_unpooled"] == DIRECT.replace(
        f":{ENCODED_PASSWORD}@", "@"
    )
    assert saved["_n"] == [saved["cookiecutter"]["database_url"]]
    assert saved["cookiecutter"]["project_slug"] == "my_neon_app"
    assert context["cookiecutter"]["database_url"] == POOLED  # a copy: the bake keeps the URL
