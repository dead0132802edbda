"""wrk, a second and independent load generator, beside examples/loadgen.rs.

    python3 scripts/bench_wrk.py lua ENDPOINT OUT.lua     # a wrk script sending one signed DescribeBuilds
    python3 scripts/bench_wrk.py parse TAG [CPU_TICKS CLK_TCK] < wrk-output   # wrk's report as a bench line
(CPU_TICKS: the server's user + system clock ticks over the run, from /proc/PID/stat; the line
then also says the server's CPU time a request.)

The request is the same as loadgen's `describe` ({"MaxResults": 25}, signed by botocore's own
SigV4 signer); a signature stays valid for 5 minutes, far longer than a run. The bare hyper
server answers it too (it ignores the request).
"""

import json
import re
import sys

import botocore.auth
import botocore.awsrequest
import botocore.credentials


def lua(endpoint, out):
    body = '{"MaxResults": 25}'
    req = botocore.awsrequest.AWSRequest(method="POST", url=endpoint + "/", data=body, headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "AWSMPImageBuilding.DescribeBuilds"})
    creds = botocore.credentials.Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    botocore.auth.SigV4Auth(creds, "aws-marketplace", "us-east-1").add_auth(req)
    headers = "".join(f'wrk.headers[{json.dumps(k)}] = {json.dumps(v)}\n' for k, v in req.headers.items())
    with open(out, "w") as f:
        f.write(f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\n{headers}')


def seconds(v, unit):
    return float(v) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def parse(tag, text, cpu_ticks=None, clk_tck=None):
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", text).group(1))
    requests = int(re.search(r"(\d+) requests in", text).group(1))
    cpu = ""
    if cpu_ticks is not None and requests:
        cpu = f" server_cpu_us_per_req={int(cpu_ticks) / int(clk_tck) / requests * 1e6:.1f}"
    lat = {p: seconds(v, u) * 1000 for p, v, u in re.findall(r"^\s+(50|99)%\s+([0-9.]+)(us|ms|s|m)\s*$", text, re.M)}
    errors = sum(int(x) for x in re.findall(r"(?:Non-2xx or 3xx responses|Socket errors:.*?timeout)\s*:?\s*(\d+)", text))
    print(f"[{tag}] tool=wrk rps={rps:.0f} p50_ms={lat.get('50', float('nan')):.3f} "
          f"p99_ms={lat.get('99', float('nan')):.3f} errors={errors}{cpu}")


if __name__ == "__main__":
    if sys.argv[1] == "lua":
        lua(sys.argv[2], sys.argv[3])
    else:
        parse(sys.argv[2], sys.stdin.read(), *sys.argv[3:5])
