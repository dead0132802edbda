"""Every status, every error code and every modeled error of both services, reached with boto3
through the control plane (scripted outcomes, explicit advance, injected faults) and the
documented pytest fixtures — without sleeping. The expected sets are read from the shipped
models, so a new enum value or error shape fails this test until it is reachable."""

import json
import sys
import urllib.error
from pathlib import Path

import pytest
from botocore import xform_name

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "harness"))
from imagebuild_pytest import imagebuild, imagebuild_world  # noqa: E402,F401

ROLE = "arn:aws:iam::123456789012:role/MarketplaceAmiIngestion"
AMI = "ami-0a1b2c3d4e5f60718"  # the demo world's clean Ubuntu AMI
FO = "fo-ids4xf7qagwyc"


def model(service, version):
    return json.loads((ROOT / "models" / service / version / "service-2.json").read_text())


BUILDS = model("marketplaceimagebuild", "2017-12-15")
SCANS = model("marketplaceamiscanning", "2021-01-15")


def enum(m, shape):
    return set(m["shapes"][shape]["enum"])


def test_every_build_status_and_error_code(imagebuild):
    client = imagebuild.client()
    cases = [("Succeeded", None), ("InternalError", None)] + [("Failed", c) for c in sorted(enum(BUILDS, "ErrorCode"))]
    statuses, codes = set(), set()
    for status, code in cases:
        rule = {"FulfillmentOptionId": FO, "Status": status, "Once": True}
        if code:
            rule.update(ErrorCode=code, Message=f"scripted {code}")
        imagebuild.script([rule])
        build_id = client.start_build(FulfillmentOptionIds=[FO], SourceImageId=AMI,
                                      DestinationImageName="control plane")["BuildId"]
        statuses.add(client.describe_builds(BuildIds=[build_id])["Builds"][0]["Status"])
        assert imagebuild.advance(build_id, steps=3)["Status"] == status
        b = client.describe_builds(BuildIds=[build_id])["Builds"][0]
        assert b["Status"] == status
        statuses.add(b["Status"])
        if code:
            assert b["ErrorDetail"] == {"Code": code, "Message": f"scripted {code}"}
            codes.add(b["ErrorDetail"]["Code"])
        if status == "Succeeded":
            assert b["DestinationImage"]["Id"].startswith("ami-")
    assert statuses == enum(BUILDS, "BuildStatus")
    assert codes == enum(BUILDS, "ErrorCode")


def scan_cases():
    codes = sorted(enum(SCANS, "ScanErrorCode"))
    ingestion = [c for c in codes if c.startswith(("AccessRole", "SourceImage", "Encrypted", "Unsupported"))]
    execution = ["ScanningPortUnreachable", "OsLoginFailed", "ScanTimedOut"]
    assert set(ingestion) | set(execution) | {"InternalFailure"} == set(codes)
    return ([("Succeeded", None), ("IssuesFound", "ROOT_PASSWORD"), ("InternalError", "InternalFailure")]
            + [("IngestionFailed", c) for c in ingestion] + [("Failed", c) for c in execution])


def test_every_scan_status_and_error_code(imagebuild):
    scans = imagebuild.scan_client()
    statuses, codes = set(), set()
    for status, code in scan_cases():
        rule = {"Resource": "scan", "AccessRoleArn": ROLE, "Status": status, "Once": True}
        if code:
            rule["ErrorCode"] = code
        imagebuild.script([rule])
        scan_id = scans.start_scans(Images=[{"SourceImageId": AMI, "AccessRoleArn": ROLE,
                                             "OsUserName": "ubuntu"}])["Scans"][0]["ScanId"]
        seen = [scans.describe_scans(ScanIds=[scan_id])["Scans"][0]["Status"]]
        while seen[-1] in ("Ingesting", "Scanning"):
            imagebuild.advance_scan(scan_id)
            seen.append(scans.describe_scans(ScanIds=[scan_id])["Scans"][0]["Status"])
        expected = ["Ingesting", status] if status == "IngestionFailed" else ["Ingesting", "Scanning", status]
        assert seen == expected
        statuses.update(seen)
        s = scans.describe_scans(ScanIds=[scan_id])["Scans"][0]
        findings = scans.describe_scan_findings(ScanId=scan_id)
        if status == "IssuesFound":
            assert [f["ControlId"] for f in findings["Findings"]] == [code]
            assert {c["ControlId"]: c["Result"] for c in findings["Controls"]}[code] == "FAIL"
            assert s["FindingCounts"]["High"] == 1
        elif code:
            assert s["ErrorDetail"]["Code"] == code
            codes.add(code)
        if status in ("Failed", "InternalError"):
            assert {c["Result"] for c in findings["Controls"]} == {"NOT_EXECUTED"}
        if status == "Succeeded":
            assert {c["Result"] for c in findings["Controls"]} == {"PASS"} and findings["Findings"] == []
    assert statuses == enum(SCANS, "ScanStatus")
    assert codes == enum(SCANS, "ScanErrorCode")


