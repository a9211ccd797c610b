# dispatch-replay's container path: the app (API + SSE stream) under uvicorn, for ECS on
# Fargate behind an ALB (container.yaml). docs/operations.md, "The container path".
#
#   docker build --platform linux/arm64 -t dispatch-replay .    # Fargate ARM64 (template)
#
# Both stages start from the same pinned image: the build stage's Python compiles the
# byte-code the runtime stage runs, so their versions must be equal.

# --- build: the app as lambda_build.py builds the Lambda folders (pinned wheels, only the
# shipped modules, byte-code), plus uvicorn ------------------------------------------------
FROM python:3.12.12-slim-bookworm AS build
# binutils: lambda_build.py strips debug sections from the wheels' shared objects.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends binutils \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml constraints.txt lambda_build.py ./
COPY functions/ functions/
COPY chunker/ chunker/
RUN python lambda_build.py ContainerService /app --arch "$(uname -m)"

# --- runtime: the built folder, a non-root user, nothing else -----------------------------
FROM python:3.12.12-slim-bookworm
RUN groupadd --system --gid 10001 replay \
    && useradd --system --uid 10001 --gid replay --no-create-home --shell /usr/sbin/nologin replay
COPY --from=build --chown=root:root /app /app
WORKDIR /app
# /app is read-only to the server (owned by root); byte-code is precompiled there.
ENV PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=8000 \
    POWERTOOLS_SERVICE_NAME=dispatch-replay-container
USER 10001:10001
EXPOSE 8000
# uvicorn drains on SIGTERM: streams end with `reconnect`, then the process exits (ECS
# sends SIGKILL after the task definition's stopTimeout, 30 s, above DRAIN_TIMEOUT_S).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-m", "functions.container.healthcheck"]
ENTRYPOINT ["python", "-m", "functions.container"]
