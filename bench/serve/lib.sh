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
  local threads=$((c < 2 ? 1 : 2)) out="$WORK/$1-$2-c$3-s$4.txt"
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
