"""AMI scanning through boto3 (the companion model on AWS_DATA_PATH-style search paths): a
25-AMI submission whose scans reach every status and every ingestion/execution code, driven
through Ingesting and Scanning by the control plane's virtual clock, not by sleeping."""

import json
import time

import botocore.exceptions
import pytest

from conftest import CONTROL_TOKEN, FAST, ROLE, ROOT, control, make_scan_client

ACCOUNT = "123456789012"
TOPIC = "arn:aws:sns:us-east-1:123456789012:ami-scan-events"


def clone(n):
    """A clean Linux image owned by the caller (passes every check with the good role)."""
    return {"ImageId": f"ami-0c1ea00000000000{n:x}", "Name": f"clean {n}", "OwnerId": ACCOUNT,
            "Region": "us-east-1", "Platform": "Linux", "FileSystems": ["xfs"], "OpenPorts": [22],
            "OsUsers": ["ec2-user"], "Snapshots": [{"SnapshotId": f"snap-0c1ea0000000000{n:x}", "Encrypted": False}]}


def role(name):
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


# (image, role, user, extra) -> expected (status, code)
MIX = [
    ("ami-0a5ca0000000000a1", ROLE, "ec2-user", {}, ("IssuesFound", None)),
    ("ami-0a5ca0000000000a2", ROLE, "ec2-user", {"ProductId": "prod-demoseller1"}, ("Succeeded", None)),
    ("ami-0a5ca0000000000a3", ROLE, "centos", {}, ("IssuesFound", None)),
    ("ami-0a5ca0000000000a4", ROLE, None, {}, ("IssuesFound", None)),
    ("ami-0a5ca0000000000a5", ROLE, "ec2-user", {}, ("Failed", "ScanningPortUnreachable")),
    ("ami-0a5ca0000000000a6", ROLE, "ec2-user", {}, ("Failed", "ScanTimedOut")),
    ("ami-0a5ca0000000000a7", ROLE, "ec2-user", {}, ("InternalError", "InternalFailure")),
    ("ami-0a5ca0000000000a8", ROLE, "ec2-user", {}, ("IngestionFailed", "UnsupportedRootDeviceType")),
    ("ami-0a5ca0000000000a9", ROLE, "ec2-user", {}, ("IngestionFailed", "UnsupportedVirtualizationType")),
    ("ami-0a5ca0000000000aa", ROLE, "ec2-user", {}, ("IngestionFailed", "UnsupportedArchitecture")),
    ("ami-0a5ca0000000000ab", ROLE, "ec2-user", {}, ("IngestionFailed", "UnsupportedFileSystem")),
    ("ami-0a5ca0000000000ac", ROLE, "ec2-user", {}, ("IngestionFailed", "SourceImageNotAvailable")),
    ("ami-0a1b2c3d4e5f60718", ROLE, "ec2-user", {}, ("Failed", "OsLoginFailed")),
    ("ami-0b1b2c3d4e5f60718", ROLE, None, {}, ("Succeeded", None)),
    ("ami-0d1b2c3d4e5f60718", ROLE, "ec2-user", {}, ("IngestionFailed", "EncryptedSnapshot")),
    ("ami-01a2b3c4d5e6f7081", ROLE, "ec2-user", {}, ("IngestionFailed", "SourceImageNotOwned")),
    ("ami-0c1ea000000000001", role("NotCreated"), "ec2-user", {}, ("IngestionFailed", "AccessRoleNotFound")),
    ("ami-0c1ea000000000002", role("NoMarketplaceTrust"), "ec2-user", {}, ("IngestionFailed", "AccessRoleTrustPolicyInvalid")),
    ("ami-0c1ea000000000003", role("DescribeOnly"), "ec2-user", {}, ("IngestionFailed", "AccessRolePermissionsInsufficient")),
    ("ami-0c1ea000000000004", role("NarrowBoundary"), "ec2-user", {}, ("IngestionFailed", "AccessRolePermissionsInsufficient")),
] + [(f"ami-0c1ea00000000000{n:x}", ROLE, "ec2-user", {}, ("Succeeded", None)) for n in range(5, 10)]


@pytest.fixture
def world_file(tmp_path):
    world = json.loads((ROOT / "src/world/demo-world.json").read_text())
    world["Images"] += [clone(n) for n in range(1, 10)]
    path = tmp_path / "world.json"
    path.write_text(json.dumps(world))
    return path


