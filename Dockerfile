# codex-tasks, CPU only. Docker cannot run on the machines this project is developed on, so this
# file is linted in CI (hadolint) but not built there; its install step is scripts/install.sh,
# the same script `make install` runs in CI.
#   make image              (docker build -t codex-tasks .)
#   docker run --rm -v "$PWD:/work" codex-tasks run codex_ready_task_sequence.yaml

# ---- build: a virtual environment with torch's CPU build and everything else from constraints.txt
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml constraints.txt README.md ./
COPY scripts/install.sh scripts/install.sh
COPY codex_tasks codex_tasks
COPY templates templates
COPY tasks tasks
RUN scripts/install.sh /opt/venv/bin/python .

# ---- runtime: the venv, git (provenance, scratch copies), a non-root user
FROM python:3.11-slim-bookworm
# git follows the base image's Debian release (pinning its exact version breaks on every point release)
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 codex \
    && install -d -o 1000 -g 1000 /work
COPY --from=build /opt/venv /opt/venv
# the venv is root-owned and read-only to the user: the Prefect server copies its UI files elsewhere
ENV PATH=/opt/venv/bin:$PATH \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    DO_NOT_TRACK=1 \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    PREFECT_SERVER_UI_STATIC_DIRECTORY=/home/codex/.cache/prefect-ui \
    PYTHONUNBUFFERED=1
USER 1000:1000
WORKDIR /work
ENTRYPOINT ["codex-tasks"]
CMD ["--help"]
