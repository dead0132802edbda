"""Catalog set-up for scripts/bench, with boto3's own marketplace-catalog client.

    bench_catalog.py settle PORT          # waits until the seller has no open change set
    bench_catalog.py versions PORT N      # a product with N package versions; prints its id
"""
import sys
import time

import boto3


def client(port):
    return boto3.client("marketplace-catalog", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
                        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")


def settle(c):
    for _ in range(1200):
        page = c.list_change_sets(Catalog="AWSMarketplace", MaxResults=1,
                                  FilterList=[{"Name": "Status", "ValueList": ["PREPARING", "APPLYING"]}])
        if not page["ChangeSetSummaryList"]:
            return
        time.sleep(0.5)
    raise SystemExit("change sets still open after 10 minutes")


def wait(c, cs):
    while c.describe_change_set(Catalog="AWSMarketplace", ChangeSetId=cs)["Status"] in ("PREPARING", "APPLYING"):
        time.sleep(0.02)
    return c.describe_change_set(Catalog="AWSMarketplace", ChangeSetId=cs)


def versions(c, n):
    d = wait(c, c.start_change_set(Catalog="AWSMarketplace", ChangeSet=[{
        "ChangeType": "CreateProduct", "Entity": {"Type": "AmiProduct@1.0"},
        "DetailsDocument": {"ProductTitle": f"{n} versions"}}])["ChangeSetId"])
    product = d["ChangeSet"][0]["Entity"]["Identifier"].split("@")[0]
    for v in range(n):
        d = wait(c, c.start_change_set(Catalog="AWSMarketplace", ChangeSet=[{
            "ChangeType": "AddDeliveryOptions", "Entity": {"Type": "AmiProduct@1.0", "Identifier": product},
            "DetailsDocument": {"Version": {"VersionTitle": f"1.{v}.0", "ReleaseNotes": f"Release 1.{v}.0 of the agent."},
                                "DeliveryOptions": [{"Details": {"PackageDeliveryOptionDetails": {
                                    "PackageGroupName": f"bench-{v}",
                                    "Installer": {"Url": "s3://demo-seller-packages/agent-1.0.0.rpm", "Type": ".rpm"},
                                    "Platform": "Linux",
                                    "OperatingSystems": [{"Name": "AMAZONLINUX", "Version": "2023"}]}}}]}}])["ChangeSetId"])
        assert d["Status"] == "SUCCEEDED", d
    print(product)


if __name__ == "__main__":
    what, port = sys.argv[1], sys.argv[2]
    if what == "settle":
        settle(client(port))
    else:
        versions(client(port), int(sys.argv[3]))
