#!/usr/bin/env bash
# Fill wheelhouse/ with wheels of every runtime dependency of actlab except torch (the
# base image brings its own build) and of setuptools (to install actlab itself), for the
# image's Python and platform, on a machine that reaches PyPI or a mirror (pip's usual
# settings: PIP_INDEX_URL, pip.conf). The Dockerfile then installs from wheelhouse/ alone
# (--no-index), so the build itself needs no network: carry the repository with its
# wheelhouse/ to an air-gapped box and build there.
#   deploy/wheelhouse.sh            Python 3.11 (pytorch/pytorch:2.5.1 and the stand-in), x86_64
#   WHEELHOUSE_PYTHON=3.12 WHEELHOUSE_ARCH=aarch64 deploy/wheelhouse.sh
# A second run with the same requirements and target does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
# The host's Python runs pip download and reads pyproject.toml (3.11+, for tomllib).
host_python=${PYTHON:-python3}
python=${WHEELHOUSE_PYTHON:-3.11}
arch=${WHEELHOUSE_ARCH:-x86_64}
# glibc 2.28 and older: pytorch/pytorch:2.5.1 is Ubuntu 22.04 (2.35), the stand-in Debian 12 (2.36).
platforms=""
for tag in manylinux_2_28 manylinux_2_27 manylinux_2_26 manylinux_2_24 manylinux_2_17 manylinux2014; do
  platforms="$platforms --platform ${tag}_$arch"
done
requirements=$("$host_python" -c '
import re, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))
deps = project["project"]["dependencies"] + project["build-system"]["requires"]
print("\n".join(d for d in deps if re.split(r"[^A-Za-z0-9_.-]", d)[0].lower() != "torch"))')
# The versions CI last passed with (requirements/dev.lock, its hashes dropped: pip takes none
# in a constraints file), so the image runs what the suite tested, and a host that has just
# installed the lock (CI) finds every wheel in pip's cache instead of downloading it again.
constraints=wheelhouse/constraints.txt
sed -n 's/^\([A-Za-z0-9_.-]*==[^ ]*\).*/\1/p' requirements/dev.lock > "$constraints.new"
stamp=wheelhouse/.requirements
want=$(printf 'python %s, %s\n%s\n%s' "$python" "$arch" "$requirements" "$(cat "$constraints.new")")
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  rm -f "$constraints.new"
  echo "wheelhouse/ is current ($(ls wheelhouse/*.whl | wc -l) wheels)"
  exit 0
fi
rm -f wheelhouse/*.whl "$stamp"
mv "$constraints.new" "$constraints"
printf '%s\n' "$requirements" > wheelhouse/requirements.txt
"$host_python" -m pip download --only-binary=:all: --python-version "$python" $platforms \
  --dest wheelhouse -r wheelhouse/requirements.txt -c "$constraints"
# pip evaluates environment markers for the host's Python, not --python-version: add the
# dependencies that the wheels require only on some Python versions (e.g. redis needs
# async-timeout before 3.11.3; Debian 12 has 3.11.2). Extra wheels do no harm.
"$host_python" - > wheelhouse/conditional.txt <<'PY'
import glob, re, zipfile
for wheel in glob.glob("wheelhouse/*.whl"):
    with zipfile.ZipFile(wheel) as archive:
        meta = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        for line in archive.read(meta).decode().splitlines():
            if line.startswith("Requires-Dist:") and "python_" in line and "extra" not in line:
                print(re.sub(r"\s*;.*", "", line.split(":", 1)[1]).strip())
PY
if [ -s wheelhouse/conditional.txt ]; then
  "$host_python" -m pip download --only-binary=:all: --python-version "$python" $platforms \
    --dest wheelhouse -r wheelhouse/conditional.txt -c "$constraints"
fi
if ls wheelhouse/torch-*.whl >/dev/null 2>&1; then
  echo "a dependency pulled torch into wheelhouse/; the base image must bring torch" >&2
  exit 1
fi
printf '%s\n' "$want" > "$stamp"
echo "wheelhouse/: $(ls wheelhouse/*.whl | wc -l) wheels"
