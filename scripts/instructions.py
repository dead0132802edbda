"""Instructions per request, counted by valgrind's callgrind: repeatable where timings are not.

    python3 scripts/instructions.py TARGET_DIR [--check BUDGET_JSON] [--write BUDGET_JSON]

TARGET_DIR is target/debug or target/release (its `imagebuild` and examples `seed_builds`,
`loadgen`). For each shape the server runs under callgrind on a data dir of 1,000 builds; after
a warm-up the counters are zeroed, N requests are sent by loadgen on one connection, and the
counters are dumped: everything the process executed for those N requests (every thread: the
request path, the group commit, the idle worker) divided by N. With --check, a shape costing
more than `margin` times its budget fails (exit 1): a change that doubles the work is caught
without timing anything. Budgets are per build profile.
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHAPES = {
    # name: (loadgen op, extra serve args, requests, loadgen trailing args)
    "describe_builds_reuse_off": ("describe", ["--response-cache-entries", "0"], 40, ["25"]),
    "describe_builds_reuse_on": ("describe", [], 40, ["25"]),
    "start_build": ("start", [], 40, []),
}
# Checked against budgets; reuse-on depends on when each second's answer is rendered, so it is
# reported only.
GUARDED = ("describe_builds_reuse_off", "start_build")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the server exited under valgrind")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the server did not open its port under valgrind")


def total_ir(path):
    for line in Path(path).read_text().splitlines():
        if line.startswith("summary:") or line.startswith("totals:"):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def measure(target, name, data_dir, work):
    op, extra, n, tail = SHAPES[name]
    port = free_port()
    out = Path(work) / f"callgrind.{name}"
    proc = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.%p", str(target / "imagebuild"), "serve",
         "--listen", f"127.0.0.1:{port}", "--data-dir", str(data_dir), "--provision-seconds", "3600",
         "--max-concurrent-builds", "1000000", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc)
        url = f"http://127.0.0.1:{port}"
        loadgen = [str(target / "examples" / "loadgen"), "run", url, op, "1"]
        subprocess.run([*loadgen, "10", *tail], check=True, capture_output=True, timeout=600)
        subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True, capture_output=True, timeout=120)
        subprocess.run([*loadgen, str(n), *tail], check=True, capture_output=True, timeout=1200)
        subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True, capture_output=True, timeout=120)
        dumps = sorted(Path(work).glob(f"callgrind.{name}.{proc.pid}.*"), key=os.path.getmtime)
        if not dumps:
            raise RuntimeError(f"callgrind wrote no dump for {name}")
        return total_ir(dumps[-1]) // n
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", type=Path)
    p.add_argument("--check", type=Path)
    p.add_argument("--write", type=Path)
    args = p.parse_args()
    if not shutil.which("valgrind"):
        sys.exit("valgrind is not installed (Debian package valgrind)")
    profile = args.target.name
    with tempfile.TemporaryDirectory() as work:
        data = Path(work) / "data"
        subprocess.run([str(args.target / "examples" / "seed_builds"), str(data), "1000"], check=True,
                       capture_output=True)
        got = {name: measure(args.target, name, data, work) for name in SHAPES}
    for name, ir in got.items():
        print(f"[instructions] profile={profile} shape={name} ir_per_request={ir}")
    if args.write:
        budgets = json.loads(args.write.read_text()) if args.write.exists() else {"margin": 2.0}
        budgets[profile] = got
        args.write.write_text(json.dumps(budgets, indent=2) + "\n")
    if args.check:
        budgets = json.loads(args.check.read_text())
        margin, mine = budgets["margin"], budgets[profile]
        over = [f"{n}: {got[n]:,} instructions a request > {margin} x budget {mine[n]:,}"
                for n in GUARDED if got[n] > margin * mine[n]]
        for n in GUARDED:
            print(f"{n}: {got[n]:,} / budget {mine[n]:,} ({got[n] / mine[n]:.2f}x, limit {margin}x)")
        if over:
            sys.exit("instruction budget exceeded:\n" + "\n".join(over))


if __name__ == "__main__":
    main()
