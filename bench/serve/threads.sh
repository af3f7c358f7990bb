#!/usr/bin/env bash
# The default thread setting against the hand-tuned ones, interleaved (not a test), again on one
# model family after run.sh (which does the same for every family, TUNED_ROUNDS times):
# mlship's batching service run by turns with its default (2 workers, elastic threads), 1 worker
# x 2 threads and 2 workers x 1 thread (lib.sh: tuned_rounds), ROUNDS times. c=1 and c=64 in
# every round.
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

OUT_TAG=threads-
tuned_rounds "$FAMILY" "$ROUNDS"

"$PY" "$HERE/parse_wrk.py" --tuned "$RESULTS"
