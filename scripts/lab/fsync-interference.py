"""Whether an fsync on one file slows plain writes to another on this machine's disk.

The write side does what a claim's commit does to the WAL (two 4,120-byte writes, no sync)
40,000 times and prints its latency percentiles; with `fsync` or `fdatasync`, a second thread
meanwhile dirties 64 pages of another file and syncs it, over and over, as the checkpoint
thread does. docs/performance.md ("Session 21") cites its output.

Run: python3 scripts/lab/fsync-interference.py [DIR] [none|fsync|fdatasync]
(DIR defaults to the system's temporary directory; two scratch files are left there.)
"""
import os
import sys
import tempfile
import threading
import time

directory = sys.argv[1] if len(sys.argv) > 1 else tempfile.gettempdir()
mode = sys.argv[2] if len(sys.argv) > 2 else "none"
if mode not in ("none", "fsync", "fdatasync"):
    sys.exit(f"unknown mode {mode!r}: use none, fsync or fdatasync")
writes = os.open(os.path.join(directory, "interference-a.bin"), os.O_RDWR | os.O_CREAT, 0o644)
synced = os.open(os.path.join(directory, "interference-b.bin"), os.O_RDWR | os.O_CREAT, 0o644)
os.ftruncate(writes, 4 << 20)
os.ftruncate(synced, 8 << 20)
os.fsync(writes)
os.fsync(synced)
stop = False


def syncer():
    page = os.urandom(4096)
    round_ = 0
    while not stop:
        for k in range(64):
            os.pwrite(synced, page, ((round_ * 64 + k) % 2048) * 4096)
        round_ += 1
        if mode == "fsync":
            os.fsync(synced)
        else:
            os.fdatasync(synced)
        time.sleep(0.0005)


thread = threading.Thread(target=syncer)
if mode != "none":
    thread.start()
frame = os.urandom(4120)
latencies = []
for i in range(40_000):
    t0 = time.perf_counter_ns()
    os.pwrite(writes, frame, (i % 900) * 4120)
    os.pwrite(writes, frame, (i % 900) * 4120 + 4120)
    latencies.append(time.perf_counter_ns() - t0)
stop = True
if mode != "none":
    thread.join()
latencies.sort()
n = len(latencies)
print(
    f"{mode}: p50 {latencies[n // 2] / 1000:.0f} µs, p95 {latencies[int(n * 0.95)] / 1000:.0f} µs, "
    f"p99 {latencies[int(n * 0.99)] / 1000:.0f} µs, max {latencies[-1] / 1000:.0f} µs"
)
