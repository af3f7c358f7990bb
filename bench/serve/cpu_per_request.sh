#!/usr/bin/env bash
# CPU-seconds a served request costs (not a test): robust on a loaded machine, where req/s and
# latencies are not. Starts one generated Python service as run.sh does (gunicorn on the host,
# bench/.work/venv), warms it up, loads it with wrk for DURATION s at concurrency C, and divides
# the CPU time of the server's process tree (utime + stime from /proc) by the 2xx answers.
#
#   bench/serve/cpu_per_request.sh <service-dir> <model> <body.json> [label]
#   (env: C=64 DURATION=10 ROUNDS=3 PORT=18090 WORKERS unset = the service's own decision)
# One JSON line per round on stdout: label, c, requests, 2xx, cpu_s, cpu_ms_per_request, load.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=${PY:-$ROOT/bench/.work/venv/bin/python}
SERVICE=$(cd "$1" && pwd)
MODEL=$(realpath "$2")
BODY=$(realpath "$3")
LABEL=${4:-$(basename "$SERVICE")}
C=${C:-64}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
PORT=${PORT:-18090}

(cd "$SERVICE" && exec env MODEL_PATH="$MODEL" PORT="$PORT" "$PY" -m gunicorn -c gunicorn_conf.py app.main:app) \
  >"/tmp/cpu-per-request-$LABEL.log" 2>&1 &
SERVER=$!
trap 'kill -TERM $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  curl -fsS -o /dev/null -X POST -H 'content-type: application/json' --data-binary "@$BODY" \
    "http://127.0.0.1:$PORT/predict" 2>/dev/null && break
  sleep 0.2
done
BODY_FILE=$BODY wrk -t2 -c"$C" -d3s -s "$HERE/post.lua" "http://127.0.0.1:$PORT" >/dev/null # warm-up
cpu() { "$PY" "$HERE/idle.py" --cpu "$SERVER"; }
for round in $(seq 1 "$ROUNDS"); do
  "$PY" "$HERE/idle.py" "$SERVER"
  load=$(cut -d' ' -f1 /proc/loadavg)
  before=$(cpu)
  out=$(BODY_FILE=$BODY wrk -t2 -c"$C" -d"${DURATION}s" --timeout 10s -s "$HERE/post.lua" "http://127.0.0.1:$PORT")
  "$PY" "$HERE/idle.py" "$SERVER"
  after=$(cpu)
  requests=$(grep -oP '^\s*\K\d+(?= requests in)' <<<"$out")
  non2xx=$(grep -oP 'Non-2xx or 3xx responses: \K\d+' <<<"$out" || echo 0)
  "$PY" -c '
import json, sys
label, c, n, bad, b, a, load, t = sys.argv[1:]
ok = int(n) - int(bad)
cpu = float(a) - float(b)
print(json.dumps({"label": label, "c": int(c), "requests": int(n), "2xx": ok, "2xx_per_s": round(ok / float(t), 1),
  "cpu_s": round(cpu, 2), "cpu_ms_per_request": round(1000 * cpu / max(ok, 1), 3), "load1": float(load)}))' \
    "$LABEL" "$C" "$requests" "$non2xx" "$before" "$after" "$load" "$DURATION"
done
