"""boto3 against the real binary, with the model from AWS_DATA_PATH-style search paths."""

import datetime
import signal
import time

import botocore.exceptions
import pytest
import urllib.request

from conftest import FAST, GOOD_FO, LINUX_AMI, WINDOWS_AMI, make_client, wait_terminal


def start(client, fo=GOOD_FO, ami=LINUX_AMI, **kw):
    return client.start_build(FulfillmentOptionIds=[fo], SourceImageId=ami, DestinationImageName="boto3 image", **kw)


def test_every_operation_and_the_response_types(client):
    out = start(client)
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert out["ResponseMetadata"]["RequestId"]
    b = wait_terminal(client, out["BuildId"])
    assert b["Status"] == "Succeeded"
    assert isinstance(b["StartTime"], datetime.datetime) and b["StartTime"].tzinfo is not None
    assert b["LastUpdateTime"] >= b["StartTime"]
    with urllib.request.urlopen(b["StandardOutputUrl"]) as r:
        assert b"installed" in r.read()


@pytest.mark.parametrize("fo,ami,exc", [
    ("fo-nosuchoption", LINUX_AMI, "InvalidFulfillmentOptionIdException"),
    (GOOD_FO, "ami-00000000000000000", "InvalidSourceImageIdException"),
    (GOOD_FO, "ami-0d1b2c3d4e5f60718", "InvalidSourceImageIdException"),
    ("fo-demowin001", LINUX_AMI, "InstallerMismatchException"),
])
def test_start_build_modeled_exceptions(client, fo, ami, exc):
    with pytest.raises(getattr(client.exceptions, exc)) as e:
        start(client, fo, ami)
    assert e.value.response["Error"]["Code"] == exc
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert client.describe_builds()["Builds"] == []


def test_name_topic_token_errors(client):
    with pytest.raises(client.exceptions.InvalidDestinationImageNameException):
        client.start_build(FulfillmentOptionIds=[GOOD_FO], SourceImageId=LINUX_AMI, DestinationImageName="no!")
    with pytest.raises(client.exceptions.InvalidSnsTopicArnException):
        start(client, SnsTopicArn="arn:aws:sns:us-east-1:123456789012:missing")
    start(client, ClientToken="boto-token")
    with pytest.raises(client.exceptions.IdempotentParameterMismatchException):
        start(client, ClientToken="boto-token", DestinationImageDescription="changed")


def test_describe_builds_modeled_exceptions(client):
    with pytest.raises(client.exceptions.InvalidFilterException):
        client.describe_builds(Filters=[{"Name": "colour", "Values": ["x"]}])
    with pytest.raises(client.exceptions.InvalidMaxResultsException):
        client.describe_builds(MaxResults=0)
    with pytest.raises(client.exceptions.InvalidNextTokenException):
        client.describe_builds(NextToken="not-a-token")


def test_build_limit(start_server):
    s = start_server("--in-memory", "--max-concurrent-builds", "2", "--provision-seconds", "600")
    c = make_client(s.endpoint)
    start(c)
    start(c)
    with pytest.raises(c.exceptions.BuildLimitExceededException):
        start(c)
    assert len(c.describe_builds()["Builds"]) == 2


def test_paginator_and_filters(client):
    ids = [start(client)["BuildId"] for _ in range(5)]
    start(client, "fo-demofailinstall")
    pages = list(client.get_paginator("describe_builds").paginate(PaginationConfig={"PageSize": 2}))
    assert [len(p["Builds"]) for p in pages] == [2, 2, 2]
    got = [b["BuildId"] for p in pages for b in p["Builds"]]
    assert got[1:] == list(reversed(ids))
    for bid in got:
        wait_terminal(client, bid)
    failed = client.describe_builds(Filters=[{"Name": "status", "Values": ["failed"]}])["Builds"]
    assert len(failed) == 1 and failed[0]["ErrorDetail"]["Code"] == "InstallFailed"
    by_product = client.describe_builds(Filters=[{"Name": "product-id", "Values": ["prod-abcd1234efgh5"]}])["Builds"]
    assert len(by_product) == 5


