# syntax=docker/dockerfile:1
# Stackwatch in a container: config by mounted file and environment, state on a volume.
#   docker build -t stackwatch .
#   docker run -d --name stackwatch -p 127.0.0.1:9847:9847 \
#     -v stackwatch-state:/var/lib/stackwatch \
#     -v "$PWD/config.toml:/etc/stackwatch/config.toml:ro" \
#     -v "$PWD/rules:/etc/stackwatch/rules:ro" \
#     -v "$PWD/secrets:/run/secrets:ro" \
#     -e STACKWATCH_CONTENTSTACK__AUTHTOKEN_FILE=/run/secrets/authtoken \
#     stackwatch
# The HTTP API listens on every interface of the container, so it needs a token: put one in
# secrets/api-token (e.g. `openssl rand -base64 32 > secrets/api-token`); the daemon refuses
# to start on 0.0.0.0 without it. Mutating calls then need `Authorization: Bearer <token>`.
# Reload config and rules: docker kill --signal HUP stackwatch

# -- build: a wheel, so the runtime image gets no compiler and no source tree --------------
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY agent ./agent
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

# -- runtime -------------------------------------------------------------------------------
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    # listen on every interface of the container (the host decides what is published)
    STACKWATCH_AGENT__HTTP_BIND=0.0.0.0 \
    STACKWATCH_AGENT__HTTP_PORT=9847 \
    STACKWATCH_AGENT__API_TOKEN_FILE=/run/secrets/api-token \
    STACKWATCH_AGENT__STATE_PATH=/var/lib/stackwatch/stackwatch.db
RUN groupadd --system --gid 10001 stackwatch \
    && useradd --system --uid 10001 --gid stackwatch --home-dir /var/lib/stackwatch \
       --shell /usr/sbin/nologin stackwatch \
    && mkdir -p /var/lib/stackwatch /etc/stackwatch/rules \
    && chown stackwatch:stackwatch /var/lib/stackwatch
COPY --from=build /dist/*.whl /tmp/
RUN pip install --no-cache-dir /tmp/*.whl && rm /tmp/*.whl
USER stackwatch
WORKDIR /var/lib/stackwatch
VOLUME /var/lib/stackwatch
EXPOSE 9847
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os,sys,urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('STACKWATCH_AGENT__HTTP_PORT', '9847'), timeout=4).status == 200 else 1)"]
# SIGTERM (docker stop) finishes the cycle in flight and flushes the outbox; give it time.
STOPSIGNAL SIGTERM
ENTRYPOINT ["stackwatch"]
CMD ["run", "--config", "/etc/stackwatch/config.toml"]
