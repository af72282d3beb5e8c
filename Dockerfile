# MAGRAY server, CPU. Every RUN step is a step of scripts/docker-build-steps.sh, which the
# test suite also runs (no Docker engine is needed for that), so the image only calls what CI
# has proven. Build: docker build -t magray .   Run: docker run -p 8765:8765 magray
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MAGRAY_HOME=/data \
    MAGRAY_MODELS_DIR=/opt/magray/models \
    OMP_WAIT_POLICY=PASSIVE

RUN useradd --create-home --uid 10001 magray \
    && mkdir -p /data /opt/magray/models \
    && chown -R magray:magray /data /opt/magray

WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
COPY scripts/docker-build-steps.sh ./scripts/docker-build-steps.sh

# The optional dependencies to install; compose.yaml adds postgres (the PostgreSQL backend).
ARG EXTRAS=server
RUN scripts/docker-build-steps.sh install "$EXTRAS"
# The default models are built into the image: the container starts without the network.
RUN scripts/docker-build-steps.sh models && chown -R magray:magray /opt/magray
USER magray
RUN MAGRAY_HOME=/tmp/check scripts/docker-build-steps.sh check && rm -rf /tmp/check

VOLUME ["/data"]
EXPOSE 8765
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8765/healthz', timeout=4).status == 200 else 1)"
ENTRYPOINT ["magray", "serve", "--host", "0.0.0.0", "--port", "8765"]
