#!/usr/bin/env bash
# Operate benchmark (not a test), issue 21's two goals on one local stack (wrapped iris
# model behind NGINX, `monitoring:` with Prometheus scraping every 5 s, cAdvisor and the
# NGINX exporter from the local stand-in images; Grafana is not installable here):
#
# 1. Overhead: the model's throughput at c=64 (wrk through the proxy) with the monitoring
#    services running vs paused (`docker pause`: nothing scrapes), alternating rounds.
# 2. Time to see: from `mlship compose up --no-build` (images built before) to the first
#    non-empty answer of the dashboard's requests/s query, a request a second meanwhile.
#
#   bench/operate/run.sh     # ROUNDS=3 DURATION=20 by default; needs wrk and `npm run build`
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-20}
PY_IMAGE=${MLSHIP_TEST_PYTHON_IMAGE:-mlship-local/python:3.11-slim}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 3; }

WORK=$(mktemp -d /tmp/mlship-bench-operate-XXXX)
NAME=mlship-bench-op-$$
PORT=$((20000 + RANDOM % 10000))
PROM=$((PORT + 1))
mlship() { (cd "$WORK" && node "$ROOT/bin/mlship.js" "$@"); }
cleanup() { mlship compose down --volumes >/dev/null 2>&1 || true; docker rmi -f "$NAME/iris:dev" >/dev/null 2>&1 || true; }
trap cleanup EXIT

mlship wrap "$ROOT/fixtures/wrap/iris/model.joblib" --out services/iris --name iris --base-image "$PY_IMAGE" >/dev/null
cat >"$WORK/mlship.yaml" <<EOF
version: 1
name: $NAME
services:
  iris:
    path: services/iris
proxy:
  image: mlship-local/nginx:1.22
  port: $PORT
monitoring:
  grafana: false
  prometheus_port: $PROM
  images:
    prometheus: mlship-local/prometheus:2.42
    cadvisor: mlship-local/cadvisor:0.49
    nginx_exporter: mlship-local/nginx-exporter:0.11
EOF
printf '{"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3}' >"$WORK/body.json"

echo "building and starting once (not timed)" >&2
# On a loaded machine the model can miss its health check's start period: try again.
for attempt in 1 2 3; do mlship compose up >/dev/null && break; [[ $attempt == 3 ]] && exit 1; done
mlship compose down >/dev/null

# --- time to see -------------------------------------------------------------------------
QUERY='sum by (service, version) (rate(mlship_requests_total{job="models",endpoint=~"/predict.*"}[1m]))'
t0=$(date +%s.%N)
mlship compose up --no-build --no-smoke >/dev/null &
UP=$!
seen=
deadline=$(($(date +%s) + 600))
while [[ -z $seen ]]; do
  (($(date +%s) < deadline)) || { echo "no data after 600 s" >&2; exit 1; }
  curl -fsS -o /dev/null -X POST -H 'content-type: application/json' --data-binary "@$WORK/body.json" \
    "http://127.0.0.1:$PORT/api/iris/predict" 2>/dev/null || true
  n=$(curl -fsS "http://127.0.0.1:$PROM/api/v1/query" --data-urlencode "query=$QUERY" 2>/dev/null |
    python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"]["result"]))' 2>/dev/null || echo 0)
  [[ $n -gt 0 ]] && seen=$(date +%s.%N)
  sleep 1
done
wait $UP || { echo "compose up failed (see above)" >&2; exit 1; }
t_up=$(python3 -c "print(f'{$seen - $t0:.1f}')")
echo "time to see: ${t_up} s from compose up to a dashboard query with data" >&2

# --- overhead ----------------------------------------------------------------------------
MON=$(docker ps -q --filter "label=com.docker.compose.project=$NAME" --filter 'label=com.docker.compose.service=prometheus' \
  ; docker ps -q --filter "label=com.docker.compose.project=$NAME" --filter 'label=com.docker.compose.service=cadvisor' \
  ; docker ps -q --filter "label=com.docker.compose.project=$NAME" --filter 'label=com.docker.compose.service=nginx-exporter')
run_wrk() { # label
  BODY_FILE=$WORK/body.json BENCH_PATH=/api/iris/predict wrk -t2 -c64 -d"${DURATION}s" --timeout 10s \
    -s "$ROOT/bench/serve/post.lua" "http://127.0.0.1:$PORT" | awk -v l="$1" '/Requests\/sec/ {print l, $2}'
}
BODY_FILE=$WORK/body.json BENCH_PATH=/api/iris/predict wrk -t2 -c64 -d5s -s "$ROOT/bench/serve/post.lua" \
  "http://127.0.0.1:$PORT" >/dev/null # warm-up
: >"$WORK/rps.txt"
for r in $(seq 1 "$ROUNDS"); do
  run_wrk scraped | tee -a "$WORK/rps.txt" >&2
  # shellcheck disable=SC2086
  docker pause $MON >/dev/null
  run_wrk unscraped | tee -a "$WORK/rps.txt" >&2
  # shellcheck disable=SC2086
  docker unpause $MON >/dev/null
done
python3 - "$WORK/rps.txt" "$t_up" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
by = {}
for label, rps in rows:
    by.setdefault(label, []).append(float(rps))
base = statistics.median(by["unscraped"])
print("| case | median req/s | runs | vs unscraped |")
print("|---|---:|---|---:|")
for label in ("unscraped", "scraped"):
    m = statistics.median(by[label])
    runs = ", ".join(f"{v:.0f}" for v in by[label])
    print(f"| {label} | {m:.0f} | {runs} | {'-' if label == 'unscraped' else f'{(m / base - 1) * 100:+.1f}%'} |")
print(f"\ntime to see (compose up --no-build to a dashboard query with data): {sys.argv[2]} s")
EOF
