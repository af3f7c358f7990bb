"""Turns wrk --latency output into one JSON line, or results.jsonl into Markdown tables.

parse_wrk.py <family> <server> <concurrency> <sample> <wrk-output>
parse_wrk.py --table results.jsonl

2xx/s counts only the requests that were served: a 503 (shed load) or a socket error is
not a served request, whatever wrk's req/s says.
"""

import json
import re
import sys
from collections import defaultdict


def seconds(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def parse(family: str, name: str, concurrency: int, sample: int, text: str) -> dict:
    def latency(pct: str) -> float | None:
        m = re.search(rf"^\s+{pct}%\s+(\S+)", text, re.MULTILINE)
        return round(seconds(m.group(1)) * 1000, 1) if m else None

    done = re.search(r"(\d+) requests in ([\d.]+\w+)", text)
    requests, duration = int(done.group(1)), seconds(done.group(2))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    failed = (int(non2xx.group(1)) if non2xx else 0) + (sum(int(g) for g in socket.groups()) if socket else 0)
    return {
        "family": family,
        "server": name,
        "concurrency": concurrency,
        "sample": sample,
        "requests": requests,
        "rps": round(float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)), 1),
        "ok_rps": round(max(0, requests - (int(non2xx.group(1)) if non2xx else 0)) / duration, 1),
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "errors": failed,
    }


def table(path: str) -> str:
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    cells: dict[tuple, list[dict]] = defaultdict(list)
    order: list[tuple] = []
    for r in rows:
        key = (r["family"], r["server"], r["concurrency"])
        if key not in cells:
            order.append(key)
        cells[key].append(r)
    out = []
    for family in dict.fromkeys(k[0] for k in order):
        out += [
            f"\n**{family}** (each cell: sample 1 / sample 2)\n",
            "| server | c | req/s | 2xx/s | p50 ms | p99 ms | errors |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for key in sorted((k for k in order if k[0] == family), key=lambda k: (k[2], order.index(k))):
            samples = cells[key]

            def col(field: str, samples: list[dict] = samples) -> str:
                return " / ".join(str(s[field]) for s in samples)

            out.append(
                f"| {key[1]} | {key[2]} | {col('rps')} | {col('ok_rps')} | {col('p50_ms')} | {col('p99_ms')} | {col('errors')} |"
            )
    return "\n".join(out)


if __name__ == "__main__":
    if sys.argv[1] == "--table":
        print(table(sys.argv[2]))
    else:
        with open(sys.argv[5]) as f:
            print(json.dumps(parse(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), f.read())))
