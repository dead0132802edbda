"""Many stateless instances on one DynamoDB table, against a real DynamoDB-compatible server
(moto_server started by the fixture on a free loopback port and stopped by PID)."""

import concurrent.futures
import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import boto3
import pytest

from conftest import (BIN, CONTROL_TOKEN, GOOD_FO, LINUX_AMI, ROLE, control, free_port, make_client, make_scan_client,
                      wait_terminal)

AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}


FAST_DDB = ["--provision-seconds", "0", "--install-seconds", "0", "--imaging-seconds", "0"]


def dynamo_args(endpoint, table, *extra):
    return ["--store", "dynamodb", "--dynamodb-table", table, "--dynamodb-endpoint", endpoint, *extra]


def create_table(endpoint, table):
    p = subprocess.run([str(BIN), "dynamodb", "create-table", "--dynamodb-table", table, "--dynamodb-endpoint", endpoint],
                       env={**AWS_ENV, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p


def start(c, **kw):
    return c.start_build(FulfillmentOptionIds=[GOOD_FO], SourceImageId=LINUX_AMI, DestinationImageName="ddb image", **kw)


@pytest.fixture
def table(moto):
    name = f"ib-{uuid.uuid4().hex[:8]}"
    create_table(moto, name)
    return name


def test_create_table_is_idempotent_and_schema_is_checked(moto, start_server, tmp_path):
    name = f"ib-{uuid.uuid4().hex[:8]}"
    assert "created table" in create_table(moto, name).stderr
    assert "expected schema" in create_table(moto, name).stderr
    # a table of another shape is refused at start-up, with the reason
    ddb = boto3.client("dynamodb", endpoint_url=moto, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    ddb.create_table(TableName="wrong", BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])
    p = subprocess.run([str(BIN), "serve", "--listen", "127.0.0.1:0", *dynamo_args(moto, "wrong")],
                       env={**AWS_ENV, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    assert "key schema PK (HASH, S), SK (RANGE, S)" in p.stderr
    p = subprocess.run([str(BIN), "serve", "--listen", "127.0.0.1:0", *dynamo_args(moto, "missing-table")],
                       env={**AWS_ENV, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "imagebuild dynamodb create-table" in p.stderr


def test_full_lifecycle_on_dynamodb(moto, table, start_server):
    s = start_server(*dynamo_args(moto, table, "--provision-seconds", "0", "--install-seconds", "0", "--imaging-seconds", "0"), env=AWS_ENV)
    c = make_client(s.endpoint)
    ids = [start(c)["BuildId"] for _ in range(5)]
    for i in ids:
        assert wait_terminal(c, i)["Status"] == "Succeeded"
    pages = list(c.get_paginator("describe_builds").paginate(PaginationConfig={"PageSize": 2}))
    assert [b["BuildId"] for p in pages for b in p["Builds"]] == list(reversed(ids))
    fail = wait_terminal(c, c.start_build(FulfillmentOptionIds=["fo-demofailinstall"], SourceImageId=LINUX_AMI,
                                          DestinationImageName="ddb fail")["BuildId"])
    assert fail["ErrorDetail"]["Code"] == "InstallFailed"
    with urllib.request.urlopen(fail["StandardErrorUrl"]) as r:
        assert b"exit status 1" in r.read()
    assert [b["BuildId"] for b in c.describe_builds(Filters=[{"Name": "status", "Values": ["failed"]}])["Builds"]] == [fail["BuildId"]]


def test_two_instances_one_client_token_one_build(moto, table, start_server):
    a = start_server(*dynamo_args(moto, table, "--provision-seconds", "600"), env=AWS_ENV)
    b = start_server(*dynamo_args(moto, table, "--provision-seconds", "600"), env=AWS_ENV)
    clients = [make_client(a.endpoint), make_client(b.endpoint)]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(lambda i: start(clients[i % 2], ClientToken="one-token")["BuildId"], range(64)))
    assert len(set(ids)) == 1
    assert len(clients[0].describe_builds()["Builds"]) == 1
    assert len(clients[1].describe_builds()["Builds"]) == 1


def test_build_limit_holds_across_instances(moto, table, start_server):
    args = dynamo_args(moto, table, "--provision-seconds", "600", "--max-concurrent-builds", "3")
    a = start_server(*args, env=AWS_ENV)
    b = start_server(*args, env=AWS_ENV)
    clients = [make_client(a.endpoint), make_client(b.endpoint)]

    def attempt(i):
        try:
            start(clients[i % 2])
            return "ok"
        except clients[i % 2].exceptions.BuildLimitExceededException:
            return "limit"

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        outcomes = list(pool.map(attempt, range(12)))
    assert outcomes.count("ok") == 3, outcomes
    assert len(clients[0].describe_builds()["Builds"]) == 3


def test_killed_instance_build_is_finished_by_the_other(moto, table, start_server):
    args = dynamo_args(moto, table, "--provision-seconds", "1", "--install-seconds", "0", "--imaging-seconds", "0")
    a = start_server(*args, env=AWS_ENV)
    b = start_server(*args, env=AWS_ENV)
    ca = make_client(a.endpoint)
    build_id = start(ca)["BuildId"]
    a.stop(signal.SIGKILL)
    assert wait_terminal(make_client(b.endpoint), build_id, timeout=30)["Status"] == "Succeeded"


def test_outage_gives_retryable_500_and_recovers_without_restart(start_server, tmp_path):
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    exe = Path(sys.executable).parent / "moto_server"

    def run_moto():
        proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(endpoint + "/moto-api/", timeout=1).read()
                return proc
            except Exception:
                assert time.time() < deadline, "moto_server did not start"
                time.sleep(0.1)

    moto = run_moto()
    try:
        create_table(endpoint, "outage")
        s = start_server(*dynamo_args(endpoint, "outage", "--provision-seconds", "600"), env=AWS_ENV)
        c = make_client(s.endpoint)
        start(c)

        def ready():
            try:
                with urllib.request.urlopen(f"{s.endpoint}/_imagebuild/ready", timeout=30) as r:
                    return r.status, json.loads(r.read())
            except urllib.error.HTTPError as e:
                return e.code, json.loads(e.read())

        assert ready() == (200, {"Ready": True})
        moto.terminate()
        moto.wait(10)
        # not ready while the store cannot be reached; health stays liveness
        assert ready() == (503, {"Ready": False, "Reason": "store unavailable"})
        with pytest.raises(c.exceptions.InternalServerErrorException) as e:
            start(c)
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
        with pytest.raises(c.exceptions.InternalServerErrorException):
            c.describe_builds()
        # the server comes back (empty, as moto keeps nothing): the service recovers by itself
        moto = run_moto()
        create_table(endpoint, "outage")
        start(c)
        assert len(c.describe_builds()["Builds"]) == 1
        assert ready() == (200, {"Ready": True})
    finally:
        moto.terminate()
        moto.wait(10)


def test_scans_on_dynamodb_across_two_instances(moto, table, start_server):
    """The Add AMI workflow on the DynamoDB store: scans started on one instance are seen and
    finished by either; one AMI scanned from both at once gets exactly one scan in progress and
    a ScanInProgressException for the rest; resubmitting chains from the latest, a stale
    resubmission is refused; latest-only listings and ListImages agree."""
    args = dynamo_args(moto, table, "--ingest-seconds", "0", "--scan-seconds", "0")
    a = start_server(*args, env=AWS_ENV)
    b = start_server(*args, env=AWS_ENV)
    sa, sb = make_scan_client(a.endpoint), make_scan_client(b.endpoint)
    specs = [{"SourceImageId": "ami-0b1b2c3d4e5f60718", "AccessRoleArn": ROLE},
             {"SourceImageId": "ami-0a1b2c3d4e5f60718", "AccessRoleArn": ROLE, "OsUserName": "ec2-user"},
             {"SourceImageId": "ami-0d1b2c3d4e5f60718", "AccessRoleArn": ROLE, "OsUserName": "ec2-user"}]
    images = [x["SourceImageId"] for x in specs]
    started = sa.start_scans(Images=specs)["Scans"]
    ids = [x["ScanId"] for x in started]
    sb.get_waiter("scan_completed").wait(ScanIds=ids, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    done = {x["SourceImage"]["Id"]: x for x in sb.describe_scans(ScanIds=ids)["Scans"]}
    assert done["ami-0b1b2c3d4e5f60718"]["Status"] == "Succeeded"
    assert done["ami-0a1b2c3d4e5f60718"]["Status"] == "Failed"
    assert done["ami-0d1b2c3d4e5f60718"]["Status"] == "IngestionFailed"
    assert all(x["Latest"] for x in done.values())

    # Eight concurrent submissions of one AMI through both instances: one scan.
    clients = [sa, sb]

    def submit(i):
        c = clients[i % 2]
        try:
            return c.start_scans(Images=[{"SourceImageId": "ami-0a5ca0000000000a1", "AccessRoleArn": ROLE,
                                          "OsUserName": "ec2-user"}])["Scans"][0]["ScanId"]
        except c.exceptions.ScanInProgressException:
            return "in-progress"

    # Stages are zero-length, so a scan may finish between two submissions and a later one
    # start anew: what must hold is that the AMI's scans are exactly the ones handed out, and
    # only one of them is its latest.
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(submit, range(8)))
    new_ids = [o for o in outcomes if o != "in-progress"]
    assert new_ids, outcomes
    sa.get_waiter("scan_completed").wait(ScanIds=new_ids, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    of_ami = sa.describe_scans(Filters=[{"Name": "image-id", "Values": ["ami-0a5ca0000000000a1"]}])["Scans"]
    assert sorted(x["ScanId"] for x in of_ami) == sorted(new_ids)
    assert [x["Latest"] for x in of_ami].count(True) == 1

    # Resubmission chains from the latest; resubmitting an older attempt is refused.
    first = done["ami-0a1b2c3d4e5f60718"]["ScanId"]
    second = sb.resubmit_scan(ScanId=first)
    assert second["PreviousScanId"] == first and second["Attempt"] == 2
    sa.get_waiter("scan_completed").wait(ScanIds=[second["ScanId"]], WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    with pytest.raises(sa.exceptions.InvalidScanIdException):
        sa.resubmit_scan(ScanId=first)

    latest = sa.describe_scans(Filters=[{"Name": "latest-only", "Values": ["true"]}])["Scans"]
    assert {x["SourceImage"]["Id"] for x in latest} == set(images) | {"ami-0a5ca0000000000a1"}
    assert second["ScanId"] in {x["ScanId"] for x in latest} and first not in {x["ScanId"] for x in latest}
    listed = {i["ImageId"]: i for i in sb.list_images()["Images"]}
    assert listed["ami-0a1b2c3d4e5f60718"]["LatestScan"]["ScanId"] == second["ScanId"]


def test_catalog_on_dynamodb_across_two_instances(moto, table, start_server):
    """A product made through one instance is changed, restricted and built through the other;
    a change set open through one instance locks its entity for both."""
    from test_catalog_boto3 import catalog_client, change, create, package_version, wait
    args = dynamo_args(moto, table, "--change-set-seconds", "0", "--ingest-seconds", "0", "--scan-seconds", "0",
                       "--provision-seconds", "0", "--install-seconds", "0", "--imaging-seconds", "0",
                       "--control-token", CONTROL_TOKEN)
    a = start_server(*args, env=AWS_ENV)
    b = start_server(*args, env=AWS_ENV)
    ca, cb = catalog_client(a.endpoint), catalog_client(b.endpoint)
    d = wait(ca, ca.start_change_set(Catalog="AWSMarketplace", ChangeSet=[
        create("On DynamoDB"),
        change("AddDeliveryOptions", "$C.Entity.Identifier", package_version("1.0", "ddb-1")),
        change("AddRegions", "$C.Entity.Identifier", {"Regions": ["us-east-1"]}),
    ])["ChangeSetId"])
    assert d["Status"] == "SUCCEEDED", d
    product = d["ChangeSet"][0]["Entity"]["Identifier"]
    assert wait(cb, cb.start_change_set(Catalog="AWSMarketplace", ChangeSet=[
        change("AddDeliveryOptions", product, package_version("1.1", "ddb-2"))])["ChangeSetId"])["Status"] == "SUCCEEDED"
    doc = cb.describe_entity(Catalog="AWSMarketplace", EntityId=product)["DetailsDocument"]
    fo_10, fo_11 = (v["DeliveryOptions"][0]["Id"] for v in doc["Versions"])
    build = make_client(b.endpoint).start_build(FulfillmentOptionIds=[fo_10], SourceImageId="ami-02a2b3c4d5e6f7081",
                                                DestinationImageName="ddb catalog build")
    assert wait_terminal(make_client(a.endpoint), build["BuildId"])["Status"] == "Succeeded"
    # A set held open through one instance locks the entity for both: each is refused with 423.
    # (Sequential on purpose: moto restores a whole-table snapshot when a transaction fails, so
    # transactions failing *while* another commits can erase that commit — an emulator artefact
    # real DynamoDB does not have; concurrent lock claims are raced in the store's conformance
    # suite, which counts the winners.)
    for server in (a, b):
        control(server, "POST", "transitions", {"Resource": "changeset", "Mode": "manual"})
    held = cb.start_change_set(Catalog="AWSMarketplace", ChangeSet=[
        change("AddRegions", product, {"Regions": ["eu-west-1"]})])["ChangeSetId"]
    for c in (ca, cb):
        with pytest.raises(c.exceptions.ResourceInUseException):
            c.start_change_set(Catalog="AWSMarketplace", ChangeSet=[
                change("AddRegions", product, {"Regions": ["eu-west-2"]})])
    assert control(a, "POST", "advance", {"ChangeSetId": held, "Steps": 2})
    assert wait(ca, held)["Status"] == "SUCCEEDED"
    # released: the next set goes through the other instance
    for server in (a, b):
        control(server, "DELETE", "transitions", {"Resource": "changeset"})
    assert wait(cb, cb.start_change_set(Catalog="AWSMarketplace", ChangeSet=[
        change("AddRegions", product, {"Regions": ["eu-west-2"]})])["ChangeSetId"])["Status"] == "SUCCEEDED"
    revision = int(ca.describe_entity(Catalog="AWSMarketplace", EntityId=product)["EntityIdentifier"].split("@")[1])
    assert revision == 4
    assert fo_11.startswith("fo-")
    listed = ca.list_entities(Catalog="AWSMarketplace", EntityType="AmiProduct")["EntitySummaryList"]
    assert product in [e["EntityId"] for e in listed]


def metric(text, line_prefix):
    """The value of the one sample starting with `line_prefix` in a Prometheus exposition."""
    for line in text.splitlines():
        if line.startswith(line_prefix + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {line_prefix} in:\n{text}")


def test_a_slot_leaked_by_a_killed_instance_comes_back(moto, table, start_server):
    """kill -9 between StartBuild's slot reservation and its transaction: the quota slot is taken
    and no build exists; another instance's sweep gives it back within its period."""
    limit = ["--max-concurrent-builds", "1"]
    doomed = start_server(*dynamo_args(moto, table, *FAST_DDB, *limit, "--reservation-sweep-seconds", "1",
                                       "--reservation-grace-seconds", "2"),
                          env={**AWS_ENV, "IMAGEBUILD_FAILPOINT": "after-build-reservation"})
    c = make_client(doomed.endpoint)
    hung = concurrent.futures.ThreadPoolExecutor(1).submit(lambda: start(c))
    deadline = time.time() + 20
    while not any("failpoint reached" in line for line in doomed.log):
        assert time.time() < deadline, "".join(doomed.log)
        time.sleep(0.05)
    doomed.proc.send_signal(signal.SIGKILL)
    doomed.proc.wait(10)
    with pytest.raises(Exception):
        hung.result(timeout=20)  # the client never got an answer

    s = start_server(*dynamo_args(moto, table, *FAST_DDB, *limit, "--reservation-sweep-seconds", "1",
                                  "--reservation-grace-seconds", "2", "--control-token", "t",
                                  "--metrics-status-seconds", "0"), env=AWS_ENV)
    c = make_client(s.endpoint)
    assert c.describe_builds()["Builds"] == []
    # The slot is still held by the build that never was...
    with pytest.raises(c.exceptions.BuildLimitExceededException):
        start(c)
    # ...until the sweep gives it back: the dead instance's lease lapses (3 x grace), then the
    # reservation is older than the grace period.
    deadline = time.time() + 30
    while True:
        try:
            build_id = start(c)["BuildId"]
            break
        except c.exceptions.BuildLimitExceededException:
            assert time.time() < deadline, "the leaked slot never came back"
            time.sleep(0.5)
    assert wait_terminal(c, build_id)["Status"] == "Succeeded"
    with urllib.request.urlopen(f"{s.endpoint}/_imagebuild/metrics") as r:
        text = r.read().decode()
    assert metric(text, "imagebuild_worker_reservations_released_total") == 1
    assert metric(text, 'imagebuild_worker_lease_takeovers_total{lease="sweep"}') == 1
    assert metric(text, 'imagebuild_resources{resource="build",status="Succeeded"}') == 1
    assert metric(text, 'imagebuild_store_dynamodb_calls_total{api="TransactWriteItems",status="200"}') >= 2
    assert any(line.startswith("imagebuild_store_dynamodb_condition_failures_total ") and not line.endswith(" 0")
               for line in text.splitlines()), "the refused StartBuilds were conditional-check failures"
    # Nothing is left reserved once the build is written.
    ddb = boto3.client("dynamodb", endpoint_url=moto, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    item = ddb.get_item(TableName=table, Key={"PK": {"S": "C#123456789012#us-east-1"}, "SK": {"S": "C"}},
                        ConsistentRead=True)["Item"]
    assert item["n"] == {"N": "0"} and "pending" not in item, item
