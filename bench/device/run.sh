#!/usr/bin/env bash
# The GPU check (bench/device/gpu_check.py) with its environment: on the GPU machine it first installs the
# carried wheels (WHEELS, default .whl/gpu, built by bench/device/build_wheels.sh) into /tmp/site, since that
# machine has torch but not Ray, DeepSpeed or MLflow; --dry runs the same stages on this machine's CPU with
# the repository's venv, tiny sizes, and PyAV made unimportable as it is there.
#
#   bash bench/device/run.sh OUT [WHEELS]      # GPU machine: python3, CUDA
#   bash bench/device/run.sh --dry OUT         # here: .venv, CPU, tiny sizes
set -euo pipefail
DRY=()
if [ "${1:-}" = --dry ]; then DRY=(--dry); shift; fi
OUT=${1:?usage: run.sh [--dry] OUT [WHEELS]}
WHEELS=${2:-.whl/gpu}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
cd "$REPO"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

if [ ${#DRY[@]} -eq 1 ]; then
  PY="$REPO/.venv/bin/python"
  export DS_ACCELERATOR=cpu TORCH_EXTENSIONS_DIR=${TORCH_EXTENSIONS_DIR:-$REPO/.venv/torch_extensions}
  # Ray workers inherit PYTHONPATH, so the stand-in av.py blocks PyAV in data prep's decode tasks too.
  export PYTHONPATH="$REPO/bench/device/without_av:$REPO"
else
  PY=python3
  if [ -d "$WHEELS" ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl
  fi
  # The installed DeepSpeed recorded the CPU accelerator it was built on; CUDA is named here.
  export DS_ACCELERATOR=cuda PYTHONPATH="$REPO:/tmp/site"
fi
# The file store: mlflow-skinny lacks the SQLite store's SQLAlchemy, and MLflow 3 refuses file stores unless told.
export MLFLOW_ALLOW_FILE_STORE=true RAY_ENABLE_UV_RUN_RUNTIME_ENV=0
# GPU run: the work folder (thousands of images and shards) lies outside OUT, which the device tool returns.
WORK=()
if [ ${#DRY[@]} -eq 0 ]; then WORK=(--work /tmp/gpu_check_work); fi
exec "$PY" bench/device/gpu_check.py "${DRY[@]}" "${WORK[@]}" --out "$OUT"
