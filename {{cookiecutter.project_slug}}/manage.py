#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    if sys.argv[1:2] == ["runserver"]:
        # The development server handles requests like wsgi.py does, so it uses the pooler too.
        os.environ.setdefault("DJANGO_USE_POOLER", "true")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as error:
        if "--traceback" in sys.argv:
            raise
        # A setting to change, named by the message: a stack trace would only hide it.
        sys.exit(f"Error: {error}")


if __name__ == "__main__":
    main()
