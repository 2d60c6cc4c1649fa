"""gunicorn settings: one process, many threads (Flask-SocketIO threading mode + simple-websocket).

One worker per process because Socket.IO's long-polling fallback needs every request of a
client on the same process; scale out with more instances behind sticky sessions instead.
"""

import os

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8080')}"
workers = 1
worker_class = "gthread"
# Each open WebSocket holds a thread for its lifetime.
threads = int(os.environ.get("THREADS", "200"))
worker_connections = threads + 100  # gthread refuses keep-alive when connections <= threads
timeout = 0  # WebSockets are long-lived; Cloud Run enforces its own request timeout
# Cloud Run sends SIGKILL 10 s after SIGTERM: finish (and run worker_exit) well before that.
graceful_timeout = 8
keepalive = 75
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# gunicorn >= 26 opens a control socket at one fixed path by default; several local
# instances would fight over it and nothing here uses it.
control_socket_disable = True


def worker_exit(server, worker):
    # Let peers see this instance's in-flight turns as orphaned immediately.
    try:
        from backend.wsgi import app

        app.extensions["sidebar"].shutdown()
    except Exception:  # best effort on the way out
        pass
