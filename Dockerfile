# syntax=docker/dockerfile:1
# mlobs: the API image. Three stages:
#   builder  installs the locked runtime dependencies (no dev extra) into /app/.venv with uv;
#   models   trains the three models into /app/models (skip with --build-arg TRAIN_MODELS=0 and
#            mount trained models at /app/models instead);
#   runtime  a slim, non-root image with the venv, the source and the models.
#
#   docker build -t mlobs .                           # models baked in
#   docker build -t mlobs --build-arg TRAIN_MODELS=0 .  # models mounted at run time
#   docker run -p 8000:8000 mlobs

ARG PYTHON_IMAGE=python:3.11-slim

# ----------------------------------------------------------------------------------- builder
FROM ${PYTHON_IMAGE} AS builder

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy

RUN pip install uv

WORKDIR /app

# Dependencies first (cached while only the source changes), then the project itself.
COPY pyproject.toml uv.lock README.md LICENSE ./
RUN uv sync --frozen --no-dev --extra server --no-install-project --python /usr/local/bin/python3.11
COPY src/ ./src/
RUN uv sync --frozen --no-dev --extra server --python /usr/local/bin/python3.11

# ------------------------------------------------------------------------------------ models
FROM builder AS models

# LightGBM and XGBoost load the OpenMP runtime at import.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

# 1 (default): train the models at build time; 0: leave /app/models empty (mount it instead).
ARG TRAIN_MODELS=1
# The generated training data stays in this stage; only the models are copied on.
ENV MODEL_DIR=/app/models \
    DATA_DIR=/tmp/mlobs-data \
    PATH=/app/.venv/bin:$PATH
RUN mkdir -p /app/models \
    && if [ "$TRAIN_MODELS" = "1" ]; then mlobs train-models; fi

# ----------------------------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE} AS runtime

RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 mlobs \
    && useradd --system --uid 10001 --gid mlobs --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin mlobs

WORKDIR /app

# The venv holds an editable install pointing at /app/src: both keep their builder paths.
COPY --from=builder --chown=root:root /app/.venv /app/.venv
COPY --from=builder --chown=root:root /app/src /app/src
COPY --from=models --chown=mlobs:mlobs /app/models /app/models
# DATA_DIR holds the SQLite prediction log when DATABASE_URL is unset: writable by mlobs.
RUN mkdir -p /app/data && chown mlobs:mlobs /app/data

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MODEL_DIR=/app/models \
    DATA_DIR=/app/data \
    PATH=/app/.venv/bin:$PATH

USER mlobs

EXPOSE 8000

# slim has no curl: ask /health/live with the standard library (a non-2xx raises, exit 1).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/live', timeout=4)"]

CMD ["mlobs", "serve", "--host", "0.0.0.0", "--port", "8000"]