INPUTS = {
    "StartBuild": {"FulfillmentOptionIds": [FO], "SourceImageId": AMI, "DestinationImageName": "x"},
    "StartScans": {"Images": [{"SourceImageId": AMI, "AccessRoleArn": ROLE, "OsUserName": "ubuntu"}]},
    "DescribeScanFindings": {"ScanId": "00000000-0000-0000-0000-000000000000"},
    "ResubmitScan": {"ScanId": "00000000-0000-0000-0000-000000000000"},
}


def call(client, op):
    """A call of `op` with input that is valid on its own (the fault decides the answer)."""
    return getattr(client, xform_name(op))(**INPUTS.get(op, {}))


@pytest.mark.parametrize("service_model,service", [(BUILDS, "marketplaceimagebuild"), (SCANS, "marketplaceamiscanning")])
def test_every_modeled_error_is_raised_as_its_boto3_exception(imagebuild, service_model, service):
    client = imagebuild.client(service=service)
    seen = set()
    for op, spec in service_model["operations"].items():
        for err in (e["shape"] for e in spec["errors"]):
            imagebuild.inject([{"Operation": op, "Exception": err, "Count": 1}])
            with pytest.raises(getattr(client.exceptions, err)) as info:
                call(client, op)
            assert info.value.response["Error"]["Message"] == "Injected fault"
            assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == (
                500 if err == "InternalServerErrorException" else 400)
            seen.add(err)
    modeled = {name for name, s in service_model["shapes"].items() if s.get("exception")}
    assert seen == modeled
    # the faults are spent: the next call answers normally, and nothing was written
    imagebuild.inject([{"Operation": "DescribeBuilds" if service == "marketplaceimagebuild" else "DescribeScans",
                        "Exception": "ThrottlingException", "Probability": 0}])
    out = call(client, "DescribeBuilds" if service == "marketplaceimagebuild" else "DescribeScans")
    assert out.get("Builds", out.get("Scans")) == []
    with pytest.raises(urllib.error.HTTPError) as bad:
        imagebuild.inject([{"Operation": "DeleteEverything"}])
    assert bad.value.code == 400 and "Operation must be one of StartBuild" in bad.value.read().decode()


def test_a_harness_reset_is_a_fresh_start_and_refuses_an_account(imagebuild):
    imagebuild.transition("immediate")
    imagebuild.inject([{"Operation": "DescribeBuilds", "Exception": "InternalServerErrorException"}])
    imagebuild.script([{"Resource": "scan", "Status": "Failed", "ErrorCode": "OsLoginFailed"}])
    imagebuild.review("Hold")
    imagebuild.control("POST", "seed", {"Seed": 7})
    assert imagebuild.advance_clock(600)["ShiftSeconds"] == 600
    with pytest.raises(urllib.error.HTTPError) as e:
        imagebuild.control("POST", "reset", {"Harness": True, "AccountId": "123456789012"})
    assert e.value.code == 400 and "leave out AccountId" in json.loads(e.value.read())["message"]
    assert imagebuild.control("GET", "harness")["Faults"] != [], "a refused reset changed nothing"
    imagebuild.control("POST", "reset", {"Harness": True})
    h = imagebuild.control("GET", "harness")
    assert (h["Outcomes"], h["Faults"], h["Review"]) == ([], [], {"Outcome": "Approve"})
    assert set(h["Transitions"].values()) == {None}
    assert imagebuild.control("GET", "clock")["ShiftSeconds"] == 0
    # A plain reset keeps harness settings, as before.
    imagebuild.transition("immediate")
    imagebuild.reset()
    assert imagebuild.control("GET", "harness")["Transitions"]["build"] is not None
