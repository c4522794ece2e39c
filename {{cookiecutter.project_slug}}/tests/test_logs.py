"""What the log says about a database failure: its kind and first line, never a password."""

from django.db import OperationalError
from fresh_process import run_python

from config.neon import describe


def test_errors_are_described_on_one_line_without_the_password():
    error = OperationalError(
        'could not use "postgresql://neondb_owner:s3cr%40t@ep-x.us-east-2.aws.neon.tech/neondb"'
        "\nDETAIL: the rest of the driver's story"
    )
    assert describe(error) == (
        'OperationalError: could not use "postgresql://neondb_owner:****@'
        'ep-x.us-east-2.aws.neon.tech/neondb"'
    )


def test_the_log_level_applies_to_djangos_own_loggers():
    script = (
        "import logging, django; django.setup(); "
        "logging.getLogger('django.server').info('request line'); "
        "logging.getLogger('django.request').warning('kept')"
    )
    result = run_python(
        "-c", script, DJANGO_SETTINGS_MODULE="config.settings", DJANGO_LOG_LEVEL="WARNING"
    )
    assert result.returncode == 0, result.stderr
    assert "kept" in result.stderr and "request line" not in result.stderr
