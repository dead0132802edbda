"""How the world file meets the Catalog API, and the pytest fixtures' catalog helpers.

A world product is a catalog entity of its seller from the start (revision 1, its versions
package delivery options with the world's fo- ids). Until the Catalog API changes it, it follows
the world: a reload that edits it shows at once. Once a change set has changed it, the API's
copy is authoritative: later reloads no longer touch it (its installers still come from the
world), so a harness that reloads fixtures never undoes what a seller's pipeline did."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "harness"))
from imagebuild_pytest import imagebuild, imagebuild_world  # noqa: E402,F401

SELLER = "123456789012"
PUBLIC_AMI = "ami-02a2b3c4d5e6f7081"


def products(title, extra_version=False):
    versions = [{"Version": "1.0", "FulfillmentOptionId": "fo-worldagent01", "Platform": "Linux", "Regions": ["us-east-1"]}]
    if extra_version:
        versions.append({"Version": "1.1", "FulfillmentOptionId": "fo-worldagent02", "Platform": "Linux", "Regions": ["us-east-1"]})
    return {"Products": [{"ProductId": "prod-worldagent01", "ProductCode": "c" * 25, "SellerAccountId": SELLER,
                          "Title": title, "Visibility": "Public", "Versions": versions}]}


def test_world_products_follow_reloads_until_the_api_changes_them(imagebuild):
    cat = imagebuild.catalog_client()
    imagebuild.merge_world(products("From the world"))
    e = cat.describe_entity(Catalog="AWSMarketplace", EntityId="prod-worldagent01")
    assert e["EntityIdentifier"] == "prod-worldagent01@1"
    doc = e["DetailsDocument"]
    assert doc["Description"]["ProductTitle"] == "From the world"
    assert [v["DeliveryOptions"][0]["Id"] for v in doc["Versions"]] == ["fo-worldagent01"]
    # untouched: a reload shows at once
    imagebuild.merge_world(products("Reloaded", extra_version=True))
    doc = cat.describe_entity(Catalog="AWSMarketplace", EntityId="prod-worldagent01")["DetailsDocument"]
    assert doc["Description"]["ProductTitle"] == "Reloaded" and len(doc["Versions"]) == 2
    # the API changes it: from now on its copy stands
    cs = cat.start_change_set(Catalog="AWSMarketplace", ChangeSet=[{
        "ChangeType": "RestrictDeliveryOptions", "Entity": {"Type": "AmiProduct@1.0", "Identifier": "prod-worldagent01@1"},
        "DetailsDocument": {"DeliveryOptionIds": ["fo-worldagent02"]}}])["ChangeSetId"]
    assert imagebuild.advance_change_set(cs, steps=3)["Status"] == "SUCCEEDED"
    imagebuild.merge_world(products("Reloaded again"))
    e = cat.describe_entity(Catalog="AWSMarketplace", EntityId="prod-worldagent01")
    assert e["EntityIdentifier"] == "prod-worldagent01@2"
    doc = e["DetailsDocument"]
    assert doc["Description"]["ProductTitle"] == "Reloaded"
    assert [o["Visibility"] for v in doc["Versions"] for o in v["DeliveryOptions"]] == ["Public", "Restricted"]
    # builds follow the catalog's copy: the restricted version is closed to a new buyer (the
    # seller still builds it), the open one builds
    imagebuild.transition("immediate", resource="build")
    builds = imagebuild.client()
    b = builds.start_build(FulfillmentOptionIds=["fo-worldagent01"], SourceImageId=PUBLIC_AMI, DestinationImageName="open")
    assert b["Products"][0]["Id"] == "prod-worldagent01"
    assert builds.start_build(FulfillmentOptionIds=["fo-worldagent02"], SourceImageId=PUBLIC_AMI, DestinationImageName="seller")["BuildId"]


def test_the_fixtures_drive_a_change_set_step_by_step(imagebuild):
    cat = imagebuild.catalog_client()
    cs = cat.start_change_set(Catalog="AWSMarketplace", ChangeSet=[{
        "ChangeType": "CreateProduct", "Entity": {"Type": "AmiProduct@1.0"}, "DetailsDocument": {"ProductTitle": "Stepped"}}])["ChangeSetId"]
    assert cat.describe_change_set(Catalog="AWSMarketplace", ChangeSetId=cs)["Status"] == "PREPARING"
    assert imagebuild.advance_change_set(cs)["Status"] == "APPLYING"
    assert imagebuild.advance_change_set(cs)["Status"] == "SUCCEEDED"
    imagebuild.review("Reject", "No.")
    assert imagebuild.control("GET", "harness")["Review"] == {"Outcome": "Reject", "Message": "No."}
    imagebuild.reset()
    assert cat.list_change_sets(Catalog="AWSMarketplace")["ChangeSetSummaryList"] == []
