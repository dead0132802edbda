"""Medians and ratios of a scripts/bench run: python3 scripts/bench_summary.py target/bench.txt"""
import re
import statistics
import sys
from collections import defaultdict

runs = defaultdict(list)
for line in open(sys.argv[1]):
    m = re.match(r"\[([\w-]+)\] (.*)", line.strip())
    if m:
        runs[m.group(1)].append(dict(re.findall(r"(\w+)=([0-9.]+)", m.group(2))))


def med(tag, field):
    vals = [float(r[field]) for r in runs.get(tag, []) if field in r]
    return statistics.median(vals) if vals else float("nan")


def row(label, value, goal=""):
    print(f"| {label} | {value} | {goal} |")


print("| what (median of runs) | result | goal |")
print("| --- | --- | --- |")
for tag in ["describe-1k", "describe-1k-distinct", "describe-1k-uncached", "bare", "moto", "describe-1m", "describe-1m-uncached",
            "start", "describe-calm", "describe-abused"]:
    row(f"{tag}, concurrency 16", f"{med(tag, 'rps'):,.0f} req/s, p50 {med(tag, 'p50_ms'):.3f} ms, "
        f"p99 {med(tag, 'p99_ms'):.3f} ms")
for tag in ["describe-dynamodb", "start-dynamodb", "describe-1k-c1", "describe-1m-c1", "describe-1k-uncached-c1", "describe-1m-uncached-c1"]:
    row(f"{tag}, one connection", f"p50 {med(tag, 'p50_ms'):.3f} ms, p99 {med(tag, 'p99_ms'):.3f} ms")
row("DescribeBuilds / bare hyper (throughput)", f"{med('describe-1k', 'rps') / med('bare', 'rps'):.0%}", ">= 60 %")
row("same, every request in other bytes (build objects reused)", f"{med('describe-1k-distinct', 'rps') / med('bare', 'rps'):.0%}", "")
row("same, answer reuse off", f"{med('describe-1k-uncached', 'rps') / med('bare', 'rps'):.0%}", "")
row("DescribeBuilds / moto GetItem (throughput)", f"{med('describe-1k', 'rps') / med('moto', 'rps'):,.0f}x", ">= 100x")
row("same, answer reuse off", f"{med('describe-1k-uncached', 'rps') / med('moto', 'rps'):,.0f}x", "")
row("DescribeBuilds p99 / moto p99", f"1/{med('moto', 'p99_ms') / med('describe-1k', 'p99_ms'):,.0f}", "<= 1/20")
row("same, answer reuse off", f"1/{med('moto', 'p99_ms') / med('describe-1k-uncached', 'p99_ms'):,.0f}", "")
row("durable StartBuild / DescribeBuilds (throughput)", f"{med('start', 'rps') / med('describe-1k', 'rps'):.0%}", ">= 25 %")
row("same, against DescribeBuilds with reuse off", f"{med('start', 'rps') / med('describe-1k-uncached', 'rps'):.0%}", "")
row("10^6 / 10^3 stored, p50 one connection, reuse off",
    f"{med('describe-1m-uncached-c1', 'p50_ms') / med('describe-1k-uncached-c1', 'p50_ms'):.2f}x", "<= 1.5x")
row("10^6 / 10^3 stored, p50 concurrency 16, reuse on",
    f"{med('describe-1m', 'p50_ms') / med('describe-1k', 'p50_ms'):.2f}x", "<= 1.5x")
row("start-up to first answer", f"{med('startup', 'startup_ms'):.1f} ms", "<= 50 ms")
row("RSS idle (10^3 / 10^6 stored)", f"{med('idle-1k', 'rss_mb'):.1f} / {med('idle-1m', 'rss_mb'):.1f} MB", "<= 30 MB")
peak = max(med(t, "peak_rss_mb") for t in ["load-1k", "load-1k-uncached", "load-1m", "load-1m-uncached", "load-start"])
row("RSS peak under load (any run above)", f"{peak:.1f} MB", "<= 100 MB")
row("RSS peak with abuse", f"{med('mem-abused-end', 'peak_rss_mb'):.1f} MB", "bounded")
row("p99 of well-behaved clients, calm / abused",
    f"{med('describe-calm', 'p99_ms'):.3f} / {med('describe-abused', 'p99_ms'):.3f} ms", "")
row("harness round trip p50, build / scan",
    f"{med('harness-build', 'p50_ms'):.2f} / {med('harness-scan', 'p50_ms'):.2f} ms", "<= 10 ms")
