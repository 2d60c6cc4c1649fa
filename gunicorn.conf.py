# Picked up by `gunicorn backend.wsgi:app` run from the repository root.
from backend.gunicorn_conf import *  # noqa: F403
