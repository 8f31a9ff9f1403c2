# The dev8 server's image, for the manifests beside this file (docs/kubernetes.md, "Install").
# From the repository's root:
#   docker build -f deploy/kubernetes/server.Dockerfile -t registry.example.com/dev8/server:TAG .
# It runs `dev8 server` as an unprivileged user; it needs no Docker engine (the Kubernetes
# provider talks to the API) and writes only to DEV8_SERVER_DIR and /tmp.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY requirements ./requirements
# Exactly the locked set, every file checked against its sha256, then dev8 itself alone.
RUN python3 -m venv /opt/dev8 \
    && /opt/dev8/bin/pip install --no-cache-dir --require-hashes -r requirements/lock.txt
COPY pyproject.toml README.md ./
COPY src ./src
COPY images ./images
RUN /opt/dev8/bin/pip install --no-cache-dir --no-deps --no-build-isolation .

FROM ${PYTHON_IMAGE}
COPY --from=build /opt/dev8 /opt/dev8
RUN useradd --uid 10001 --user-group --no-create-home --home-dir /tmp dev8-server
ENV PATH=/opt/dev8/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
EXPOSE 8700
ENTRYPOINT ["dev8"]
CMD ["server"]
