"""Unit tests of hooks/answers.py: what the hooks do with the answers, no bake needed."""

import json
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
    ("changes", "message"),
    [
        ({"project_slug": "My App"}, "project_slug 'My App' must be a lowercase Python identifier"),
        ({"project_slug": "2fast"}, "must be a lowercase Python identifier"),
        ({"project_slug": "class"}, "project_slug 'class' would shadow"),
        ({"project_slug": "django"}, "project_slug 'django' would shadow"),
        ({"project_slug": "site"}, "would shadow"),
        ({"project_slug": "json"}, "would shadow"),
        ({"project_slug": "config"}, "would shadow"),
        ({"project_name": 'The "Best" App'}, "project_name may not contain quotes"),
        ({"description": "two\nlines"}, "description may not contain"),
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


def test_scrub_replay_removes_passwords_and_keeps_the_rest(tmp_path):
    replay = tmp_path / "template.json"
    replay.write_text(json.dumps({"cookiecutter": good_answers(database_url_unpooled=DIRECT)}))
    replay.chmod(0o644)
    assert answers.scrub_replay(replay)
    saved = json.loads(replay.read_text())["cookiecutter"]
    assert saved["database_url"] == POOLED.replace(f":{ENCODED_PASSWORD}@", "@")
    assert saved["database_url_unpooled"] == DIRECT.replace(f":{ENCODED_PASSWORD}@", "@")
    assert saved["project_slug"] == "my_neon_app"
    assert stat.S_IMODE(replay.stat().st_mode) == 0o600
    assert not answers.scrub_replay(tmp_path / "missing.json")


def test_replay_file_follows_the_user_config(tmp_path, monkeypatch):
    config = tmp_path / "config.yaml"
    config.write_text(f"replay_dir: {tmp_path / 'replays'}\n")
    monkeypatch.setenv("COOKIECUTTER_CONFIG", str(config))
    assert answers.replay_file("/somewhere/cookiecutter-django-neon") == (
        tmp_path / "replays" / "cookiecutter-django-neon.json"
    )
