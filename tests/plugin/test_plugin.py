"""The pytest plugin as a downstream project meets it: `pip install <wheel>` into a fresh venv,
no conftest, no imports of fixtures. Run serially and with `-n 2` (pytest-xdist) in CI."""

import json
import os
import sys
from pathlib import Path

import pytest

import imagebuild_pytest

GOOD_FO = "fo-ids4xf7qagwyc"
LINUX_AMI = "ami-0a1b2c3d4e5f60718"
ROLE = "arn:aws:iam::123456789012:role/MarketplaceAmiIngestion"
TOPIC = "arn:aws:sns:us-east-1:123456789012:image-build-events"


def test_the_binary_and_the_models_come_from_the_wheel():
    assert "IMAGEBUILD_BIN" not in os.environ and "IMAGEBUILD_MODELS" not in os.environ
    assert Path(imagebuild_pytest.binary()).resolve().is_relative_to(Path(sys.prefix).resolve())
    models = Path(imagebuild_pytest.models())
    assert models.is_relative_to(Path(imagebuild_pytest.__file__).parent)
    for service, version in (("marketplaceimagebuild", "2017-12-15"), ("marketplaceamiscanning", "2021-01-15")):
        for name in ("service-2.json", "paginators-1.json", "waiters-2.json"):
            json.loads((models / service / version / name).read_text())


@pytest.mark.parametrize("round_", range(8))
def test_every_test_starts_from_a_fresh_server(imagebuild, imagebuild_client, round_):
    # Whatever the test before did on this worker's server...
    assert imagebuild_client.describe_builds()["Builds"] == []
    harness = imagebuild.control("GET", "harness")
    assert harness["Outcomes"] == [] and harness["Faults"] == [] and harness["Review"] == {"Outcome": "Approve"}
    assert set(harness["Transitions"].values()) == {None}
    assert imagebuild.control("GET", "clock")["ShiftSeconds"] == 0
    assert imagebuild.notifications() == []
    assert any(p["ProductId"] == "prod-later" for p in imagebuild.control("GET", "world")["Products"]) is False
    # ...this one leaves a mess for the next.
    build_id = imagebuild_client.start_build(FulfillmentOptionIds=[GOOD_FO], SourceImageId=LINUX_AMI,
                                             DestinationImageName=f"plugin image {round_}",
                                             SnsTopicArn=TOPIC)["BuildId"]
    assert imagebuild.advance(build_id, steps=3)["Status"] == "Succeeded"
    imagebuild.advance_clock(3600)
    imagebuild.transition("immediate")
    imagebuild.inject([{"Operation": "DescribeScans", "Exception": "InternalServerErrorException"}])
    imagebuild.script([{"Resource": "scan", "Status": "Failed", "ErrorCode": "OsLoginFailed"}])
    imagebuild.review("Hold")
    imagebuild.merge_world({"Products": [{"ProductId": "prod-later", "ProductCode": "x", "SellerAccountId": "999988887777",
                                          "Title": "Later", "Visibility": "Public",
                                          "Versions": [{"Version": "1", "FulfillmentOptionId": "fo-later",
                                                        "Platform": "Linux", "Regions": ["us-east-1"]}]}]})


def test_the_three_services(imagebuild, imagebuild_client, imagebuild_scan_client, imagebuild_catalog_client):
    build_id = imagebuild_client.start_build(FulfillmentOptionIds=[GOOD_FO], SourceImageId=LINUX_AMI,
                                             DestinationImageName="plugin image")["BuildId"]
    imagebuild.advance(build_id, steps=3)
    waiter = imagebuild_client.get_waiter("BuildSucceeded") if "BuildSucceeded" in imagebuild_client.waiter_names else None
    if waiter:
        waiter.wait(BuildIds=[build_id])
    assert imagebuild_client.describe_builds(BuildIds=[build_id])["Builds"][0]["Status"] == "Succeeded"

    imagebuild.script([{"Resource": "scan", "Status": "Failed", "ErrorCode": "OsLoginFailed"}])
    scan_id = imagebuild_scan_client.start_scans(Images=[{"SourceImageId": LINUX_AMI, "OsUserName": "ec2-user",
                                                          "AccessRoleArn": ROLE}])["Scans"][0]["ScanId"]
    assert imagebuild.advance_scan(scan_id, steps=2)["ErrorCode"] == "OsLoginFailed"

    cs = imagebuild_catalog_client.start_change_set(
        Catalog="AWSMarketplace",
        ChangeSet=[{"ChangeType": "CreateProduct", "Entity": {"Type": "AmiProduct@1.0"},
                    "DetailsDocument": {"ProductTitle": "Plugin product"}}])["ChangeSetId"]
    imagebuild.advance_change_set(cs, steps=2)
    described = imagebuild_catalog_client.describe_change_set(Catalog="AWSMarketplace", ChangeSetId=cs)
    assert described["Status"] == "SUCCEEDED"


def test_faults_and_the_clock_are_the_tests_own(imagebuild, imagebuild_scan_client):
    imagebuild.inject([{"Operation": "DescribeScans", "Exception": "InternalServerErrorException"}])
    with pytest.raises(imagebuild_scan_client.exceptions.InternalServerErrorException):
        imagebuild_scan_client.describe_scans()
    assert imagebuild.advance_clock(120)["ShiftSeconds"] == 120


@pytest.mark.parametrize("round_", range(6))
def test_each_worker_has_a_server_of_its_own(imagebuild_server, worker_id, round_, tmp_path_factory):
    """Under xdist each worker records its server; no two workers share one."""
    shared = Path(os.environ.get("IMAGEBUILD_PLUGIN_SHARED", tmp_path_factory.getbasetemp()))
    (shared / f"server-{worker_id}").write_text(imagebuild_server.endpoint)
    endpoints = {p.name: p.read_text() for p in shared.glob("server-*")}
    assert list(endpoints.values()).count(imagebuild_server.endpoint) == 1, endpoints
