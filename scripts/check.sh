#!/usr/bin/env bash
# The one check command: format, lint, types, import layers, then the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
$BIN/ruff format --check src tests bench
$BIN/ruff check src tests bench
$BIN/mypy
$BIN/lint-imports
set +e
# Two workers, each module whole on one worker (its module-scoped server and cluster stay
# shared): much of an end-to-end test is waiting on processes, so two overlap well on 2 cores.
$BIN/python -m pytest -n "${KILN_TEST_WORKERS:-2}" --dist loadfile "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "kiln: pytest collected no tests; failing on purpose" >&2
  exit 1
fi
exit "$rc"
