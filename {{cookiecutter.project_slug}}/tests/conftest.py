"""Database tests run on the direct host: Django creates test_<database> there, then drops it."""

import pytest
from django.conf import settings


@pytest.hookimpl(tryfirst=True)  # before pytest-django tries to make a test database of nothing
def pytest_runtest_setup(item):
    if not item.get_closest_marker("django_db"):
        return
    # config/neon.py selects this backend, which refuses every query, when no URL is set.
    if settings.DATABASES["default"]["ENGINE"] == "config.no_database":
        pytest.fail("No database: set DATABASE_URL in .env (see .env.example)", pytrace=False)
