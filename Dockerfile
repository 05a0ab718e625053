# mockai as a service: `docker build -t mockai .` then `docker run -p 8000:8000 mockai`.
# Arguments after the image name are `mockai serve` options (e.g. --scenario /scenarios --watch
# --state redis://redis:6379/0 --workers 2); every option also reads its MOCKAI_* variable.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# (the build backend, setup.py and the license file: pyproject.toml names them, and setuptools
# will refuse a build whose license file is missing; MOCKAI_COMPILE stays unset here,
# as the slim image has no C compiler: the image runs pure Python)
COPY pyproject.toml README.md LICENSE setup.py ./
COPY build_backend ./build_backend
COPY mockai ./mockai
COPY pytest_plugin ./pytest_plugin
COPY scenarios ./scenarios
# The `service` extra: the Redis client (--state) and file watching (--watch). What is installed
# is this checkout (versioned by its pyproject), not a package from an index: DL3013 does not apply.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir ".[service]" \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin mockai

# Not root: a test double needs no privileges.
USER 10001
# Inside a container the server listens on every interface; publish the port to reach it.
# Admin endpoints still answer loopback clients only unless --admin-remote and --admin-token
# are given. Change the port with MOCKAI_PORT (the health check follows it), not --port.
ENV MOCKAI_HOST=0.0.0.0 \
    MOCKAI_PORT=8000
EXPOSE 8000
# `mockai health` probes /_mockai/health on MOCKAI_PORT (slim images have no curl).
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD ["mockai", "health"]
# SIGTERM (docker stop) drains in-flight streams for up to --grace seconds (default 10; keep it
# below the stop timeout), flushes cassettes and exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["mockai", "serve"]
