#!/usr/bin/env bash
# Run Person Finder's whole test suite (installs what it needs first). Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
export PERSON_FINDER_TEST_ARTIFACTS="${PERSON_FINDER_TEST_ARTIFACTS:-$PWD/test-artifacts}"
exec .venv/bin/python -m pytest -p no:cacheprovider -ra "$@"
