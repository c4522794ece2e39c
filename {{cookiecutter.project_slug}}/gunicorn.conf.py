"""gunicorn's settings, read from this folder by `gunicorn config.wsgi` (Procfile, Dockerfile).

Each can be overridden without editing this file: gunicorn also reads GUNICORN_CMD_ARGS,
e.g. GUNICORN_CMD_ARGS="--timeout 60".
"""

import os


def default_workers():
    """2 × cores + 1, gunicorn's rule of thumb, capped: memory runs out before cores do."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return min(2 * (cores or 1) + 1, 8)


# Platforms say which port to listen on in PORT; in a container, every interface.
bind = [f"0.0.0.0:{os.environ.get('PORT', '8000')}"]
# Heroku-style platforms set WEB_CONCURRENCY to what the machine's memory allows.
workers = int(os.environ.get("WEB_CONCURRENCY") or default_workers())

# A request may wait for a cold compute: connect retries for 5 s, a 10 s connect timeout, then
# the query; 30 s leaves room for the page itself.
timeout = 30
# Heroku and Kubernetes allow 30 s between SIGTERM and SIGKILL: requests under way finish first.
graceful_timeout = 25

# Which proxies may say the request came over HTTPS (X-Forwarded-Proto). gunicorn reads
# FORWARDED_ALLOW_IPS itself; set it to the platform's proxy addresses, or * when nothing but
# the proxy can reach this server.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# gunicorn 27 opens a control socket in $HOME/.gunicorn/, which the image's user has not (and a
# read-only root filesystem would refuse): an ERROR line at every start. Nothing here uses it.
control_socket_disable = True

# Logs to the console, where the platform collects them, one line per event in the format of
# Django's (config/settings.py): time, level, logger, message. The line has the time already, so
# the access log's message leaves it out.
accesslog = "-"
errorlog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"line": {"format": "{asctime} {levelname} {name}: {message}", "style": "{"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "line"}},
    "loggers": {
        name: {"handlers": ["console"], "level": "INFO", "propagate": False}
        for name in ("gunicorn.error", "gunicorn.access")
    },
}

# The workers' heartbeat files: in memory where there is /dev/shm (Docker's disk-backed /tmp can
# stall a worker long enough for gunicorn to kill it).
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"
