"""Where each request shape's instructions go (callgrind, one connection, after a warm-up):

    python3 scripts/profile_shapes.py target/release

For every shape, the server runs under callgrind on a prepared data dir; counters are zeroed
after 10 requests and dumped after N more; `callgrind_annotate --inclusive=yes` then gives the
inclusive cost of the functions that make up each part of a request, divided by N. Parts
overlap nowhere except that "render" excludes "URL signing". Instructions in the kernel (the
socket write itself) are not counted by callgrind; `perf` sees those (docs/benchmarks.md).
Valgrind hides SHA-NI, so SHA-256 runs its software path here: natively HMACs cost far less.
"""

import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from instructions import free_port, wait_port  # noqa: E402

PARTS = {
    "SigV4 verification": [r"imagebuild::auth::sigv4::Verifier<C>::verify\b"],
    "JSON parse + model validation": [r"imagebuild::protocol::service::parse_json\b",
                                      r"imagebuild::model::Model::validate_input\b",
                                      r"imagebuild::protocol::rest::\w*parse\w*\b"],
    "store read/write + decode": [r"<imagebuild::store::instrumented::Instrumented as imagebuild::store::Store>::\w+::\{\{closure\}\}$"],
    "SQLite group commit (writer thread)": [r"imagebuild::store::sqlite::Inner::commit_until_empty\b"],
    "render (without URL signing)": [r"imagebuild::ops::builds::render_page\b", r"imagebuild::ops::catalog::render::\w+\b",
                                     r"imagebuild::ops::catalog::listing::\w*render\w*\b", r"serde_json::ser::to_vec\b"],
    "URL signing": [r"imagebuild::ops::logs::UrlSigner::urls\b", r"imagebuild::ops::logs::UrlSigner::sign\b",
                    r"imagebuild::ops::logs::UrlSigner::signature_with\b", r"imagebuild::encoding::hex\b",
                    r"imagebuild::ops::paging::encode\b"],
    "access log + metrics": [r"imagebuild::protocol::service::access_line\b", r"imagebuild::protocol::service::record\b"],
    "HTTP (hyper read/parse/write)": [r"hyper::proto::h1::conn::Conn<I,B,T>::poll_read_head\b",
                                      r"hyper::proto::h1::conn::Conn<I,B,T>::poll_flush\b",
                                      r"hyper::proto::h1::role::\w+::encode\b"],
}


def inclusive(dump):
    out = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(dump)],
                         capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        m = re.match(r"\s*([0-9,]+) \([ 0-9.]+%\)\s+(\S.*?)(?: \[.*\])?$", line)
        if m:
            name = m.group(2).split(":", 1)[-1]
            rows.append((int(m.group(1).replace(",", "")), name))
    total = next(n for n, name in rows if name.endswith("PROGRAM TOTALS") or "PROGRAM TOTALS" in name)
    return total, rows


def parts(rows):
    got = {}
    for part, patterns in PARTS.items():
        best = {}
        for n, name in rows:
            for p in patterns:
                if re.search(p, name):
                    best[p] = max(best.get(p, 0), n)
        got[part] = sum(best.values())
    got["render (without URL signing)"] -= min(got["URL signing"], got["render (without URL signing)"])
    return got


def run(target, data, op, n, extra=(), env=None, tail=()):
    port = free_port()
    with tempfile.TemporaryDirectory() as work:
        proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={work}/cg.%p", str(target / "imagebuild"), "serve",
             "--listen", f"127.0.0.1:{port}", "--data-dir", str(data), "--provision-seconds", "3600",
             "--max-concurrent-builds", "1000000", "--max-open-change-sets", "1000000", "--change-set-seconds", "3600",
             *extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(port, proc)
            loadgen = [str(target / "examples" / "loadgen"), "run", f"http://127.0.0.1:{port}", op, "1"]
            subprocess.run([*loadgen, "10", *tail], check=True, capture_output=True, env=env, timeout=600)
            subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True, capture_output=True)
            subprocess.run([*loadgen, str(n), *tail], check=True, capture_output=True, env=env, timeout=1200)
            subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True, capture_output=True)
            dump = next(Path(work).glob(f"cg.{proc.pid}.1"))
            total, rows = inclusive(dump)
        finally:
            proc.terminate()
            proc.wait(60)
    return total // n, {k: v // n for k, v in parts(rows).items()}


def catalog_data(target, work):
    """A data dir with 200 products and one product of 50 versions; returns (dir, entity id)."""
    import os
    data = Path(work) / "catalog"
    port = free_port()
    proc = subprocess.Popen([str(target / "imagebuild"), "serve", "--listen", f"127.0.0.1:{port}", "--data-dir",
                             str(data), "--change-set-seconds", "0", "--max-open-change-sets", "1000000"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc)
        subprocess.run([str(target / "examples" / "loadgen"), "run", f"http://127.0.0.1:{port}", "start-change-set",
                        "4", "200"], check=True, capture_output=True)
        here = Path(__file__).resolve().parent
        subprocess.run([sys.executable, str(here / "bench_catalog.py"), "settle", str(port)], check=True)
        entity = subprocess.run([sys.executable, str(here / "bench_catalog.py"), "versions", str(port), "50"],
                                check=True, capture_output=True, text=True).stdout.strip()
    finally:
        proc.terminate()
        proc.wait(60)
    return data, dict(os.environ, LOADGEN_ENTITY=entity)


def main():
    target = Path(sys.argv[1])
    with tempfile.TemporaryDirectory() as work:
        builds = Path(work) / "builds"
        subprocess.run([str(target / "examples" / "seed_builds"), str(builds), "1000"], check=True, capture_output=True)
        catalog, env = catalog_data(target, work)
        shapes = [
            ("DescribeBuilds 25, reuse off", builds, "describe", 40, ["--response-cache-entries", "0"], None, ["25"]),
            ("DescribeBuilds 25, each request other bytes", builds, "describe-distinct", 40, [], None, ["25"]),
            ("DescribeBuilds 25, repeated (reuse on)", builds, "describe", 40, [], None, ["25"]),
            ("StartBuild (durable)", builds, "start", 40, [], None, []),
            ("DescribeEntity, 50 versions", catalog, "describe-entity", 40, [], env, []),
            ("ListEntities, page of 10", catalog, "list-entities", 40, [], None, ["10"]),
        ]
        results = [(name, *run(target, data, op, n, extra, env, tail)) for name, data, op, n, extra, env, tail in shapes]
    cols = list(PARTS) + ["everything else (routing, the operation, tokio, allocation)"]
    for _, total, got in results:
        got[cols[-1]] = total - sum(got[c] for c in PARTS)
    print("| shape | instructions a request | " + " | ".join(cols) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in cols) + " |")
    for name, total, got in results:
        cells = [f"{got[c]:,} ({got[c] / total:.0%})" for c in cols]
        print(f"| {name} | {total:,} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
