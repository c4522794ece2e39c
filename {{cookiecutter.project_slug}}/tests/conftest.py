"""Database tests run on the direct host: Django creates test_<database> there, then drops it."""

import pytest
from django.conf import settings


@pytest.hookimpl(tryfirst=True)  # before pytest-django tries to make a test database of nothing
def pytest_runtest_setup(item):
    if not item.get_closest_marker("django_db"):
        return
    # Django fills an empty DATABASES with its "dummy" backend, which refuses every query.
    engine = settings.DATABASES.get("default", {}).get("ENGINE", "django.db.backends.dummy")
    if engine == "django.db.backends.dummy":
        pytest.fail("No database: set DATABASE_URL in .env (see .env.example)", pytrace=False)
