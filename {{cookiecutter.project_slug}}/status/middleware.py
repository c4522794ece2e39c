from django.urls import resolve

HEALTH_PREFIX = "/health/"


class HealthProbesMiddleware:
    """Answers every path under /health/ before any other middleware sees the request.

    Load balancers and platforms probe by the instance's IP address, which is not in
    ALLOWED_HOSTS, and over plain HTTP: the host check and the HTTPS redirect would turn every
    probe into a 400 or a 301. These views read no cookie and no host, so skipping the rest of
    the middleware costs them nothing. Listed first in MIDDLEWARE.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path_info.startswith(HEALTH_PREFIX):
            return self.get_response(request)
        match = resolve(request.path_info)  # Resolver404 becomes Django's usual 404 page
        return match.func(request, *match.args, **match.kwargs)
