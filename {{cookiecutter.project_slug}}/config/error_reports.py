"""Error reports that never show the database password: Django's debug page and 500 e-mails.

Django hides settings whose names look secret (DATABASES' PASSWORD among them), but not what
else holds the password: the local variables of psycopg's frames (the conninfo string it
connects with), the request's environment (runserver copies os.environ into it, and .env put
DATABASE_URL there), or an exception's message. Rather than list names, these classes mask by
value: any variable, setting or line of the finished report that contains one of the configured
passwords, in any form it can be written in (URL-encoded, escaped, HTML), is hidden.
"""

import os
import re

from django.conf import settings
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

from config import neon

MASK = "********************"


def password_forms():
    """Every written form of every database password this process is configured with."""
    passwords = set()
    for database in settings.DATABASES.values():
        passwords.add(database.get("PASSWORD") or "")
        passwords.add(database.get("OPTIONS", {}).get("password") or "")
    for name in neon.URL_VARIABLES:
        passwords |= neon.passwords(neon.pasted(os.environ.get(name, "")))
    passwords.add(os.environ.get("PGPASSWORD", ""))
    forms = {form for password in passwords - {""} for form in neon.password_forms(password)}
    return sorted(forms, key=len, reverse=True)


def _shows_a_password(value, forms):
    try:
        texts = (repr(value), str(value))
    except Exception:  # a broken __repr__ must not break the error page
        return False
    return any(form in text for form in forms for text in texts)


class MaskingReporterFilter(SafeExceptionReporterFilter):
    """Hides settings, request variables and frame variables that contain a password."""

    # Django's names, and those of settings that hold a whole connection string.
    hidden_settings = re.compile(
        SafeExceptionReporterFilter.hidden_settings.pattern + "|DATABASE_URL|DSN|CONNINFO",
        flags=re.I,
    )

    def cleanse_setting(self, key, value):
        value = super().cleanse_setting(key, value)
        return self.cleansed_substitute if _shows_a_password(value, password_forms()) else value

    def get_traceback_frame_variables(self, request, tb_frame):
        forms = password_forms()
        return [
            (name, self.cleansed_substitute if _shows_a_password(value, forms) else value)
            for name, value in super().get_traceback_frame_variables(request, tb_frame)
        ]


class MaskingExceptionReporter(ExceptionReporter):
    """The finished report, masked once more: exception messages, template sources, anything."""

    def get_traceback_html(self):
        return _masked(super().get_traceback_html())

    def get_traceback_text(self):
        return _masked(super().get_traceback_text())


def _masked(text):
    for form in password_forms():
        text = text.replace(form, MASK)
    return text
