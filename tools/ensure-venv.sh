#!/usr/bin/env bash
# Create .venv with the pinned versions, or recreate it when requirements.lock or
# pyproject.toml changed since it was made (compared by content, not by file times).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV=.venv
want="$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)"
have="$(cat "$VENV/.installed" 2>/dev/null || true)"
if [ -x "$VENV/bin/python" ] && [ "$want" = "$have" ]; then
    exit 0
fi
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "Python >= 3.10 is needed, found " + sys.version)'
echo "Setting up $VENV (pinned versions from requirements.lock) ..."
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -c requirements.lock -e ".[dev]"
echo "$want" > "$VENV/.installed"
echo "$VENV is ready."
