"""This project's Python in a process of its own, for what happens as a process starts: settings
read from the environment and .env, the entry points' defaults. No database is reached."""

import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
# A Neon URL settings.py can build DATABASES from.
NEON_URL = (
    "postgresql://u:p@ep-quiet-lake-a1b2c3d4-pooler.us-east-2.aws.neon.tech/neondb"
    "?sslmode=require&channel_binding=require"
)


def run_python(*args, **env):
    """`python *args` in the project folder, with a clean environment plus `env`: what settings.py
    needs with DEBUG off, as in a fresh checkout (CI), where no .env supplies it."""
    clean = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": NEON_URL,
        # Set even when empty: .env fills in only what the environment leaves unset.
        "DATABASE_URL_UNPOOLED": "",
        "DATABASE_REPLICA_URL": "",
        "DJANGO_CONN_MAX_AGE": "",
        "DJANGO_SECRET_KEY": "x" * 50,
        "DJANGO_ALLOWED_HOSTS": "example.com",  # a serving process without hosts stops at once
    }
    return subprocess.run(
        [sys.executable, *args], cwd=PROJECT, env={**clean, **env}, capture_output=True, text=True
    )
