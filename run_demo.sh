#!/usr/bin/env bash
# Set up .venv if needed, then build a demo dataset and search it for people by text. Extra args go to the demo.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
exec .venv/bin/python scripts/demo.py "$@"
