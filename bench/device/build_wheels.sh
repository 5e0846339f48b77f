#!/usr/bin/env bash
# Fills DIR with the CPython 3.12 manylinux x86-64 wheels the GPU check (bench/device/run.sh) installs on the
# GPU machine, which has torch but no Ray, DeepSpeed or MLflow and cannot reach a registry:
#   - Ray at this venv's version, repacked without its Java jar (bench/device/repack_ray.py);
#   - DeepSpeed at this venv's version, built here from its sdist with no ops compiled (pure Python);
#   - mlflow-skinny, for a local file store (MLFLOW_ALLOW_FILE_STORE=true, set by run.sh): the SQLite store
#     needs SQLAlchemy, Alembic and cryptography besides (10 MB more, past the 64 MiB the device tool carries);
#   - every dependency of those that the machine lacks (bench/device/closure.py, bench/device/
#     gpu_machine_packages.txt).
# Prints the size and exits 1 when DIR plus the repository's tracked files pass 60 MiB.
#
#   bash bench/device/build_wheels.sh .whl/gpu
set -euo pipefail
DIR=${1:?usage: build_wheels.sh DIR}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
PY="$REPO/.venv/bin/python"
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)

version() { "$PY" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$1"; }
download() {
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp --abi cp312 \
    --abi abi3 --abi none --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
    --platform any -d "$DIR" "$@"
}

ray=$(version ray)
if [ ! -e "$DIR/.ray-repacked-$ray" ]; then
  download "ray==$ray"
  "$PY" "$REPO/bench/device/repack_ray.py" "$DIR"/ray-"$ray"-*.whl
  touch "$DIR/.ray-repacked-$ray"
fi

ds=$(version deepspeed)
if ! ls "$DIR"/deepspeed-"$ds"-py3-none-any.whl >/dev/null 2>&1; then
  tmp=$(mktemp -d)
  "$PY" -m pip download -q --no-deps --no-binary=:all: -d "$tmp" "deepspeed==$ds"
  # DS_BUILD_OPS=0: no C++/CUDA op is compiled here, so the wheel is pure Python (checked below); the
  # accelerator it records is overridden on the GPU machine by DS_ACCELERATOR=cuda (run.sh).
  DS_BUILD_OPS=0 DS_ACCELERATOR=cpu "$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$DIR" "$tmp"/deepspeed-*.tar.gz
  rm -rf "$tmp"
  ls "$DIR"/deepspeed-"$ds"-py3-none-any.whl >/dev/null || { echo "error: DeepSpeed did not build as a pure-Python wheel" >&2; exit 1; }
fi

download "mlflow-skinny==$(version mlflow-skinny)"

# The closure: download what the wheels require and neither DIR nor the machine has, until nothing is missing.
while true; do
  mapfile -t need < <("$PY" "$REPO/bench/device/closure.py" missing "$DIR")
  [ ${#need[@]} -eq 0 ] && break
  echo "downloading ${need[*]}"
  download "${need[@]}"
done

ls -1 "$DIR"/*.whl | sed "s|$DIR/||"
"$PY" "$REPO/bench/device/closure.py" size "$DIR"
