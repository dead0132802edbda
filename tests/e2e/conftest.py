"""End-to-end harness: starts the real `imagebuild` binary on a free port and drives it with
the real aws CLI (after `aws configure add-model`) and boto3 (AWS_DATA_PATH=models)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import botocore.config
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python"))
from imagebuild_pytest.server import wait_until_listening  # noqa: E402  (the plugin's own)
MODELS = ROOT / "models"
BIN = Path(os.environ.get("IMAGEBUILD_BIN", ROOT / "target" / "debug" / "imagebuild"))
ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
GOOD_FO = "fo-ids4xf7qagwyc"
LINUX_AMI = "ami-0a1b2c3d4e5f60718"
SCAN_API_VERSION = "2021-01-15"
SCAN_MODEL_DIR = f"marketplaceamiscanning/{SCAN_API_VERSION}"
CONTROL_TOKEN = "e2e-control-token"
ROLE = "arn:aws:iam::123456789012:role/MarketplaceAmiIngestion"
WINDOWS_AMI = "ami-0b1b2c3d4e5f60718"


class Server:
    """One running `imagebuild serve` process."""

    def __init__(self, args, env=None):
        self.args = args
        full_env = dict(os.environ, IMAGEBUILD_LOG="info")
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            [str(BIN), "serve", "--listen", "127.0.0.1:0", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=full_env,
        )
        self.log = []
        self.endpoint = wait_until_listening(self.proc, self.log)

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                return self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                raise
        return self.proc.returncode


FAST = ["--provision-seconds", "0", "--install-seconds", "0", "--imaging-seconds", "0"]


@pytest.fixture
def start_server():
    servers = []

    def _start(*args, env=None):
        s = Server(list(args), env)
        servers.append(s)
        return s

    yield _start
    for s in servers:
        s.stop()


@pytest.fixture
def server(start_server):
    return start_server("--in-memory", *FAST)


def make_client(endpoint, region="us-east-1", **kw):
    session = boto3.session.Session(
        aws_access_key_id=kw.pop("access_key", ACCESS_KEY),
        aws_secret_access_key=kw.pop("secret_key", SECRET_KEY),
        aws_session_token=kw.pop("aws_session_token", None),
        region_name=region,
    )
    session._loader.search_paths.insert(0, str(MODELS))
    cfg = botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"})
    return session.client("marketplaceimagebuild", endpoint_url=endpoint, config=cfg, **kw)


@pytest.fixture
def client(server):
    return make_client(server.endpoint)


def make_scan_client(endpoint, region="us-east-1", **kw):
    session = boto3.session.Session(
        aws_access_key_id=kw.pop("access_key", ACCESS_KEY),
        aws_secret_access_key=kw.pop("secret_key", SECRET_KEY),
        region_name=region,
    )
    session._loader.search_paths.insert(0, str(MODELS))
    cfg = botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"})
    return session.client("marketplaceamiscanning", endpoint_url=endpoint, config=cfg, **kw)


def control(server, method, path, body=None):
    """Calls the control plane (servers started with --control-token CONTROL_TOKEN)."""
    import urllib.request
    req = urllib.request.Request(
        f"{server.endpoint}/_imagebuild/{path}", method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"X-Imagebuild-Control-Token": CONTROL_TOKEN})
    with urllib.request.urlopen(req, timeout=10) as r:
        text = r.read().decode()
        return json.loads(text) if text else {}


SCAN_FAST = ["--ingest-seconds", "0", "--scan-seconds", "0", "--control-token", CONTROL_TOKEN]


@pytest.fixture
def scan_server(start_server):
    return start_server("--in-memory", *FAST, *SCAN_FAST)


@pytest.fixture
def scans(scan_server):
    return make_scan_client(scan_server.endpoint)


def wait_scans(client, scan_ids, timeout=20):
    """Polls DescribeScans until none of `scan_ids` is Ingesting or Scanning."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = client.describe_scans(ScanIds=scan_ids)["Scans"]
        if len(got) == len(scan_ids) and all(s["Status"] not in ("Ingesting", "Scanning") for s in got):
            return {s["ScanId"]: s for s in got}
        time.sleep(0.05)
    raise AssertionError(f"scans {scan_ids} did not finish")


@pytest.fixture(scope="session")
def aws_home(tmp_path_factory):
    """A HOME where the model was installed with `aws configure add-model`, as users do."""
    home = tmp_path_factory.mktemp("home")
    env = cli_env(home)
    subprocess.run(
        [aws_bin(), "configure", "add-model",
         "--service-model", f"file://{MODELS / 'marketplaceimagebuild/2017-12-15/service-2.json'}",
         "--service-name", "marketplaceimagebuild"],
        check=True, env=env, capture_output=True, text=True,
    )
    subprocess.run(
        [aws_bin(), "configure", "add-model",
         "--service-model", f"file://{MODELS / SCAN_MODEL_DIR / 'service-2.json'}",
         "--service-name", "marketplaceamiscanning"],
        check=True, env=env, capture_output=True, text=True,
    )
    for service, version in (("marketplaceimagebuild", "2017-12-15"), ("marketplaceamiscanning", SCAN_API_VERSION)):
        target = home / ".aws/models" / service / version
        assert (target / "service-2.json").exists()
        # add-model writes only service-2.json; paging and waiters need their files beside it.
        for extra in ("paginators-1.json", "waiters-2.json"):
            shutil.copy(MODELS / service / version / extra, target / extra)
    return home


def aws_bin():
    cand = Path(sys.executable).parent / "aws"
    return str(cand) if cand.exists() else "aws"


def cli_env(home):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(HOME=str(home), AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
               AWS_DEFAULT_REGION="us-east-1", AWS_MAX_ATTEMPTS="1")
    return env


@pytest.fixture
def scan_cli(aws_home, scan_server):
    def run(*args, check=True):
        p = subprocess.run(
            [aws_bin(), "marketplaceamiscanning", *args, "--endpoint-url", scan_server.endpoint, "--output", "json"],
            env=cli_env(aws_home), capture_output=True, text=True, timeout=120,
        )
        if check and p.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} failed ({p.returncode}): {p.stderr}")
        return p
    return run


@pytest.fixture
def cli(aws_home, server):
    def run(*args, check=True, endpoint=None):
        p = subprocess.run(
            [aws_bin(), "marketplaceimagebuild", *args, "--endpoint-url", endpoint or server.endpoint, "--output", "json"],
            env=cli_env(aws_home), capture_output=True, text=True, timeout=120,
        )
        if check and p.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} failed ({p.returncode}): {p.stderr}")
        return p
    return run


def loads(p):
    return json.loads(p.stdout) if p.stdout.strip() else {}


def wait_terminal(client, build_id, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        b = client.describe_builds(BuildIds=[build_id])["Builds"][0]
        if b["Status"] != "InProgress":
            return b
        time.sleep(0.05)
    raise AssertionError(f"{build_id} stayed InProgress")


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def moto():
    """A real moto_server (SNS, SQS, DynamoDB) on a free loopback port, stopped by PID."""
    import urllib.request
    port = free_port()
    exe = Path(sys.executable).parent / "moto_server"
    proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while True:
        try:
            urllib.request.urlopen(endpoint + "/moto-api/", timeout=1).read()
            break
        except Exception:
            if time.time() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("moto_server did not start")
            time.sleep(0.1)
    yield endpoint
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
