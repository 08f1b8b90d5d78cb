"""Gemini attribute-generation benchmark against the fake generateContent server (300 ms per call).

1. Throughput: sequential (concurrency 1) vs the default concurrency
   (``defaults.GEMINI_CONCURRENCY``), no RPM cap, same dataset size per run.
   Target: >= 6x.
2. Rate limit: the server enforces ``--rpm`` requests per sliding minute
   (429 beyond it); the client is told the same cap. Measured over the first
   60 s: achieved requests per minute (target >= 90% of the limit) and the
   number of 429s (target: no storm).

Uses the real google-genai client and the real ``generate_attributes``
(FiftyOne dataset on a private mongod). Prints a table and writes
bench/results/gemini.json; about 1.5 minutes:

    .venv/bin/python bench/gemini.py [--latency 0.3] [--rpm 120]
"""

import argparse
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from person_finder.testing.mongo import start_private_mongod  # noqa: E402

TMP = tempfile.mkdtemp(prefix="pf-bench-gemini-")
start_private_mongod(os.path.join(TMP, "db"))
os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
os.environ.setdefault("FIFTYONE_SHOW_PROGRESS_BARS", "false")

import _report  # noqa: E402
import fiftyone as fo  # noqa: E402
from person_finder.testing.fake_gemini import FakeGemini, add_people  # noqa: E402
from person_finder.core import defaults  # noqa: E402
from person_finder.core.attributes.gemini import generate_attributes  # noqa: E402
from person_finder.testing.synthetic import random_specs  # noqa: E402


def make_dataset(num, name):
    dataset = fo.Dataset(name)
    add_people(dataset, os.path.join(TMP, name), random_specs(num, seed=0, distinct=False), views=1)
    return dataset


def timed_run(fake, num, concurrency, rpm):
    dataset = make_dataset(num, f"bench-{concurrency}-{rpm}-{time.time_ns()}")
    start = time.perf_counter()
    out = generate_attributes(dataset, api_key="bench", base_url=fake.base_url, concurrency=concurrency,
                              requests_per_minute=rpm, chunk_size=defaults.ATTRIBUTES_CHUNK_SIZE)
    seconds = time.perf_counter() - start
    assert out["attributed"] == num, out
    dataset.delete()
    return seconds, out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--rpm", type=int, default=120)
    parser.add_argument("--sequential", type=int, default=20, help="samples in the sequential run")
    parser.add_argument("--concurrent", type=int, default=120, help="samples in the concurrent run")
    args = parser.parse_args()
    figures = {"latency_s": args.latency, "default_concurrency": defaults.GEMINI_CONCURRENCY}

    with FakeGemini(latency=args.latency) as fake:
        seq_s, _ = timed_run(fake, args.sequential, 1, 0)
        par_s, _ = timed_run(fake, args.concurrent, defaults.GEMINI_CONCURRENCY, 0)
    seq_rate, par_rate = args.sequential / seq_s, args.concurrent / par_s
    figures.update(sequential_calls_per_s=round(seq_rate, 2), concurrent_calls_per_s=round(par_rate, 2),
                   speedup=round(par_rate / seq_rate, 2))

    # enough samples to keep the limiter busy for ~65 s
    num = int(args.rpm * 65 / 60 / defaults.GEMINI_RPM_HEADROOM)
    with FakeGemini(latency=args.latency, rpm_limit=args.rpm) as fake:
        seconds, out = timed_run(fake, num, defaults.GEMINI_CONCURRENCY, args.rpm)
        first = min(r["time"] for r in fake.requests)
        in_first_minute = sum(1 for r in fake.requests if r["status"] == 200 and r["time"] < first + 60)
        statuses = fake.statuses()
    figures.update(rpm_limit=args.rpm, rpm_achieved=in_first_minute, rpm_fraction=round(in_first_minute / args.rpm, 3),
                   rate_limited_429=statuses.get(429, 0), rpm_run_samples=num, rpm_run_s=round(seconds, 1),
                   client_retries=out["retries"])
    figures["targets_met"] = figures["speedup"] >= 6 and figures["rpm_fraction"] >= 0.9 and \
        figures["rate_limited_429"] <= max(2, args.rpm // 100)

    print(f"fake Gemini, {args.latency * 1000:.0f} ms per call")
    print(f"  sequential           {seq_rate:6.2f} calls/s")
    print(f"  concurrency {defaults.GEMINI_CONCURRENCY:<8} {par_rate:6.2f} calls/s   speedup {figures['speedup']:.2f}x "
          f"(target >= 6x)")
    print(f"  server limit {args.rpm} RPM: achieved {in_first_minute} in the first minute "
          f"({figures['rpm_fraction'] * 100:.1f}%, target >= 90%), 429s: {figures['rate_limited_429']}")
    _report.write("gemini", [
        _report.figure("sequential throughput", round(seq_rate, 2), "calls/s"),
        _report.figure(f"throughput, concurrency {defaults.GEMINI_CONCURRENCY} / sequential", round(figures["speedup"], 2),
                       "x", (">=", 6)),
        _report.figure(f"achieved / server limit of {args.rpm} RPM (first minute)", figures["rpm_fraction"], "",
                       (">=", 0.9)),
        _report.figure("429 answers during the RPM run", figures["rate_limited_429"], "", ("<=", max(2, args.rpm // 100))),
    ], details=figures)


if __name__ == "__main__":
    main()
