from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from status.probe import probe

# What can go wrong on the way to the database: unset, unreachable, suspended, timed out.
DATABASE_PROBLEMS = (DatabaseError, ImproperlyConfigured)


@never_cache
def home(request):
    """Whether the database answers; the connection's details too while debugging."""
    try:
        result = probe()
    except DATABASE_PROBLEMS as error:
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
        "state": state,
        "headline": headline,
        "details": "\n".join(details) if settings.DEBUG else "",
    }
    return render(request, "status/home.html", context)


@never_cache
def health(request):
    """For load balancers and uptime checks: 200 when the database answers, 503 when not.

    Host names, versions and driver errors are for you, not for anyone who asks: they are
    included only while DEBUG is on.
    """
    try:
        result = probe(timeout_seconds=2)
    except DATABASE_PROBLEMS as error:
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


def describe(error):
    first_line = (str(error).strip().splitlines() or [""])[0]
    return f"{type(error).__name__}: {first_line}"
