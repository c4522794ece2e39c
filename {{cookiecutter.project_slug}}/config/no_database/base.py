"""The database backend while no database is configured: every use says which variable to set.

Django's own stand-in for this case (the "dummy" backend) answers every query with "supply the
ENGINE value", which names no setting a user of this project knows. Commands that need no
database (check, collectstatic, makemigrations) run as they do with it.
"""

from django.core.exceptions import ImproperlyConfigured
from django.db import OperationalError
from django.db.backends.dummy import base as dummy

MESSAGE = (
    "DATABASE_URL is not set: paste Neon's connection string into .env "
    "(see .env.example), or set it in the environment"
)


# Both kinds, because Django's commands expect one or the other when the database is missing:
# runserver skips its migration check on ImproperlyConfigured, makemigrations warns on
# OperationalError.
class DatabaseNotConfigured(ImproperlyConfigured, OperationalError):
    pass


def complain(*args, **kwargs):
    raise DatabaseNotConfigured(MESSAGE)


class DatabaseOperations(dummy.DatabaseOperations):
    quote_name = complain


class DatabaseClient(dummy.DatabaseClient):
    runshell = complain


class DatabaseIntrospection(dummy.DatabaseIntrospection):
    get_table_list = complain
    get_table_description = complain
    get_relations = complain
    get_indexes = complain


class DatabaseWrapper(dummy.DatabaseWrapper):
    vendor = "none"
    _cursor = complain
    ensure_connection = complain
    _commit = complain
    _savepoint_commit = complain
    _set_autocommit = complain
    client_class = DatabaseClient
    introspection_class = DatabaseIntrospection
    ops_class = DatabaseOperations
