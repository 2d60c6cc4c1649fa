# syntax=docker/dockerfile:1
# Production image: CPU-only torch, gunicorn gthread, non-root. Hardened further in the deploy work.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# The CPU wheel index keeps the image free of CUDA libraries (several GB).
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN pip install --index-url "$TORCH_INDEX_URL" torch==2.13.0
COPY pyproject.toml README.md ./
COPY backend ./backend
COPY orchestrator ./orchestrator
COPY agents ./agents
COPY vertex_interface ./vertex_interface
COPY store ./store
RUN pip install .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 app
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
    HOST=0.0.0.0 PORT=8080 DATA_DIR=/tmp/data
USER app
WORKDIR /home/app
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,os; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\",\"8080\")}/healthz', timeout=2)"
CMD ["gunicorn", "-c", "python:backend.gunicorn_conf", "backend.wsgi:app"]
