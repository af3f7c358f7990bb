-- wrk: POST the body in $BODY_FILE to the path in $BENCH_PATH.
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.path = os.getenv("BENCH_PATH") or "/predict"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
