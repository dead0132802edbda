"""A running `imagebuild serve` and its control plane, for tests (no pytest needed here)."""

import json
import os
import re
import shutil
import subprocess
import sysconfig
import tempfile
import threading
import urllib.parse
import urllib.request
from pathlib import Path

import boto3
import botocore.config

HERE = Path(__file__).resolve().parent
DEV_KEY = "AKIAIOSFODNN7EXAMPLE"
DEV_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
# Stages last an hour: nothing moves until a test advances it or asks for "immediate".
HOUR_STEPS = ["--provision-seconds", "3600", "--install-seconds", "3600", "--imaging-seconds", "3600",
              "--ingest-seconds", "3600", "--scan-seconds", "3600", "--change-set-seconds", "3600",
              "--review-seconds", "3600"]


def binary():
    """IMAGEBUILD_BIN; else the binary this wheel installed beside the interpreter; else
    `imagebuild` on PATH; else a checkout's target/debug build."""
    if os.environ.get("IMAGEBUILD_BIN"):
        return os.environ["IMAGEBUILD_BIN"]
    beside = Path(sysconfig.get_path("scripts")) / "imagebuild"
    if beside.exists():
        return str(beside)
    return shutil.which("imagebuild") or str(HERE.parents[1] / "target" / "debug" / "imagebuild")


def models():
    """IMAGEBUILD_MODELS; else the models shipped in this package (botocore's layout)."""
    return os.environ.get("IMAGEBUILD_MODELS") or str(HERE / "models")


def wait_until_listening(proc, log, timeout=30):
    """Collects `proc`'s stderr lines into `log` (for ever, on a thread) and returns the
    endpoint of its "listening on" line; kills it if that line does not come."""
    ready, found = threading.Event(), []

    def pump():
        for line in proc.stderr:
            log.append(line)
            m = re.search(r"listening on (http://[0-9.]+:\d+)", line)
            if m and not ready.is_set():
                found.append(m.group(1))
                ready.set()
        ready.set()

    threading.Thread(target=pump, daemon=True).start()
    if not ready.wait(timeout) or not found:
        proc.kill()
        raise RuntimeError("imagebuild did not start:\n" + "".join(log))
    return found[0]


class ImageBuild:
    """`imagebuild serve` on a free loopback port, with an in-memory store (or, with
    `store="disk"`, a temporary data directory) and `world` (a dict; None: the demo world)."""

    def __init__(self, world=None, extra_args=(), store="memory"):
        self._dir = tempfile.TemporaryDirectory(prefix="imagebuild-")
        self.token = "pytest-control-token"
        args = [binary(), "serve", "--listen", "127.0.0.1:0", "--control-token", self.token, *HOUR_STEPS]
        args += ["--in-memory"] if store == "memory" else ["--data-dir", str(Path(self._dir.name) / "data")]
        if world is not None:
            path = Path(self._dir.name) / "world.json"
            path.write_text(json.dumps(world))
            args += ["--world", str(path)]
        self.proc = subprocess.Popen([*args, *extra_args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True)
        self.log = []
        self.endpoint = wait_until_listening(self.proc, self.log)
        self.initial_world = self.control("GET", "world")

    def client(self, region="us-east-1", access_key=DEV_KEY, secret_key=DEV_SECRET, service="marketplaceimagebuild"):
        """A boto3 client of this server: `marketplaceimagebuild` (default) or `marketplaceamiscanning`."""
        session = boto3.session.Session(aws_access_key_id=access_key, aws_secret_access_key=secret_key,
                                        region_name=region)
        session._loader.search_paths.insert(0, models())
        # No retries: an injected fault or scripted error is what the test sees, once.
        return session.client(service, endpoint_url=self.endpoint,
                              config=botocore.config.Config(retries={"total_max_attempts": 1, "mode": "standard"}))

    def scan_client(self, **kw):
        """A boto3 `marketplaceamiscanning` client for this server."""
        return self.client(service="marketplaceamiscanning", **kw)

    def catalog_client(self, access_key=DEV_KEY, secret_key=DEV_SECRET):
        """boto3's own `marketplace-catalog` client (its model ships in botocore) for this server."""
        return boto3.client("marketplace-catalog", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=access_key, aws_secret_access_key=secret_key,
                            config=botocore.config.Config(retries={"total_max_attempts": 1, "mode": "standard"}))

    def control(self, method, path, body=None):
        """Calls a control-plane endpoint and returns its JSON answer (raises on an error status)."""
        req = urllib.request.Request(f"{self.endpoint}/_imagebuild/{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"X-Imagebuild-Control-Token": self.token})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read() or b"{}")

    def advance(self, build_id, steps=1):
        """Moves an in-progress build up to `steps` stages on (stops when it ends); returns its state."""
        return self.control("POST", "advance", {"BuildId": build_id, "Steps": steps})

    def advance_scan(self, scan_id, steps=1):
        """Moves an in-progress scan up to `steps` steps on (stops when it ends); returns its state."""
        return self.control("POST", "advance", {"ScanId": scan_id, "Steps": steps})

    def advance_change_set(self, change_set_id, steps=1):
        """Moves a change set up to `steps` steps on (PREPARING → APPLYING → end); returns its status."""
        return self.control("POST", "advance", {"ChangeSetId": change_set_id, "Steps": steps})

    def review(self, outcome, message=None):
        """How Seller Operations decides UpdateVisibility: "Approve", "Reject" (with message) or "Hold"."""
        body = {"Outcome": outcome}
        if message is not None:
            body["Message"] = message
        return self.control("PUT", "review", body)

    def transition(self, mode, resource=None, seconds=None):
        """Sets how builds, scans and/or change sets ("build", "scan", "changeset") move:
        "immediate", "time" (with seconds) or "manual"."""
        body = {"Mode": mode}
        if resource is not None:
            body["Resource"] = resource
        if seconds is not None:
            body["Seconds"] = seconds
        return self.control("POST", "transitions", body)

    def script(self, rules):
        """Replaces the scripted outcomes (see the README's control-plane section)."""
        return self.control("PUT", "outcomes", {"Rules": rules})

    def inject(self, rules):
        """Replaces the injected faults."""
        return self.control("PUT", "faults", {"Rules": rules})

    def reset(self, account_id=None):
        """Deletes the records (of one account, or all); harness settings stay."""
        return self.control("POST", "reset", {} if account_id is None else {"AccountId": account_id})

    def fresh(self, world=None):
        """Back to a just-started server: no records, harness settings and clock as at start, and
        `world` (None: the world it started with)."""
        self.control("POST", "reset", {"Harness": True})
        self.control("PUT", "world", self.initial_world if world is None else world)

    def advance_clock(self, seconds):
        return self.control("POST", "clock", {"AdvanceSeconds": seconds})

    def merge_world(self, patch):
        return self.control("PATCH", "world", patch)

    def put_world(self, world):
        """Replaces the world."""
        return self.control("PUT", "world", world)

    def notifications(self, topic_arn=None):
        q = "" if topic_arn is None else "?TopicArn=" + urllib.parse.quote(topic_arn, safe="")
        with urllib.request.urlopen(f"{self.endpoint}/_imagebuild/notifications{q}", timeout=30) as r:
            return json.loads(r.read())["Notifications"]

    def metrics(self):
        """The Prometheus exposition, as text."""
        with urllib.request.urlopen(f"{self.endpoint}/_imagebuild/metrics", timeout=30) as r:
            return r.read().decode()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)
        self._dir.cleanup()
