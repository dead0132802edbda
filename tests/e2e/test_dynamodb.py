"""Many stateless instances on one DynamoDB table, against a real DynamoDB-compatible server
(moto_server started by the fixture on a free loopback port and stopped by PID)."""

import concurrent.futures
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import boto3
import pytest

from conftest import BIN, GOOD_FO, LINUX_AMI, free_port, make_client, wait_terminal

AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}


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
        moto.terminate()
        moto.wait(10)
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
    finally:
        moto.terminate()
        moto.wait(10)
