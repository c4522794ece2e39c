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
    try:
        context = {"probe": probe(), "error": None}
    except DATABASE_PROBLEMS as error:
        context = {"probe": None, "error": describe(error)}
    return render(request, "status/home.html", context)


@never_cache
def health(request):
    """For load balancers and uptime checks: 200 when the database answers, 503 when not."""
    try:
        result = probe(timeout_seconds=2)
    except DATABASE_PROBLEMS as error:
        return JsonResponse({"status": "unavailable", "error": describe(error)}, status=503)
    return JsonResponse({"status": "ok", "database": result.as_dict()})


def describe(error):
    first_line = (str(error).strip().splitlines() or [""])[0]
    return f"{type(error).__name__}: {first_line}"
