"""Turns wrk --latency output into one JSON line, or results.jsonl into Markdown tables.

parse_wrk.py <family> <server> <concurrency> <sample> <wrk-output> [<steal %>]
parse_wrk.py --table results.jsonl
parse_wrk.py --goals results.jsonl   # issue 17's goals, sample by sample
parse_wrk.py --tuned threads.jsonl   # the default thread setting against the hand-tuned ones

2xx/s counts only the requests that were served: a 503 (shed load) or a socket error is
not a served request, whatever wrk's req/s says.
"""

import json
import re
import statistics
import sys
from collections import defaultdict


def seconds(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def parse(family: str, name: str, concurrency: int, sample: int, text: str, steal: float | None = None) -> dict:
    def latency(pct: str) -> float | None:
        m = re.search(rf"^\s+{pct}%\s+(\S+)", text, re.MULTILINE)
        # wrk prints two decimals: kept (at c=1 a p50 is 1-2 ms, where 0.1 ms is 5-10 %).
        return round(seconds(m.group(1)) * 1000, 2) if m else None

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
        # The share of CPU time the VM's host gave its other guests during the run (None: not measured).
        "steal_pct": steal,
    }


def _rows(path: str) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def _by_run(rows: list[dict]) -> dict[tuple, dict]:
    """Each row by (family, server, concurrency, sample)."""
    return {(r["family"], r["server"], r["concurrency"], r["sample"]): r for r in rows}


def table(path: str) -> str:
    rows = _rows(path)
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
            "| server | c | req/s | 2xx/s | p50 ms | p99 ms | errors | steal % |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for key in sorted((k for k in order if k[0] == family), key=lambda k: (k[2], order.index(k))):
            samples = cells[key]

            def col(field: str, samples: list[dict] = samples) -> str:
                return " / ".join(str(s.get(field, "-")) for s in samples)

            out.append(
                f"| {key[1]} | {key[2]} | {col('rps')} | {col('ok_rps')} | {col('p50_ms')} | {col('p99_ms')} "
                f"| {col('errors')} | {col('steal_pct')} |"
            )
    return "\n".join(out)


def _ratio(a: list, b: list) -> str:
    return " / ".join(f"{x / y:.2f}x" if y else "-" for x, y in zip(a, b, strict=False))


def goals(path: str) -> str:
    """Issue 17's goals per family, sample by sample: c=1 p50 against FastAPI at its best thread
    setting (<= 1.2x), c=64 batching 2xx/s against BentoML batching at its best (>= 2x, lower p99)."""
    rows = _rows(path)
    cell = _by_run(rows)
    out = [
        (
            "| family | c=1 p50 ms: mlship / `fastapi+1thread` | ratio (goal <= 1.2x) | ratio to FastAPI's faster setting "
            "| c=64 2xx/s: mlship-batching / `bentoml-batching+1thread` | ratio (goal >= 2x) "
            "| c=64 p99 ms: mlship-batching / BentoML | errors (mlship-batching) |"
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    for family in dict.fromkeys(r["family"] for r in rows):
        samples = sorted({r["sample"] for r in rows if r["family"] == family})

        def get(server: str, c: int, field: str, family: str = family, samples: list = samples) -> list:
            return [cell[(family, server, c, s)][field] for s in samples if (family, server, c, s) in cell]

        def pair(a: list, b: list) -> str:
            return f"{' / '.join(map(str, a))} vs {' / '.join(map(str, b))}"

        p50, p50_peer = get("mlship", 1, "p50_ms"), get("fastapi+1thread", 1, "p50_ms")
        faster = [min(a, b) for a, b in zip(get("fastapi", 1, "p50_ms"), p50_peer, strict=False)]
        ok, ok_peer = get("mlship-batching", 64, "ok_rps"), get("bentoml-batching+1thread", 64, "ok_rps")
        p99, p99_peer = get("mlship-batching", 64, "p99_ms"), get("bentoml-batching+1thread", 64, "p99_ms")
        errors = " / ".join(map(str, get("mlship-batching", 64, "errors")))
        out.append(
            f"| {family} | {pair(p50, p50_peer)} | {_ratio(p50, p50_peer)} | {_ratio(p50, faster)} | {pair(ok, ok_peer)} "
            f"| {_ratio(ok, ok_peer)} | {pair(p99, p99_peer)} | {errors} |"
        )
    out += ["", *tuned(rows)]
    return "\n".join(out)


HAND_TUNED = ("mlship-batching-1x2", "mlship-batching-2x1")


def _cells(cells: list[list]) -> str:
    return " ; ".join(" / ".join(map(str, v)) for v in cells)


def tuned(rows: list) -> list[str]:
    """The default thread setting against the best hand-tuned one (THREADS_PER_WORKER set), same
    service: c=1 p50 within 1.1x of the lowest, c=64 2xx/s at least 0.9x of the highest."""
    out = [
        (
            "| family | c=1 p50 ms: default / 1x2 / 2x1 | default / best (goal <= 1.1x) "
            "| c=64 2xx/s: default / 1x2 / 2x1 | default / best (goal >= 0.9x) |"
        ),
        "|---|---|---|---|---|",
    ]
    cell = _by_run(rows)
    servers = ("mlship-batching", *HAND_TUNED)
    for family in dict.fromkeys(r["family"] for r in rows):
        samples = sorted({r["sample"] for r in rows if r["family"] == family})

        def at(c: int, field: str, samples: list = samples, family: str = family) -> list[list]:
            return [
                [cell[(family, s, c, n)][field] for s in servers]
                for n in samples
                if all((family, s, c, n) in cell for s in servers)
            ]

        p50, ok = at(1, "p50_ms"), at(64, "ok_rps")
        if not p50 and not ok:  # no hand-tuned setting measured for this family
            continue
        p50_ratio = " / ".join(f"{v[0] / min(v[1:]):.2f}x" for v in p50)
        ok_ratio = " / ".join(f"{v[0] / max(v[1:]):.2f}x" for v in ok)
        out.append(f"| {family} | {_cells(p50)} | {p50_ratio} | {_cells(ok)} | {ok_ratio} |")
        if min(len(p50), len(ok)) >= 3:  # by turns, many rounds: the medians say more than any one
            mp, mo = _medians(p50), _medians(ok)
            out.append(
                f"| {family}, median of {len(p50)} rounds | {_cells([mp])} | {mp[0] / min(mp[1:]):.2f}x "
                f"| {_cells([mo])} | {mo[0] / max(mo[1:]):.2f}x |"
            )
    return out


def _medians(rounds: list[list]) -> list[float]:
    """Each server's median over the rounds (rounds: one list of the servers' values each)."""
    return [round(statistics.median(values), 2) for values in zip(*rounds, strict=True)]


if __name__ == "__main__":
    if sys.argv[1] == "--table":
        print(table(sys.argv[2]))
    elif sys.argv[1] == "--goals":
        print(goals(sys.argv[2]))
    elif sys.argv[1] == "--tuned":
        print("\n".join(tuned(_rows(sys.argv[2]))))
    else:
        with open(sys.argv[5]) as f:
            steal = float(sys.argv[6]) if len(sys.argv) > 6 and sys.argv[6] else None
            print(json.dumps(parse(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), f.read(), steal)))
