"""pytest fixtures for projects that test against imagebuild — usable as-is.

Copy this file next to your tests (or put its folder on sys.path) and import the fixtures:

    from imagebuild_pytest import imagebuild, imagebuild_client, imagebuild_world  # noqa: F401

    def test_my_code_builds_an_image(imagebuild_client, imagebuild):
        build_id = my_code.start(imagebuild_client)
        imagebuild.advance(build_id, steps=3)          # no sleeping
        assert imagebuild_client.describe_builds(BuildIds=[build_id])["Builds"][0]["Status"] == "Succeeded"

    def test_my_code_handles_a_failed_scan(imagebuild):
        scans = imagebuild.scan_client()
        imagebuild.script([{"Resource": "scan", "Status": "Failed", "ErrorCode": "OsLoginFailed"}])
        scan_id = my_code.submit(scans)
        imagebuild.advance_scan(scan_id, steps=2)
        assert scans.describe_scans(ScanIds=[scan_id])["Scans"][0]["ErrorDetail"]["Code"] == "OsLoginFailed"

    def test_my_release_pipeline(imagebuild):
        catalog = imagebuild.catalog_client()           # boto3's own marketplace-catalog client
        cs = my_pipeline.add_version(catalog)           # StartChangeSet
        imagebuild.advance_change_set(cs, steps=2)      # PREPARING → APPLYING → SUCCEEDED
        assert catalog.describe_change_set(Catalog="AWSMarketplace", ChangeSetId=cs)["Status"] == "SUCCEEDED"

Builds, scans and change sets stay where they are until advanced (step lengths of an hour);
use `imagebuild.transition("immediate")` for the worker to run them at once. An AMI version's
change set waits for its scan: `transition("immediate", resource="scan")` or `advance_scan`.

Override `imagebuild_world` in your conftest to load your own fixtures (a dict in the world-file
shape, see models/world.schema.json); None means the built-in demo world.

Environment: IMAGEBUILD_BIN (default: `imagebuild` on PATH, else ../target/debug/imagebuild
beside this file), IMAGEBUILD_MODELS (default: ../models beside this file).
"""

import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import urllib.request
from pathlib import Path

import boto3
import botocore.config
import pytest

HERE = Path(__file__).resolve().parent
DEV_KEY = "AKIAIOSFODNN7EXAMPLE"
DEV_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def _binary():
    if os.environ.get("IMAGEBUILD_BIN"):
        return os.environ["IMAGEBUILD_BIN"]
    return shutil.which("imagebuild") or str(HERE.parent / "target" / "debug" / "imagebuild")


class ImageBuild:
    """A running `imagebuild serve` (in memory, free loopback port) and its control plane."""

    def __init__(self, world=None, extra_args=()):
        self._dir = tempfile.TemporaryDirectory()
        self.token = "pytest-control-token"
        args = [_binary(), "serve", "--listen", "127.0.0.1:0", "--in-memory", "--control-token", self.token,
                "--provision-seconds", "3600", "--install-seconds", "3600", "--imaging-seconds", "3600",
                "--ingest-seconds", "3600", "--scan-seconds", "3600", "--change-set-seconds", "3600",
                "--review-seconds", "3600", *extra_args]
        if world is not None:
            path = Path(self._dir.name) / "world.json"
            path.write_text(json.dumps(world))
            args += ["--world", str(path)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        ready, self.endpoint, self.log = threading.Event(), None, []

        def pump():
            for line in self.proc.stderr:
                self.log.append(line)
                m = re.search(r"listening on (http://[0-9.]+:\d+)", line)
                if m and not ready.is_set():
                    self.endpoint = m.group(1)
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(30) or not self.endpoint:
            self.proc.kill()
            raise RuntimeError("imagebuild did not start:\n" + "".join(self.log))

    def client(self, region="us-east-1", access_key=DEV_KEY, secret_key=DEV_SECRET, service="marketplaceimagebuild"):
        """A boto3 client of this server: `marketplaceimagebuild` (default) or `marketplaceamiscanning`."""
        session = boto3.session.Session(aws_access_key_id=access_key, aws_secret_access_key=secret_key, region_name=region)
        session._loader.search_paths.insert(0, os.environ.get("IMAGEBUILD_MODELS", str(HERE.parent / "models")))
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
        return self.control("POST", "reset", {} if account_id is None else {"AccountId": account_id})

    def advance_clock(self, seconds):
        return self.control("POST", "clock", {"AdvanceSeconds": seconds})

    def merge_world(self, patch):
        return self.control("PATCH", "world", patch)

    def notifications(self, topic_arn=None):
        q = "" if topic_arn is None else "?TopicArn=" + urllib.request.quote(topic_arn, safe="")
        with urllib.request.urlopen(f"{self.endpoint}/_imagebuild/notifications{q}", timeout=30) as r:
            return json.loads(r.read())["Notifications"]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)
        self._dir.cleanup()


@pytest.fixture
def imagebuild_world():
    """The world to load; override in your conftest. None: the built-in demo world."""
    return None


@pytest.fixture
def imagebuild(imagebuild_world):
    server = ImageBuild(world=imagebuild_world)
    yield server
    server.stop()


@pytest.fixture
def imagebuild_client(imagebuild):
    return imagebuild.client()
