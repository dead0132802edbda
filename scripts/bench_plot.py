"""Plots req/s and p99 against connections from a scripts/bench run:
    python3 scripts/bench_plot.py target/bench.txt docs/bench-connections.png
Series are the `[curve-<series>-c<N>]` lines."""

import re
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

points = defaultdict(dict)
for line in open(sys.argv[1]):
    m = re.match(r"\[curve-([\w-]+)-c(\d+)\] .*rps=([0-9.]+).*p99_ms=([0-9.]+)", line)
    if m:
        points[m.group(1)][int(m.group(2))] = (float(m.group(3)), float(m.group(4)))

fig, (rps_ax, p99_ax) = plt.subplots(1, 2, figsize=(11, 4.2))
for series, by_c in sorted(points.items()):
    cs = sorted(by_c)
    rps_ax.plot(cs, [by_c[c][0] for c in cs], marker="o", label=series)
    p99_ax.plot(cs, [by_c[c][1] for c in cs], marker="o", label=series)
for ax, title, unit in ((rps_ax, "throughput", "requests / s"), (p99_ax, "p99 latency", "ms")):
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("connections")
    ax.set_ylabel(unit)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
rps_ax.legend(fontsize=8)
fig.suptitle("Signed DescribeBuilds, page of 25 (loadgen, loopback, 2 cores)")
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=110)
