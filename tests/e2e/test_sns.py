"""Notifications published to a real SNS-compatible endpoint (moto_server) and received by an
SQS queue subscribed to the topic."""

import json
import time

import boto3
import pytest

from conftest import FAST, GOOD_FO, LINUX_AMI, make_client, wait_terminal


def aws(service, endpoint):
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def test_status_changes_are_published_to_sns(moto, start_server):
    sns, sqs = aws("sns", moto), aws("sqs", moto)
    topic = sns.create_topic(Name="image-build-events-e2e")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="builds")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)

    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}
    s = start_server("--in-memory", "--sns-endpoint", moto, *FAST, env=env)
    c = make_client(s.endpoint)
    # a topic that exists only at the endpoint is accepted; one that exists nowhere is not
    with pytest.raises(c.exceptions.InvalidSnsTopicArnException):
        c.start_build(FulfillmentOptionIds=[GOOD_FO], SourceImageId=LINUX_AMI, DestinationImageName="sns image",
                      SnsTopicArn=topic + "-missing")
    build_id = c.start_build(FulfillmentOptionIds=[GOOD_FO], SourceImageId=LINUX_AMI,
                             DestinationImageName="sns image", SnsTopicArn=topic)["BuildId"]
    assert wait_terminal(c, build_id)["Status"] == "Succeeded"

    statuses = []
    deadline = time.time() + 20
    while len(statuses) < 2 and time.time() < deadline:
        for m in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            envelope = json.loads(m["Body"])
            body = json.loads(envelope["Message"])
            assert body["BuildId"] == build_id and body["Type"] == "BuildStatusChange"
            assert envelope["Subject"].startswith("AWS Marketplace image build")
            statuses.append(body["Status"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
    assert statuses == ["InProgress", "Succeeded"]
