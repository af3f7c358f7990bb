#!/usr/bin/env bash
# Serving benchmark (not a test): the same 100-tree random forest served six
# ways, side by side, loaded by wrk from a separate process at c=1, 16 and 64.
#
#   bench/serve/run.sh            # DURATION=15 CONCURRENCY="1 16 64" by default
#
# Installs its own dependencies into bench/.work (git-ignored); needs wrk
# (`apt-get install -y wrk`) and a built mlship (`npm run build`).
# Results: bench/.work/serve/results.jsonl and a Markdown table on stdout.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WORK=$ROOT/bench/.work/serve
VENV=$ROOT/bench/.work/venv
DURATION=${DURATION:-15}
CONCURRENCY=${CONCURRENCY:-1 16 64}
PORT=${PORT:-18080}
mkdir -p "$WORK"

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 3; }
[[ -x $VENV/bin/python ]] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q -r "$HERE/requirements.txt"
PY=$VENV/bin/python

echo "training the model" >&2
"$PY" "$HERE/train.py" "$WORK" | tee "$WORK/model-cost.json" >&2
MODEL=$WORK/model.joblib
"$PY" -c 'import json,sys; e=json.load(open(sys.argv[1])); json.dump({"features":[e["features"]]}, open(sys.argv[2],"w"))' \
  "$WORK/example.json" "$WORK/example-2d.json"

echo "wrapping it with mlship (default, and with batching)" >&2
node "$ROOT/bin/mlship.js" wrap "$MODEL" --example "$WORK/example.json" --out "$WORK/mlship-default" --force >/dev/null
node "$ROOT/bin/mlship.js" wrap "$MODEL" --example "$WORK/example.json" --out "$WORK/mlship-batching" --force \
  --max-batch-size 64 --max-latency-ms 10 >/dev/null

SERVER_PID=
stop_server() {
  if [[ -n $SERVER_PID ]]; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  fi
}
trap stop_server EXIT

wait_ready() { # url
  for _ in $(seq 1 300); do
    curl -fsS -o /dev/null -X POST -H 'content-type: application/json' --data-binary "@$BODY" "$1" 2>/dev/null && return 0
    sleep 0.2
  done
  echo "server did not answer $1" >&2
  return 1
}

: >"$WORK/results.jsonl"
bench() { # name, body file, path, command...
  local name=$1
  BODY=$2
  local path=$3
  shift 3
  echo "== $name" >&2
  (cd "$WORK/run" && exec env MODEL_PATH="$MODEL" PORT="$PORT" "$@") >"$WORK/$name.log" 2>&1 &
  SERVER_PID=$!
  wait_ready "http://127.0.0.1:$PORT$path"
  BODY_FILE=$BODY BENCH_PATH=$path wrk -t1 -c16 -d3s -s "$HERE/post.lua" "http://127.0.0.1:$PORT" >/dev/null # warm-up
  for c in $CONCURRENCY; do
    local threads=$((c < 2 ? 1 : 2))
    BODY_FILE=$BODY BENCH_PATH=$path wrk -t"$threads" -c"$c" -d"${DURATION}s" --timeout 10s --latency \
      -s "$HERE/post.lua" "http://127.0.0.1:$PORT" >"$WORK/$name-c$c.txt"
    "$PY" "$HERE/parse_wrk.py" "$name" "$c" "$WORK/$name-c$c.txt" | tee -a "$WORK/results.jsonl" >&2
  done
  stop_server
}

mkdir -p "$WORK/run"
cp "$HERE"/peers/*.py "$WORK/run/"
bench flask-dev "$WORK/example.json" /predict "$PY" flask_app.py
bench fastapi-1-uvicorn "$WORK/example.json" /predict "$VENV/bin/uvicorn" fastapi_app:app --port "$PORT" --workers 1 --log-level warning
bench bentoml "$WORK/example-2d.json" /predict "$VENV/bin/bentoml" serve bento_service:Forest --port "$PORT"
bench bentoml-batching "$WORK/example-2d.json" /predict env BENTO_BATCHING=1 "$VENV/bin/bentoml" serve bento_service:Forest --port "$PORT"
# The mlship service runs exactly as in its image (gunicorn + its config), on the host, like the peers.
bench mlship "$WORK/example.json" /predict sh -c "cd '$WORK/mlship-default' && exec '$PY' -m gunicorn -c gunicorn_conf.py app.main:app"
bench mlship-batching "$WORK/example.json" /predict sh -c "cd '$WORK/mlship-batching' && exec '$PY' -m gunicorn -c gunicorn_conf.py app.main:app"

"$PY" "$HERE/parse_wrk.py" --table "$WORK/results.jsonl"
