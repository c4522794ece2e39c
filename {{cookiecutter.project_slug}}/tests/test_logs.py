"""What the log says about a database failure: its kind and first line, never a password."""

from django.db import OperationalError

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
