"""The documented pytest fixtures (harness/imagebuild_pytest.py), used as a downstream project
would: every build status through the control plane, without sleeping."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "harness"))
from imagebuild_pytest import imagebuild, imagebuild_client, imagebuild_world  # noqa: E402,F401

WORLD = {
    "Images": [{"ImageId": "ami-0123456789abcdef0", "OwnerId": "123456789012", "Region": "us-east-1", "Platform": "Linux"},
               {"ImageId": "ami-0123456789abcdef1", "OwnerId": "123456789012", "Region": "us-east-1", "Platform": "Linux", "SsmAgent": False}],
    "Products": [{"ProductId": "prod-mine1", "ProductCode": "c0de", "SellerAccountId": "999988887777", "Title": "Mine",
                  "Visibility": "Public",
                  "Versions": [{"Version": "1", "FulfillmentOptionId": "fo-good", "Platform": "Linux", "Regions": ["us-east-1"]},
                               {"Version": "2", "FulfillmentOptionId": "fo-bad", "Platform": "Linux", "Regions": ["us-east-1"],
                                "Installer": {"ExitCode": 2, "Stderr": "boom"}},
                               {"Version": "3", "FulfillmentOptionId": "fo-flaky", "Platform": "Linux", "Regions": ["us-east-1"],
                                "Installer": {"InternalError": True}}]}],
    "SnsTopics": ["arn:aws:sns:us-east-1:123456789012:builds"],
}


@pytest.fixture
def imagebuild_world():  # noqa: F811 - overriding the module's default, as a conftest would
    return WORLD


def start(client, fo, ami="ami-0123456789abcdef0"):
    return client.start_build(FulfillmentOptionIds=[fo], SourceImageId=ami, DestinationImageName="harness image",
                              SnsTopicArn="arn:aws:sns:us-east-1:123456789012:builds")["BuildId"]


@pytest.mark.parametrize("fo,ami,steps,status,code", [
    ("fo-good", "ami-0123456789abcdef0", 3, "Succeeded", None),
    ("fo-bad", "ami-0123456789abcdef0", 2, "Failed", "InstallFailed"),
    ("fo-good", "ami-0123456789abcdef1", 1, "Failed", "SSMAgentNotFound"),
    ("fo-flaky", "ami-0123456789abcdef0", 2, "InternalError", None),
])
def test_every_status_without_sleeping(imagebuild, imagebuild_client, fo, ami, steps, status, code):
    build_id = start(imagebuild_client, fo, ami)
    assert imagebuild_client.describe_builds(BuildIds=[build_id])["Builds"][0]["Status"] == "InProgress"
    out = imagebuild.advance(build_id, steps=steps)
    assert out["Status"] == status
    b = imagebuild_client.describe_builds(BuildIds=[build_id])["Builds"][0]
    assert b["Status"] == status and b.get("ErrorDetail", {}).get("Code") == code
    statuses = [__import__("json").loads(n["Message"])["Status"] for n in imagebuild.notifications("arn:aws:sns:us-east-1:123456789012:builds")]
    assert statuses == ["InProgress", status]


def test_reset_and_world_merge(imagebuild, imagebuild_client):
    start(imagebuild_client, "fo-good")
    imagebuild.reset()
    assert imagebuild_client.describe_builds()["Builds"] == []
    with pytest.raises(imagebuild_client.exceptions.InvalidFulfillmentOptionIdException):
        start(imagebuild_client, "fo-later")
    imagebuild.merge_world({"Products": [{"ProductId": "prod-later", "ProductCode": "x", "SellerAccountId": "999988887777",
                                          "Title": "Later", "Visibility": "Public",
                                          "Versions": [{"Version": "1", "FulfillmentOptionId": "fo-later", "Platform": "Linux",
                                                        "Regions": ["us-east-1"]}]}]})
    assert start(imagebuild_client, "fo-later")