row("durable StartChangeSet, concurrency 16", f"{med('start-change-set', 'rps'):,.0f} req/s, p99 {med('start-change-set', 'p99_ms'):.3f} ms",
    ">= the StartBuild figure")
row("same / durable StartBuild", f"{med('start-change-set', 'rps') / med('start', 'rps'):.0%}", ">= 100 %")
row("DescribeEntity (50 versions) / bare hyper, same bytes",
    f"{med('describe-entity-50', 'rps'):,.0f} / {med('bare-describe-entity-50', 'rps'):,.0f} req/s = "
    f"{med('describe-entity-50', 'rps') / med('bare-describe-entity-50', 'rps'):.0%}", ">= 50 %")
row("ListEntities page of 10 (10^4 products) / bare hyper, same bytes",
    f"{med('list-entities-10k', 'rps'):,.0f} / {med('bare-list-entities-10k', 'rps'):,.0f} req/s = "
    f"{med('list-entities-10k', 'rps') / med('bare-list-entities-10k', 'rps'):.0%}", ">= 50 %")
row("ListEntities p50, 10^4 / 10 products (page of 10)",
    f"{med('list-entities-10k', 'p50_ms') / med('list-entities-10', 'p50_ms'):.2f}x "
    f"({med('list-entities-10k', 'rps'):,.0f} vs {med('list-entities-10', 'rps'):,.0f} req/s)", "as fast")
row("metrics + access log on / off, DescribeBuilds (reuse on), same run",
    f"{med('obs-on-128', 'rps'):,.0f} / {med('obs-off-128', 'rps'):,.0f} req/s = "
    f"{med('obs-on-128', 'rps') / med('obs-off-128', 'rps'):.1%}", ">= 95 %")
row("same, answer reuse off",
    f"{med('obs-on-0', 'rps'):,.0f} / {med('obs-off-0', 'rps'):,.0f} req/s = "
    f"{med('obs-on-0', 'rps') / med('obs-off-0', 'rps'):.1%}", ">= 95 %")
row("RSS after load, metrics on / off (reuse on)",
    f"{med('mem-obs-on-128', 'rss_mb'):.1f} / {med('mem-obs-off-128', 'rss_mb'):.1f} MB", "<= 100 MB")
row("wrk (second load generator), 16 connections: DescribeBuilds / bare hyper",
    f"{med('wrk-describe', 'rps'):,.0f} / {med('wrk-bare', 'rps'):,.0f} req/s = {med('wrk-describe', 'rps') / med('wrk-bare', 'rps'):.0%}",
    ">= 80 % (issue 18)")
row("same, answer reuse off",
    f"{med('wrk-describe-uncached', 'rps'):,.0f} req/s = {med('wrk-describe-uncached', 'rps') / med('wrk-bare', 'rps'):.0%}",
    ">= 50 % (issue 18)")
row("server CPU a request during the wrk runs (user + system, all threads): bare hyper / reuse on / reuse off",
    f"{med('wrk-bare', 'server_cpu_us_per_req'):.1f} / {med('wrk-describe', 'server_cpu_us_per_req'):.1f} / "
    f"{med('wrk-describe-uncached', 'server_cpu_us_per_req'):.1f} µs = 1 / "
    f"{med('wrk-describe', 'server_cpu_us_per_req') / med('wrk-bare', 'server_cpu_us_per_req'):.1f} / "
    f"{med('wrk-describe-uncached', 'server_cpu_us_per_req') / med('wrk-bare', 'server_cpu_us_per_req'):.1f}", "")
row("wrk p99, DescribeBuilds / bare hyper",
    f"{med('wrk-describe', 'p99_ms'):.3f} / {med('wrk-bare', 'p99_ms'):.3f} ms = {med('wrk-describe', 'p99_ms') / med('wrk-bare', 'p99_ms'):.1f}x",
    "<= 1.5x (issue 18)")
row("loadgen p99 at 16 connections, DescribeBuilds / bare hyper",
    f"{med('describe-1k', 'p99_ms') / med('bare', 'p99_ms'):.1f}x (reuse on), "
    f"{med('describe-1k-uncached', 'p99_ms') / med('bare', 'p99_ms'):.1f}x (reuse off)", "<= 1.5x (issue 18)")
instructions = [line for line in open(sys.argv[1]) if line.startswith("[instructions]")]
for line in instructions:
    shape = re.search(r"shape=(\w+)", line).group(1)
    ir = int(re.search(r"ir_per_request=(\d+)", line).group(1))
    row(f"instructions a request (callgrind, release): {shape}", f"{ir:,}", "")
