#!/usr/bin/env bash
# Build stand-ins for the public base images from Debian packages, on a host that reaches
# Debian's apt mirror and PyPI but no image registry:
#   actlab-standin/debian:bookworm   debootstrap --variant=minbase, with Python, PostgreSQL
#                                    and Redis packages, `docker import`ed
#   actlab-standin/python:3.11-torch CPU torch from a local wheelhouse (stands in for pytorch/pytorch)
#   actlab-standin/postgres:15       honours POSTGRES_USER/POSTGRES_PASSWORD/POSTGRES_DB (for postgres:16)
#   actlab-standin/redis:7.0         Debian's redis-server (for redis:7)
# An image whose label org.actlab.standin matches this directory's content hash is reused,
# so a second run on the same machine builds nothing. Prints the images as KEY=VALUE lines
# for .env (BASE_IMAGE, POSTGRES_IMAGE, REDIS_IMAGE); --env-file FILE writes them there too.
# Needs root, debootstrap and a running Docker engine. Builds use the classic builder
# (DOCKER_BUILDKIT=0): nothing is pulled, and nothing inside a build reaches the network.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
env_file=""
if [ "${1:-}" = "--env-file" ]; then env_file=$2; fi

suite=bookworm
cache=${ACTLAB_STANDIN_CACHE:-/var/cache/actlab-standins}
torch_spec=${ACTLAB_STANDIN_TORCH:-torch==2.13.0}
# The machine's own Debian mirror (deb822 or one-line sources), else Debian's default.
mirror=${DEBIAN_MIRROR:-$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}
mirror=${mirror:-$(awk '$1 == "deb" && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)}
mirror=${mirror:-http://deb.debian.org/debian}
# Installed by debootstrap itself; the servers go in afterwards with their services disabled.
base_packages=python3,python3-pip,python3-venv,python-is-python3,ca-certificates
server_packages="postgresql-15 redis-server"

# The root file system (and the imported base) depend on the package lists alone; the three
# images on everything in this directory too.
root_hash=$(echo "$suite $base_packages $server_packages" | sha256sum | cut -c1-12)
hash=$( (cd "$here" && find . -type f ! -path './python/wheels/*' -print0 | sort -z | xargs -0 sha256sum; \
         echo "$suite $base_packages $server_packages $torch_spec") | sha256sum | cut -c1-12)
mkdir -p "$cache"
export DOCKER_BUILDKIT=0

fresh() {  # fresh IMAGE [HASH]: the image exists and was built from this very input
  [ "$(docker image inspect -f '{{index .Config.Labels "org.actlab.standin"}}' "$1" 2>/dev/null)" = "${2:-$hash}" ]
}

step() { echo "[standins] $(date -u +%T) $*" >&2; }

build_rootfs() {
  local tarball=$cache/rootfs-$root_hash.tar root
  if [ -s "$tarball" ]; then echo "$tarball"; return; fi
  root=$(mktemp -d "$cache/root.XXXXXX")
  trap 'umount "$root/proc" 2>/dev/null || true; rm -rf "$root"' RETURN
  step "debootstrap --variant=minbase $suite from $mirror"
  debootstrap --variant=minbase --include="$base_packages" "$suite" "$root" "$mirror" >&2
  # No service starts inside the chroot (policy-rc.d), and no cluster is created at
  # install time: the postgres image's entrypoint runs initdb on its volume.
  printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
  chmod +x "$root/usr/sbin/policy-rc.d"
  mkdir -p "$root/etc/postgresql-common/createcluster.d"
  echo "create_main_cluster = false" > "$root/etc/postgresql-common/createcluster.d/actlab.conf"
  mount -t proc proc "$root/proc"
  step "apt-get install $server_packages (in the chroot)"
  chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    --no-install-recommends -o Dpkg::Options::=--force-confold $server_packages >&2
  chroot "$root" apt-get clean
  umount "$root/proc"
  rm -rf "$root"/var/lib/apt/lists/* "$root"/tmp/* "$root"/var/log/*.log
  tar -C "$root" --numeric-owner -cf "$tarball.part" .
  mv "$tarball.part" "$tarball"
  echo "$tarball"
}

base=actlab-standin/debian:$suite
if ! fresh "$base" "$root_hash"; then
  tarball=$(build_rootfs)
  step "docker import $base"
  docker import --change "LABEL org.actlab.standin=$root_hash" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8' \
    --change 'CMD ["bash"]' "$tarball" "$base" >&2
fi

# CPU torch and its dependencies, downloaded on the host (pip's cache or a local wheel
# satisfies it offline); the python stand-in installs them with --no-index.
wheels=$here/python/wheels
if ! fresh actlab-standin/python:3.11-torch; then
  step "pip download $torch_spec into $wheels"
  "${PYTHON:-python3}" -m pip download -q --only-binary=:all: --python-version 3.11 \
    --platform manylinux_2_28_x86_64 -d "$wheels" "$torch_spec" >&2
fi

build() {  # build TAG DIR
  if fresh "$1"; then step "reuse $1"; return; fi
  step "docker build $1"
  docker build -q --build-arg "BASE=$base" --label "org.actlab.standin=$hash" \
    --build-arg "TORCH=$torch_spec" -t "$1" "$here/$2" >&2
}
build actlab-standin/python:3.11-torch python
build actlab-standin/postgres:15 postgres
build actlab-standin/redis:7.0 redis

images="BASE_IMAGE=actlab-standin/python:3.11-torch
POSTGRES_IMAGE=actlab-standin/postgres:15
REDIS_IMAGE=actlab-standin/redis:7.0"
echo "$images"
if [ -n "$env_file" ]; then echo "$images" > "$env_file"; fi
