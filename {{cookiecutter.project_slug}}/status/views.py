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
    """The connection's details while debugging; in production only whether it works."""
    try:
        context = {"probe": probe(), "error": None}
    except DATABASE_PROBLEMS as error:
        context = {"probe": None, "error": describe(error)}
    return render(request, "status/home.html", {**context, "details": settings.DEBUG})


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


def describe(error):
    first_line = (str(error).strip().splitlines() or [""])[0]
    return f"{type(error).__name__}: {first_line}"
