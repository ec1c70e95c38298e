# Switchboard: one image for `switchboard serve` (see README, Operations). Built from the lock only:
# requirements/*.txt pin every package with its hash, and nothing else is installed.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app
RUN useradd --system --uid 10001 --home-dir /app --no-create-home switchboard

# Dependencies first (their layer is reused until the lock changes): exactly the lock, hashes checked.
COPY requirements/build.txt requirements/run.txt requirements/
RUN pip install --require-hashes --no-deps -r requirements/build.txt -r requirements/run.txt

# Then the project itself, without resolving anything. Editable: the app serves `web/` from the source tree.
COPY pyproject.toml README.md ./
COPY channels channels
COPY inbox inbox
COPY web web
RUN pip install --no-deps --no-build-isolation -e . \
    && mkdir -p /app/var \
    && chown switchboard /app/var

USER switchboard
# State (the SQLite database when no PostgreSQL is configured, attachments, the generated secret key) lives
# under /app/var: mount a volume there. A config file is read from /app/config.toml when mounted.
VOLUME ["/app/var"]
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4).status == 200 else 1)"]
CMD ["sh", "-c", "switchboard migrate && exec switchboard serve --host 0.0.0.0"]
