from django.apps import AppConfig


class StatusConfig(AppConfig):
    name = "status"

    def ready(self):
        from config import neon_checks  # noqa: F401  (registers `check --tag neon`)
