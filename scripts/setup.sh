#!/usr/bin/env bash
# One-time set-up on a fresh machine: system tools, a virtual environment, ltlagent with its test extras.
# Idempotent: re-running only installs what is missing. Used by `make demo`, `make test` and .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"

need_apt=()
command -v mona >/dev/null 2>&1 || need_apt+=(mona)      # ltlf2dfa's back end, for the differential tests
command -v dot >/dev/null 2>&1 || need_apt+=(graphviz)   # `ltlagent show --format svg`
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "setup: please install ${need_apt[*]} (e.g. sudo apt-get install ${need_apt[*]}); continuing without" >&2
  fi
fi

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.ltlagent-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[test]'
  touch "$stamp"
fi
