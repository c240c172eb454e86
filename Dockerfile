# connbot's image: slim, runs as a user without privileges, checks its own health.
# The same entrypoint as the Procfile: `web` (default), `worker`, `release`, or any connbot command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CONNBOT_DATA_DIR=/data \
    PORT=8080

# Optional extras, e.g. `docker build --build-arg EXTRAS=otel .` for OpenTelemetry tracing.
ARG EXTRAS=""

WORKDIR /app
COPY . .
RUN pip install ".${EXTRAS:+[$EXTRAS]}" \
    && install -m 0755 deploy/entrypoint.sh /usr/local/bin/connbot-entrypoint \
    && useradd --system --uid 10001 --home-dir /data --create-home connbot

USER connbot
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8080'), timeout=4)"]
ENTRYPOINT ["connbot-entrypoint"]
CMD ["web"]
