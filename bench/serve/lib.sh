# Shared by run.sh and threads.sh (sourced, not run): start a server, wait for it, and measure
# one (server, c, sample) with wrk, measuring again while the VM's host steals CPU.
# Needs: HERE, WORK, PY, PORT, DURATION, RESULTS (a .jsonl file); sets SERVER_PID and BODY.

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

start_server() { # family, name, body file, command...: runs it in $WORK/run, waits, warms it up
  local family=$1 name=$2
  BODY=$3
  shift 3
  echo "== $family / $name" >&2
  (cd "$WORK/run" && exec env MODEL_PATH="$WORK/$family.joblib" PORT="$PORT" "$@") >"$WORK/$family-$name.log" 2>&1 &
  SERVER_PID=$!
  wait_ready "http://127.0.0.1:$PORT/predict"
  BODY_FILE=$BODY wrk -t1 -c16 -d3s -s "$HERE/post.lua" "http://127.0.0.1:$PORT" >/dev/null # warm-up
}

# One (server, c, sample) run. A run during which the VM's host gave more than STEAL_MAX % of
# the CPU time to its other guests (steal: noise no wait for idle can stop) is measured again,
# at most STEAL_TRIES times; the last try is kept either way, with its steal in the results.
STEAL_MAX=${STEAL_MAX:-5}
STEAL_TRIES=${STEAL_TRIES:-3}
measure() { # family, name, c, sample
  local family=$1 name=$2 c=$3 sample=$4 try stat0 line steal pct
  local threads=$((c < 2 ? 1 : 2)) out="$WORK/${OUT_TAG:-}$1-$2-c$3-s$4.txt"
  for try in $(seq 1 "$STEAL_TRIES"); do
    "$PY" "$HERE/idle.py" "$SERVER_PID"
    line="$(date +%T) $family $name c=$c sample=$sample try=$try load: $(cut -d' ' -f1-3 /proc/loadavg)"
    stat0=$("$PY" "$HERE/idle.py" --stat)
    BODY_FILE=$BODY wrk -t"$threads" -c"$c" -d"${DURATION}s" --timeout 10s --latency \
      -s "$HERE/post.lua" "http://127.0.0.1:$PORT" >"$out"
    steal=$("$PY" "$HERE/idle.py" --steal "$stat0" "$("$PY" "$HERE/idle.py" --stat)")
    echo "$line; during the run: $steal" >>"$WORK/load.txt"
    pct=$(awk '{ sub(/%,?/, "", $2); print $2 }' <<<"$steal")
    awk -v p="$pct" -v max="$STEAL_MAX" 'BEGIN { exit !(p <= max) }' && break
  done
  "$PY" "$HERE/parse_wrk.py" "$family" "$name" "$c" "$sample" "$out" "$pct" |
    tee -a "$RESULTS" >&2
}

# The default thread setting against the hand-tuned ones, by turns: mlship's batching service of
# a family run with its default (2 workers, elastic threads), 1 worker x 2 threads and 2 workers x
# 1 thread (both set by hand, static), one after the other, `rounds` times, so a host getting
# busier or quieter weighs on all three alike (one setting's samples back to back would not);
# each round starts with the next setting (default first, then 1x2 first, ...), so none is always
# the first or the last. c=1 and c=64 in every round; the round is the sample. Results in
# $RESULTS, as measure's.
tuned_rounds() { # family, rounds
  local family=$1 rounds=$2 round name i
  local names=(mlship-batching mlship-batching-1x2 mlship-batching-2x1)
  local service=$WORK/mlship-$family-batching
  local gunicorn=(sh -c "cd '$service' && exec '$PY' -m gunicorn -c gunicorn_conf.py app.main:app")
  local -A settings=(
    [mlship-batching]=""
    [mlship-batching-1x2]="WORKERS=1 THREADS_PER_WORKER=2"
    [mlship-batching-2x1]="WORKERS=2 THREADS_PER_WORKER=1"
  )
  for round in $(seq 1 "$rounds"); do
    for i in 0 1 2; do
      name=${names[$(((round - 1 + i) % 3))]}
      # shellcheck disable=SC2086 # the settings are words on purpose
      start_server "$family" "$name" "$WORK/$family.example.json" env ${settings[$name]} "${gunicorn[@]}"
      for c in 1 64; do
        measure "$family" "$name" "$c" "$round"
      done
      stop_server
    done
  done
}
