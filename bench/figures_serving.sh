#!/usr/bin/env bash
# The evaluation table through vLLM (issue Engines II): react, cot, direct on 20 HotpotQA items; cot on 50
# GSM8K items; cot and direct on 100 FEVER items; constrained and --unconstrained; 8 episodes in flight on a
# vLLM CPU server serving the embedded model. Results in results/vllm/ as items finish; run it again to
# resume. Starts the server (scripts/vllm_server.sh, port 8014) and stops it by its PID at the end; with
# URL=... set, uses that server instead. OUT=DIR puts the results elsewhere (default results/vllm).
# PROMPT_FORMAT=F (default completion, as the README's table was measured; the default of run/eval is chat).
#   bash bench/figures_serving.sh            (or: make figures-serving)
set -euo pipefail
cd "$(dirname "$0")/.."
export VLLM_STATE=.vllm/figures PORT="${PORT:-8014}" VLLM_ARGS="--enable-prompt-tokens-details"
if [ -n "${URL:-}" ]; then :; else
  URL="$(bash scripts/vllm_server.sh start)"
  trap 'bash scripts/vllm_server.sh stop' EXIT
fi
DATA=../shared/data
LTL=.venv/bin/ltlagent
SERVE=(--engine vllm --url "$URL" --concurrency "${CONCURRENCY:-8}" --out "${OUT:-results/vllm}" --resume
       --prompt-format "${PROMPT_FORMAT:-completion}")
for mode in "" --unconstrained; do
  $LTL eval specs/react.yaml specs/cot.yaml specs/direct.yaml --data $DATA/hotpotqa_distractor_dev70.jsonl \
    --task hotpotqa --limit 20 "${SERVE[@]}" $mode ${mode:+--plot ${OUT:-results/vllm}/hotpotqa.png}
  $LTL eval specs/cot.yaml --data $DATA/gsm8k_test_first1000.jsonl --task gsm8k --limit 50 "${SERVE[@]}" $mode \
    ${mode:+--plot ${OUT:-results/vllm}/gsm8k.png}
  $LTL eval specs/fever_cot.yaml specs/fever_direct.yaml --data $DATA/fever_dev_first1000.jsonl --task fever \
    --limit 100 "${SERVE[@]}" $mode ${mode:+--plot ${OUT:-results/vllm}/fever.png}
done
