# syntax=docker/dockerfile:1
# One image for every actlab process: `actlab api`, `actlab worker`, `actlab db upgrade`.
# The CUDA build of PyTorch comes with the base image; on a host without a GPU (or without
# the NVIDIA container toolkit) the same image trains on the CPU.
FROM pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /opt/actlab

# Dependencies first, from pyproject.toml alone, so that a source change reuses this layer.
# torch is already in the base image and satisfies `torch>=...`, so pip keeps the CUDA build.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && python -m pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# Then the source, installed without dependencies (they are all in the layer above).
COPY README.md ./
COPY activations ./activations
COPY service ./service
COPY worker ./worker
COPY actlab ./actlab
RUN python -m pip install --no-deps . \
    && actlab --help > /dev/null

# A non-root user owns the data and checkpoint directories; named volumes mounted there
# start with this ownership.
RUN groupadd --system --gid 10001 actlab \
    && useradd --system --uid 10001 --gid actlab --home-dir /var/lib/actlab --shell /usr/sbin/nologin actlab \
    && mkdir -p /var/lib/actlab/data /var/lib/actlab/checkpoints \
    && chown -R actlab:actlab /var/lib/actlab
USER actlab
WORKDIR /var/lib/actlab

# In a container the API listens on every interface; docker-compose.yml decides what is published.
ENV HOME=/var/lib/actlab \
    ACTLAB_DATA_DIR=/var/lib/actlab/data \
    ACTLAB_CHECKPOINT_DIR=/var/lib/actlab/checkpoints \
    ACTLAB_API_HOST=0.0.0.0 \
    ACTLAB_API_PORT=8000
EXPOSE 8000

# The API's liveness endpoint. Workers and the one-shot migration turn this off in
# docker-compose.yml (a solo-pool worker cannot answer while it trains).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('ACTLAB_API_PORT', '8000'), timeout=4)"]

ENTRYPOINT ["actlab"]
CMD ["api"]
