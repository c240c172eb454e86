#!/bin/sh
# The one way connbot's processes start: the Procfile and the container image both call this.
#   entrypoint.sh web       gunicorn with the app factory on 0.0.0.0:$PORT ($WEB_CONCURRENCY processes)
#   entrypoint.sh worker    the queue consumer and sweeper (`connbot worker`)
#   entrypoint.sh release   the database migrations (`connbot db upgrade`), once per release
#   entrypoint.sh ARGS...   any other `connbot` command, e.g. `runs list`
set -eu
role="${1:-web}"
[ "$#" -gt 0 ] && shift
case "$role" in
    web)
        # Bound beyond loopback, so connbot must know it (the desk then needs a login, and refuses
        # to start without a way to log in). 64 threads: a slow client holds one for at most
        # CONNBOT_BODY_SECONDS, and many of them at once leave threads for everyone else.
        export CONNBOT_HOST=0.0.0.0
        exec gunicorn --bind "0.0.0.0:${PORT:-8080}" --workers "${WEB_CONCURRENCY:-2}" --threads 64 \
            "$@" 'bot.web.app:create_app()'
        ;;
    worker) exec connbot worker "$@" ;;
    release) exec connbot db upgrade "$@" ;;
    *) exec connbot "$role" "$@" ;;
esac