def until(pred, what, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_25_amis_reach_every_status_and_code(start_server, world_file):
    assert len(MIX) == 25
    server = start_server("--in-memory", *FAST, "--world", str(world_file), "--control-token", CONTROL_TOKEN,
                          "--ingest-seconds", "60", "--scan-seconds", "60")
    scans = make_scan_client(server.endpoint)
    images = []
    for ami, r, user, extra, _ in MIX:
        spec = {"SourceImageId": ami, "AccessRoleArn": r, **extra}
        if user:
            spec["OsUserName"] = user
        images.append(spec)
    out = scans.start_scans(Images=images, SnsTopicArn=TOPIC)["Scans"]
    ids = [s["ScanId"] for s in out]
    assert [s["SourceImageId"] for s in out] == [m[0] for m in MIX]

    def statuses():
        got = {}
        for page in scans.get_paginator("describe_scans").paginate(ScanIds=ids, PaginationConfig={"PageSize": 10}):
            got.update({s["ScanId"]: s for s in page["Scans"]})
        return got
    assert {s["Status"] for s in statuses().values()} == {"Ingesting"}
    # Ingestion takes 60 s of (virtual) time
    control(server, "POST", "clock", {"AdvanceSeconds": 60})
    ingested = until(lambda: (lambda g: g if all(s["Status"] != "Ingesting" for s in g.values()) else None)(statuses()),
                     "ingestion")
    for sid, (_, _, _, _, (status, code)) in zip(ids, MIX):
        want = "IngestionFailed" if status == "IngestionFailed" else "Scanning"
        assert ingested[sid]["Status"] == want, (sid, ingested[sid])
    control(server, "POST", "clock", {"AdvanceSeconds": 60})
    final = until(lambda: (lambda g: g if all(s["Status"] != "Scanning" for s in g.values()) else None)(statuses()),
                  "scanning")
    seen_codes = set()
    for sid, (ami, _, _, _, (status, code)) in zip(ids, MIX):
        s = final[sid]
        assert s["Status"] == status, (ami, s)
        assert s.get("ErrorDetail", {}).get("Code") == code, (ami, s)
        if code:
            seen_codes.add(code)
            assert len(s["ErrorDetail"]["Message"]) > 40
        assert s["EndTime"] >= s["StartTime"]
    model = json.loads((ROOT / "models/marketplaceamiscanning/2021-01-15/service-2.json").read_text())
    # every code but the region one (covered by test_region_outside_the_scanning_region)
    assert seen_codes | {"SourceImageRegionNotSupported"} == set(model["shapes"]["ScanErrorCode"]["enum"])
    seen_statuses = {"Ingesting", "Scanning"} | {s["Status"] for s in final.values()}
    assert seen_statuses == set(model["shapes"]["ScanStatus"]["enum"])
    # the waiters agree
    scans.get_waiter("scan_completed").wait(ScanIds=ids, WaiterConfig={"Delay": 1, "MaxAttempts": 3})
    with pytest.raises(botocore.exceptions.WaiterError):
        scans.get_waiter("scan_succeeded").wait(ScanIds=ids, WaiterConfig={"Delay": 1, "MaxAttempts": 3})
    # status filters
    failed = scans.describe_scans(Filters=[{"Name": "status", "Values": ["ingestion-failed"]}])["Scans"]
    ingestion_failed = sum(1 for m in MIX if m[4][0] == "IngestionFailed")
    assert len(failed) == ingestion_failed == 11
    # each change was notified: Ingesting at start, then each transition
    notes = control(server, "GET", f"notifications?topic={TOPIC}")
    messages = [json.loads(n["Message"]) for n in notes["Notifications"]]
    # 25 started, 25 left Ingesting, the 14 that reached Scanning left it
    assert len([m for m in messages if m["Type"] == "ScanStatusChange"]) == 25 + 25 + (25 - ingestion_failed)
    first = next(m for m in messages if m["ScanId"] == ids[0] and m["Status"] == "IssuesFound")
    assert first["PreviousStatus"] == "Scanning" and first["FindingCounts"]["Critical"] == 1


def test_region_outside_the_scanning_region(start_server):
    server = start_server("--in-memory", *FAST, "--ingest-seconds", "0", "--scan-seconds", "0")
    west = make_scan_client(server.endpoint, region="us-west-2")
    sid = west.start_scans(Images=[{"SourceImageId": "ami-0a1b2c3d4e5f60718", "AccessRoleArn": ROLE,
                                    "OsUserName": "ubuntu"}])["Scans"][0]["ScanId"]
    west.get_waiter("scan_completed").wait(ScanIds=[sid], WaiterConfig={"Delay": 1, "MaxAttempts": 20})
    s = west.describe_scans(ScanIds=[sid])["Scans"][0]
    assert (s["Status"], s["ErrorDetail"]["Code"]) == ("IngestionFailed", "SourceImageRegionNotSupported")
    assert "Copy the AMI to us-east-1" in s["ErrorDetail"]["Message"]
    # scans are per region: us-east-1 sees nothing
    assert make_scan_client(server.endpoint).describe_scans()["Scans"] == []


def test_findings_paging_and_modeled_errors(start_server):
    server = start_server("--in-memory", *FAST, "--ingest-seconds", "0", "--scan-seconds", "0")
    scans = make_scan_client(server.endpoint)
    sid = scans.start_scans(Images=[{"SourceImageId": "ami-0a5ca0000000000a1", "AccessRoleArn": ROLE,
                                     "OsUserName": "ec2-user"}])["Scans"][0]["ScanId"]
    scans.get_waiter("scan_completed").wait(ScanIds=[sid], WaiterConfig={"Delay": 1, "MaxAttempts": 20})
    pages = list(scans.get_paginator("describe_scan_findings").paginate(ScanId=sid, PaginationConfig={"PageSize": 2}))
    assert len(pages) == 3
    found = [f["FindingId"] for p in pages for f in p["Findings"]]
    assert len(found) == len(set(found)) == 6
    assert all(p["Controls"] == pages[0]["Controls"] for p in pages)
    with pytest.raises(scans.exceptions.InvalidNextTokenException):
        scans.describe_scan_findings(ScanId=sid, MaxResults=2, NextToken=pages[0]["NextToken"],
                                     Filters=[{"Name": "severity", "Values": ["high"]}])
    with pytest.raises(scans.exceptions.InvalidFilterException):
        scans.describe_scan_findings(ScanId=sid, Filters=[{"Name": "control-id", "Values": ["NOPE"]}])
    with pytest.raises(scans.exceptions.ImageLimitExceededException):
        scans.start_scans(Images=[{"SourceImageId": f"ami-{i:08x}", "AccessRoleArn": ROLE} for i in range(26)])


def test_list_images_is_the_ami_picker(scan_server, scans):
    """ListImages: the caller's AMIs by id, with their latest scan, filters, paging and a
    build-created AMI."""
    from conftest import GOOD_FO, LINUX_AMI, make_client, wait_scans, wait_terminal
    everything = [i for page in scans.get_paginator("list_images").paginate(PaginationConfig={"PageSize": 5})
                  for i in page["Images"]]
    ids = [i["ImageId"] for i in everything]
    assert ids == sorted(ids) and len(ids) == len(set(ids)) == 17
    first = scans.list_images(MaxResults=5)
    assert len(first["Images"]) == 5 and "NextToken" in first
    assert {i["Platform"] for i in everything} == {"Linux", "Windows"}
    windows = scans.list_images(Filters=[{"Name": "platform", "Values": ["windows"]}])["Images"]
    assert [i["ImageId"] for i in windows] == ["ami-0a5ca0000000000a4", "ami-0b1b2c3d4e5f60718"]
    assert all("LatestScan" not in i for i in everything)
    # a scanned AMI shows its latest scan; scan-status filters by it
    sid = scans.start_scans(Images=[{"SourceImageId": LINUX_AMI, "AccessRoleArn": ROLE,
                                     "OsUserName": "ubuntu"}])["Scans"][0]["ScanId"]
    wait_scans(scans, [sid])
    done = scans.list_images(Filters=[{"Name": "scan-status", "Values": ["succeeded"]}])["Images"]
    assert [(i["ImageId"], i["LatestScan"]["ScanId"], i["LatestScan"]["Status"]) for i in done] == [
        (LINUX_AMI, sid, "Succeeded")]
    never = scans.list_images(Filters=[{"Name": "scan-status", "Values": ["not-scanned"]}], MaxResults=100)["Images"]
    assert len(never) == 16 and LINUX_AMI not in [i["ImageId"] for i in never]
    # an AMI the caller's build created is listed too
    builds = make_client(scan_server.endpoint)
    build_id = builds.start_build(FulfillmentOptionIds=[GOOD_FO], SourceImageId=LINUX_AMI,
                                  DestinationImageName="built for scanning")["BuildId"]
    created = wait_terminal(builds, build_id)["DestinationImage"]["Id"]
    listed = scans.list_images(Filters=[{"Name": "image-id", "Values": [created]}])["Images"]
    assert [(i["ImageId"], i["Name"]) for i in listed] == [(created, "built for scanning")]
    # bad input: modeled errors
    with pytest.raises(scans.exceptions.InvalidFilterException, match="Valid values are: not-scanned, ingesting"):
        scans.list_images(Filters=[{"Name": "scan-status", "Values": ["done"]}])
    with pytest.raises(scans.exceptions.InvalidFilterException):
        scans.list_images(Filters=[{"Name": "owner", "Values": ["me"]}])
    with pytest.raises(scans.exceptions.InvalidMaxResultsException):
        scans.list_images(MaxResults=101)
    with pytest.raises(scans.exceptions.InvalidNextTokenException):
        scans.list_images(NextToken=first["NextToken"], Filters=[{"Name": "platform", "Values": ["linux"]}])
