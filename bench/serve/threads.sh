#!/usr/bin/env bash
# The default thread setting against the hand-tuned ones, interleaved (not a test): on one
# model family, mlship's batching service run by turns with its default (2 workers, elastic
# threads), 1 worker x 2 threads and 2 workers x 1 thread (both set by hand, static), ROUNDS
# times, so a host getting busier or quieter during the run weighs on all three alike (run.sh
# measures each server's samples back to back). c=1 and c=64 in every round.
#
#   bench/serve/threads.sh    # FAMILY=hgb ROUNDS=3 DURATION=8; after run.sh (its models and services)
#
# Results: bench/.work/serve/threads.jsonl (sample = round) and the goal's table on stdout.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WORK=$ROOT/bench/.work/serve
PY=$ROOT/bench/.work/venv/bin/python
FAMILY=${FAMILY:-hgb}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8}
PORT=${PORT:-18080}
RESULTS=$WORK/threads.jsonl
SERVICE=$WORK/mlship-$FAMILY-batching
[[ -d $SERVICE && -x $PY ]] || { echo "run bench/serve/run.sh first (FAMILIES=$FAMILY is enough)" >&2; exit 3; }
# shellcheck source=bench/serve/lib.sh
source "$HERE/lib.sh"
: >"$RESULTS"

GUNICORN=(sh -c "cd '$SERVICE' && exec '$PY' -m gunicorn -c gunicorn_conf.py app.main:app")
declare -A SETTINGS=(
  [mlship-batching]=""
  [mlship-batching-1x2]="WORKERS=1 THREADS_PER_WORKER=2"
  [mlship-batching-2x1]="WORKERS=2 THREADS_PER_WORKER=1"
)
for round in $(seq 1 "$ROUNDS"); do
  for name in mlship-batching mlship-batching-1x2 mlship-batching-2x1; do
    # shellcheck disable=SC2086 # the settings are words on purpose
    start_server "$FAMILY" "$name" "$WORK/$FAMILY.example.json" env ${SETTINGS[$name]} "${GUNICORN[@]}"
    for c in 1 64; do
      measure "$FAMILY" "$name" "$c" "$round"
    done
    stop_server
  done
done

"$PY" "$HERE/parse_wrk.py" --tuned "$RESULTS"
