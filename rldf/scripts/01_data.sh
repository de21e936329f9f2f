#!/usr/bin/env bash
# Debates -> preference pairs, SFT records and RL prompts ($OUT/data). MODE=teacher|self picks the config section.
# SERVE_TEACHER=<model>: start `python -m common.serve` on a free 127.0.0.1 port as the teacher endpoint for this
# stage and stop it afterwards (the tiny pipeline serves the embedded SmolLM2 this way).
source "$(dirname "$0")/env.sh"
args=(--config "$CONFIG" --section "data_$MODE" output_dir="$DATA" "${EXTRA[@]}")
if [[ -n ${SERVE_TEACHER:-} ]]; then
  mkdir -p "$OUT"
  log=$OUT/serve.log
  HF_HUB_OFFLINE=1 $PY -m common.serve --model "$SERVE_TEACHER" --host 127.0.0.1 --port 0 >"$log" 2>"$OUT/serve.err" &
  server=$!
  trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true' EXIT
  for _ in $(seq 600); do
    url=$(sed -n 's/^common.serve: serving .* at \(http:[^ ]*\)$/\1/p' "$log")
    [[ -n $url ]] && break
    kill -0 "$server" 2>/dev/null || { echo "error: common.serve exited; see $OUT/serve.err" >&2; exit 1; }
    sleep 0.5
  done
  [[ -n $url ]] || { echo "error: common.serve did not start within 300 s; see $OUT/serve.err" >&2; exit 1; }
  echo "teacher: $SERVE_TEACHER at $url"
  args+=(backend=openai model="$SERVE_TEACHER" base_url="$url")
fi
$PY -m rldf.debate "${args[@]}"
