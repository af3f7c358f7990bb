"""Turns wrk --latency output into one JSON line, or results.jsonl into a Markdown table.

parse_wrk.py <name> <concurrency> <wrk-output>
parse_wrk.py --table results.jsonl
"""

import json
import re
import sys


def seconds(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def parse(name: str, concurrency: int, text: str) -> dict:
    def latency(pct: str) -> float | None:
        m = re.search(rf"^\s+{pct}%\s+(\S+)", text, re.MULTILINE)
        return round(seconds(m.group(1)) * 1000, 1) if m else None

    requests = int(re.search(r"(\d+) requests in", text).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    errors = (int(non2xx.group(1)) if non2xx else 0) + (sum(int(g) for g in socket.groups()) if socket else 0)
    return {
        "server": name,
        "concurrency": concurrency,
        "requests": requests,
        "rps": round(float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)), 1),
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "errors": errors,
    }


def table(path: str) -> str:
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    lines = ["| server | c | req/s | p50 ms | p99 ms | errors |", "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(
            f"| {r['server']} | {r['concurrency']} | {r['rps']} | {r['p50_ms']} | {r['p99_ms']} | {r['errors']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1] == "--table":
        print(table(sys.argv[2]))
    else:
        with open(sys.argv[3]) as f:
            print(json.dumps(parse(sys.argv[1], int(sys.argv[2]), f.read())))
