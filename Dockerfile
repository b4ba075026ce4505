# One image for every actlab process: `actlab api`, `actlab worker`, `actlab db upgrade`.
# torch comes with the base image: by default the CUDA build of PyTorch's official image;
# on a host without a GPU (or without the NVIDIA container toolkit) the same image trains
# on the CPU. No `# syntax=` line: BuildKit would pull a frontend image for it, which an
# offline or air-gapped builder cannot.
#
#   docker compose build                                  # BASE_IMAGE from .env
#   docker build --build-arg BASE_IMAGE=registry.internal/pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime .
#
# Dependencies come from wheelhouse/ alone (pip --no-index) when it holds wheels
# (deploy/wheelhouse.sh fills it), else from the index pip is configured with.
ARG BASE_IMAGE=pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime

# --- stage 1: the dependencies, in a virtual environment that sees the base's torch ---
# This stage (and the wheelhouse copied into it) stays out of the final image.
FROM ${BASE_IMAGE} AS deps
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
# pyproject.toml alone, so that a source change reuses this stage. torch is in the base
# image's site packages and satisfies `torch>=...`, so pip keeps the base's build.
COPY pyproject.toml /tmp/build/
COPY wheelhouse /tmp/build/wheelhouse
RUN python -m venv --system-site-packages /opt/actlab/venv \
    && cd /tmp/build \
    && python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb')); print('\n'.join(p['project']['dependencies'] + p['build-system']['requires']))" > requirements.txt \
    && if ls wheelhouse/*.whl > /dev/null 2>&1; then set -- --no-index --find-links wheelhouse; else set --; fi \
    && /opt/actlab/venv/bin/python -m pip install "$@" -r requirements.txt \
    && /opt/actlab/venv/bin/python -c "import torch; print('torch', torch.__version__, 'from the base image')"

# --- stage 2: the image ---
FROM ${BASE_IMAGE}
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PATH=/opt/actlab/venv/bin:$PATH
COPY --from=deps /opt/actlab/venv /opt/actlab/venv

# Then the source, installed without dependencies (all in the venv) and without build
# isolation (setuptools is in the venv too), so this step needs no network either.
WORKDIR /opt/actlab/src
COPY pyproject.toml README.md ./
COPY activations ./activations
COPY zoo ./zoo
COPY core ./core
COPY service ./service
COPY worker ./worker
COPY actlab ./actlab
RUN python -m pip install --no-deps --no-build-isolation . \
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

# No HEALTHCHECK here: docker-compose.yml gives the API one and the other services none,
# because Compose's `up --wait` refuses a service whose image check is disabled.
ENTRYPOINT ["actlab"]
CMD ["api"]
