"""Ingest benchmark: `perflake ingest` against a bare kafka-python consumer on the same topic.

Publishes the demo studio's mixed stream (default 1M events, a backlog) to the embedded broker,
then times, in the same run: a bare kafka-python consumer group member that only counts the
messages, and `perflake ingest` from start to its last published file. Prints both rates, their
ratio, the ingest's peak RSS (consumer and writer processes together) and Parquet vs JSON bytes.

    make bench-ingest                      # 1M events, 3 rounds
    python -m tests.bench.bench_ingest --events 200000 --rounds 1
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer

from ingest.broker import EmbeddedBroker, create_topic, free_port
from ingest.demo import studio_messages

TOPIC = "bench.job-events"
TARGETS = {"ratio": 0.6, "rate": 25_000, "rss_mb": 600, "parquet_share": 0.15}


def publish(bootstrap: str, events: int) -> int:
    """Publish the first `events` demo messages (as many days as it takes); returns JSON bytes."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=1 << 20, acks=1)
    days = max(1, events // 6_600 + 1)
    sent = 0
    for msg in itertools.islice(studio_messages(days=days, seed=3), events):
        producer.send(TOPIC, key=msg.key, value=msg.value)
        sent += len(msg.value)
    producer.flush()
    producer.close()
    return sent


def bare_rate(bootstrap: str, events: int, group: str = "bench-bare") -> float:
    """Messages per second of a kafka-python group member that only counts them."""
    started = time.perf_counter()
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=50,
        fetch_max_bytes=16 << 20,
        max_partition_fetch_bytes=4 << 20,
        max_poll_records=10_000,
        session_timeout_ms=6_000,
        heartbeat_interval_ms=2_000,
    )
    consumer.subscribe([TOPIC])
    seen = 0
    while seen < events:
        for batch in consumer.poll(timeout_ms=200).values():
            seen += len(batch)
    elapsed = time.perf_counter() - started
    consumer.close(autocommit=False)
    return events / elapsed


def _tree_rss_mb(pid: int) -> float:
    """RSS of a process and its children, in MB (from /proc)."""
    total = 0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        return 0.0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def ingest_run(
    bootstrap: str, lake: Path, events: int, group: str = "bench-ingest"
) -> tuple[float, float]:
    """(events per second to the last published file, peak RSS in MB) of `perflake ingest`."""
    cmd = [
        sys.executable,
        "-m",
        "app.cli",
        "ingest",
        "--bootstrap-servers",
        bootstrap,
        "--topic",
        TOPIC,
        "--lake",
        str(lake),
        "--group",
        group,
        "--until-idle",
        "2",
        "--keep-days",
        "3650",
        "--progress-every",
        "5",
    ]
    started_wall = time.time()
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0.0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _tree_rss_mb(proc.pid))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    proc.wait()
    stop.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"ingest exited with {proc.returncode}")
    del started
    last = max(p.stat().st_mtime for p in lake.rglob("*.parquet"))
    return events / (last - started_wall), peak


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--events", type=int, default=1_000_000, help="events in the backlog (>= 200000)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="bare consumer then ingest, this many times over the same backlog (medians reported)",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="perflake-bench-"))
    bares, rates, rss_peaks = [], [], []
    try:
        with EmbeddedBroker(free_port()) as broker:
            create_topic(broker.bootstrap, TOPIC, 4)
            t = time.perf_counter()
            json_bytes = publish(broker.bootstrap, args.events)
            print(
                f"published {args.events:,} events ({json_bytes / 1e6:.0f} MB of JSON) in {time.perf_counter() - t:.0f} s"
            )
            # Each round reads the whole backlog again in fresh groups, into a fresh lake: the
            # machine's noise moves both rates of a round alike, and the medians damp it.
            for n in range(args.rounds):
                lake = work / "lake"
                shutil.rmtree(lake, ignore_errors=True)
                bare = bare_rate(broker.bootstrap, args.events, f"bench-bare-{n}")
                rate, rss = ingest_run(broker.bootstrap, lake, args.events, f"bench-ingest-{n}")
                print(
                    f"round {n + 1}: bare {bare:,.0f} events/s, ingest {rate:,.0f} events/s "
                    f"(ratio {rate / bare:.2f}), peak RSS {rss:.0f} MB"
                )
                bares.append(bare)
                rates.append(rate)
                rss_peaks.append(rss)
        parquet = sum(p.stat().st_size for p in (work / "lake").rglob("*.parquet"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    bare, rate, rss = statistics.median(bares), statistics.median(rates), max(rss_peaks)
    ratio = statistics.median(r / b for r, b in zip(rates, bares, strict=True))
    share = parquet / json_bytes
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"medians of {args.rounds} rounds; peak RSS is the highest of them")
    print(f"bare kafka-python consumer : {bare:>9,.0f} events/s")
    print(f"perflake ingest            : {rate:>9,.0f} events/s (start to last file published)")
    print(f"ratio ingest / bare        : {ratio:>9.2f}   target >= {TARGETS['ratio']}")
    print(f"ingest rate                : {rate:>9,.0f}   target >= {TARGETS['rate']:,}")
    print(
        f"peak RSS (both processes)  : {rss:>9.0f} MB target <= {TARGETS['rss_mb']} MB with a {args.events:,}-event backlog"
    )
    print(f"Parquet / JSON bytes       : {share:>9.1%}   target <= {TARGETS['parquet_share']:.0%}")
    met = (
        ratio >= TARGETS["ratio"]
        and rate >= TARGETS["rate"]
        and rss <= TARGETS["rss_mb"]
        and share <= TARGETS["parquet_share"]
    )
    print("targets met" if met else "TARGETS NOT MET")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
