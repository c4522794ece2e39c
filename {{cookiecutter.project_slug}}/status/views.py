import logging

from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from config.neon import describe
from status.probe import DATABASE_PROBLEMS, probe

PROJECT_NAME = {{ cookiecutter.project_name | python_string }}
# The baked README's sections, listed on the home page for whoever opens it first.
README_TOPICS = [
    ("Settings", "Every environment variable, and what .env is for"),
    ("Pooled for requests, direct for everything else", "Which URL each process uses"),
    ("Scale to zero", "How connections survive a suspended compute"),
    ("Deploying", "Gunicorn, static files, HTTPS, and trying production locally"),
    ("Troubleshooting", "The errors Neon users meet, and their fixes"),
]

logger = logging.getLogger(__name__)


@never_cache
def home(request):
    """Whether the database answers; the connection's details too while debugging."""
    try:
        result = probe()
    except DATABASE_PROBLEMS as error:
        logger.warning("Home page without database: %s", describe(error))
        state, headline = "down", "No database connection."
        details = [describe(error), "Check DATABASE_URL in .env, and the README's troubleshooting."]
    else:
        state, headline = "up", "Connected to the database."
        route = "pooled, through Neon's pooler" if result.pooled else "direct"
        details = [
            f"Server: PostgreSQL {result.server_version} at {result.host}",
            f"Connection: {route}, TLS {'on' if result.tls else 'off'}",
            f"Latency: connect {result.connect_ms} ms, query round trip {result.round_trip_ms} ms",
        ]
    context = {
        "project_name": PROJECT_NAME,
        "state": state,
        "headline": headline,
        "details": details if settings.DEBUG else [],
        "debug": settings.DEBUG,
        "readme_topics": README_TOPICS,
    }
    return render(request, "status/home.html", context)


@never_cache
def health(request):
    """For load balancers and uptime checks: 200 when the database answers, 503 when not.

    Host names, versions and driver errors are for you, not for anyone who asks: they are
    included only while DEBUG is on.
    """
    try:
        result = probe()
    except DATABASE_PROBLEMS as error:
        logger.warning("Health check failed: %s", describe(error))
        body = {"status": "unavailable"}
        if settings.DEBUG:
            body["error"] = describe(error)
        return JsonResponse(body, status=503)
    body = {"status": "ok"}
    if settings.DEBUG:
        body["database"] = result.as_dict()
    return JsonResponse(body)


@never_cache
def live(request):
    """For frequent liveness probes: the process is up and its settings loaded.

    It never touches the database, so a probe every few seconds leaves Neon free to scale the
    compute to zero; /health/ is the one that asks the database.
    """
    return JsonResponse({"status": "ok"})
