"""A test module overrides `imagebuild_world`, as a conftest would; the next test module gets
the starting world back (checked in test_plugin.py)."""

import pytest

WORLD = {
    "Images": [{"ImageId": "ami-0123456789abcdef0", "OwnerId": "123456789012", "Region": "us-east-1",
                "Platform": "Linux"}],
    "Products": [{"ProductId": "prod-mine1", "ProductCode": "c0de", "SellerAccountId": "999988887777",
                  "Title": "Mine", "Visibility": "Public",
                  "Versions": [{"Version": "1", "FulfillmentOptionId": "fo-good", "Platform": "Linux",
                                "Regions": ["us-east-1"]},
                               {"Version": "2", "FulfillmentOptionId": "fo-bad", "Platform": "Linux",
                                "Regions": ["us-east-1"], "Installer": {"ExitCode": 2, "Stderr": "boom"}}]}],
}


@pytest.fixture
def imagebuild_world():
    return WORLD


@pytest.mark.parametrize("fo,status,code", [("fo-good", "Succeeded", None), ("fo-bad", "Failed", "InstallFailed")])
def test_my_world(imagebuild, imagebuild_client, fo, status, code):
    build_id = imagebuild_client.start_build(FulfillmentOptionIds=[fo], SourceImageId="ami-0123456789abcdef0",
                                             DestinationImageName="my world image")["BuildId"]
    assert imagebuild.advance(build_id, steps=3)["Status"] == status
    b = imagebuild_client.describe_builds(BuildIds=[build_id])["Builds"][0]
    assert b.get("ErrorDetail", {}).get("Code") == code
    with pytest.raises(imagebuild_client.exceptions.InvalidFulfillmentOptionIdException):
        imagebuild_client.start_build(FulfillmentOptionIds=["fo-ids4xf7qagwyc"], SourceImageId="ami-0123456789abcdef0",
                                      DestinationImageName="demo product")
