"""Django's PostgreSQL backend with Neon's connection habits; see base.py."""
