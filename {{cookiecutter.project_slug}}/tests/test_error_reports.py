"""Error reports hide what Django hides by name, and settings that hold a connection string."""

from django.views.debug import SafeExceptionReporterFilter

from config.error_reports import MaskingReporterFilter


def test_settings_are_hidden_by_name_as_django_hides_them_and_more():
    ours, djangos = MaskingReporterFilter(), SafeExceptionReporterFilter()
    for name in ("OAUTH_CLIENT", "API_KEY", "SIGNING_SECRET", "AUTH_USER_MODEL", "TIME_ZONE"):
        assert ours.cleanse_setting(name, "value") == djangos.cleanse_setting(name, "value")
    for name in ("DATABASE_URL", "SENTRY_DSN", "REPORTS_CONNINFO"):
        assert ours.cleanse_setting(name, "value") == ours.cleansed_substitute
