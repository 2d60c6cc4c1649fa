# syntax=docker/dockerfile:1
# Production image: CPU-only torch, offline models, gunicorn gthread, non-root, no build tools.
# Build: docker build -t sidebar-assistant .   (infra/deploy.sh does this through Cloud Build)

# --- build: a self-contained virtualenv --------------------------------------------------------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# The CPU wheel index keeps the image free of CUDA libraries (several GB); installed first and
# on its own so this layer survives source changes.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN pip install --index-url "$TORCH_INDEX_URL" torch==2.13.0
COPY pyproject.toml README.md ./
COPY backend ./backend
# orchestrator/ carries the router adapter (orchestrator/routing/adapters/) when one is
# trained; it ships as package data, so it is baked in with the package.
COPY orchestrator ./orchestrator
COPY agents ./agents
COPY vertex_interface ./vertex_interface
COPY store ./store
RUN pip install .
# Fail the build, not the first request, if a model would need the network at runtime.
ENV HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
RUN python -c "from vertex_interface.local_embedder import LocalEmbedder; assert LocalEmbedder().embed(['ok']).shape == (1, 384)"

# --- runtime ------------------------------------------------------------------------------------
FROM python:3.11-slim AS runtime
RUN useradd --create-home --uid 10001 --user-group --shell /usr/sbin/nologin app \
    && rm -rf /var/lib/apt/lists/* /root/.cache
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HOME=/tmp/hf \
    HOST=0.0.0.0 PORT=8080 DATA_DIR=/tmp/data
USER 10001:10001
WORKDIR /home/app
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8080') + '/healthz', timeout=2)"]
# One worker, many threads (backend/gunicorn_conf.py explains why); PORT comes from Cloud Run.
CMD ["gunicorn", "-c", "python:backend.gunicorn_conf", "backend.wsgi:app"]