def test_waiter_success_and_failure(client):
    ok = start(client)["BuildId"]
    client.get_waiter("build_completed").wait(BuildIds=[ok], WaiterConfig={"Delay": 1})
    bad = start(client, GOOD_FO, "ami-0c1b2c3d4e5f60718")["BuildId"]
    with pytest.raises(botocore.exceptions.WaiterError):
        client.get_waiter("build_completed").wait(BuildIds=[bad], WaiterConfig={"Delay": 1})
    b = client.describe_builds(BuildIds=[bad])["Builds"][0]
    assert b["ErrorDetail"]["Code"] == "SSMAgentNotFound"


def test_each_terminal_status(client):
    expect = {
        (GOOD_FO, LINUX_AMI): ("Succeeded", None),
        ("fo-demowin001", WINDOWS_AMI): ("Succeeded", None),
        ("fo-demofailinstall", LINUX_AMI): ("Failed", "InstallFailed"),
        (GOOD_FO, "ami-0c1b2c3d4e5f60718"): ("Failed", "SSMAgentNotFound"),
        ("fo-demointernal01", LINUX_AMI): ("InternalError", None),
    }
    for (fo, ami), (status, code) in expect.items():
        b = wait_terminal(client, start(client, fo, ami)["BuildId"])
        assert b["Status"] == status
        assert b.get("ErrorDetail", {}).get("Code") == code


def test_accounts_and_regions_are_isolated(server):
    east = make_client(server.endpoint, "us-east-1")
    west = make_client(server.endpoint, "us-west-2")
    start(east)
    assert len(east.describe_builds()["Builds"]) == 1
    assert west.describe_builds()["Builds"] == []


def test_persistence_across_restart_and_sigterm(start_server, tmp_path):
    data = str(tmp_path / "data")
    s1 = start_server("--data-dir", data, *FAST)
    c = make_client(s1.endpoint)
    ids = [start(c)["BuildId"] for _ in range(3)]
    for i in ids:
        wait_terminal(c, i)
    # an in-progress build at shutdown is resumed by the next process
    slow = start_server("--data-dir", str(tmp_path / "data2"), "--provision-seconds", "1", "--install-seconds", "0", "--imaging-seconds", "0")
    cs = make_client(slow.endpoint)
    pending = start(cs)["BuildId"]
    assert slow.stop(signal.SIGTERM) == 0
    assert s1.stop(signal.SIGTERM) == 0
    s2 = start_server("--data-dir", data, *FAST)
    c2 = make_client(s2.endpoint)
    assert sorted(b["BuildId"] for b in c2.describe_builds()["Builds"]) == sorted(ids)
    s3 = start_server("--data-dir", str(tmp_path / "data2"), *FAST)
    assert wait_terminal(make_client(s3.endpoint), pending)["Status"] == "Succeeded"


def test_kill_9_loses_nothing_acknowledged(start_server, tmp_path):
    data = str(tmp_path / "data")
    s = start_server("--data-dir", data, "--provision-seconds", "600")
    c = make_client(s.endpoint)
    ids = [start(c)["BuildId"] for _ in range(5)]
    s.stop(signal.SIGKILL)
    s2 = start_server("--data-dir", data, "--provision-seconds", "600")
    got = {b["BuildId"] for b in make_client(s2.endpoint).describe_builds()["Builds"]}
    assert got == set(ids)


def test_malformed_world_stops_startup(tmp_path):
    import subprocess
    from conftest import BIN
    bad = tmp_path / "world.json"
    bad.write_text('{"Images": [{"ImageId": "ami-12345678", "OwnerId": "123456789012", "Region": "us-east-1", "Platform": "BeOS"}]}')
    p = subprocess.run([str(BIN), "serve", "--listen", "127.0.0.1:0", "--in-memory", "--world", str(bad)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    assert "Images[0].Platform" in p.stderr
