"""The real aws CLI, with the model installed by `aws configure add-model`."""

import json
import time

from conftest import GOOD_FO, LINUX_AMI, WINDOWS_AMI, loads


def start(cli, fo=GOOD_FO, ami=LINUX_AMI, name="cli image", *extra, check=True):
    return cli("start-build", "--fulfillment-option-ids", fo, "--source-image-id", ami,
               "--destination-image-name", name, *extra, check=check)


def test_start_wait_describe(cli):
    out = loads(start(cli))
    build_id = out["BuildId"]
    assert out["Products"] == [{"Id": "prod-abcd1234efgh5", "Version": "1.0.0", "Title": "Example Agent"}]
    cli("wait", "build-completed", "--build-ids", build_id)
    builds = loads(cli("describe-builds", "--build-ids", build_id))["Builds"]
    assert len(builds) == 1
    b = builds[0]
    assert b["Status"] == "Succeeded"
    assert b["DestinationImage"]["Id"].startswith("ami-")
    assert isinstance(b["StartTime"], (int, float))  # CLI v1 prints the wire value: epoch seconds
    assert b["StandardOutputUrl"].startswith("http://127.0.0.1:")


def test_waiter_fails_on_failed_build(cli):
    build_id = loads(start(cli, "fo-demofailinstall"))["BuildId"]
    p = cli("wait", "build-completed", "--build-ids", build_id, check=False)
    assert p.returncode != 0
    assert "Waiter BuildCompleted failed" in p.stderr


def test_cli_auto_pagination_and_manual_tokens(cli):
    ids = [loads(start(cli))["BuildId"] for _ in range(7)]
    # --page-size makes the CLI send MaxResults=2 and follow NextToken (paginators-1.json)
    everything = loads(cli("describe-builds", "--page-size", "2"))["Builds"]
    assert [b["BuildId"] for b in everything] == list(reversed(ids))
    first = loads(cli("describe-builds", "--max-items", "3", "--page-size", "2"))
    assert len(first["Builds"]) == 3 and "NextToken" in first
    rest = loads(cli("describe-builds", "--starting-token", first["NextToken"], "--page-size", "2"))
    assert [b["BuildId"] for b in first["Builds"] + rest["Builds"]] == list(reversed(ids))
    # Filters from the command line
    st = loads(cli("describe-builds", "--filters", "Name=status,Values=succeeded,in-progress"))["Builds"]
    assert len(st) == 7


def test_modeled_errors_reach_the_cli(cli):
    p = cli("describe-builds", "--filters", "Name=colour,Values=x", check=False)
    assert p.returncode != 0
    assert "An error occurred (InvalidFilterException) when calling the DescribeBuilds operation: The filter 'colour' is not valid." in p.stderr
    p = start(cli, "fo-demowin001", LINUX_AMI, check=False)
    assert "(InstallerMismatchException)" in p.stderr
    p = cli("describe-builds", "--max-results", "300", check=False)
    assert "(InvalidMaxResultsException)" in p.stderr
    p = cli("describe-builds", "--no-sign-request", check=False)
    assert "(MissingAuthenticationTokenException)" in p.stderr


def test_idempotent_client_token(cli):
    a = loads(start(cli, GOOD_FO, LINUX_AMI, "tok image", "--client-token", "cli-token-1"))
    b = loads(start(cli, GOOD_FO, LINUX_AMI, "tok image", "--client-token", "cli-token-1"))
    assert a == b
    p = start(cli, GOOD_FO, LINUX_AMI, "other image", "--client-token", "cli-token-1", check=False)
    assert "(IdempotentParameterMismatchException)" in p.stderr
    # without a token the CLI fills one in: two calls, two builds
    start(cli)
    start(cli)
    assert len(loads(cli("describe-builds"))["Builds"]) == 3


def test_wrong_secret_is_rejected(aws_home, server):
    import subprocess
    from conftest import aws_bin, cli_env
    env = cli_env(aws_home)
    env["AWS_SECRET_ACCESS_KEY"] = "not-the-secret"
    p = subprocess.run([aws_bin(), "marketplaceimagebuild", "describe-builds", "--endpoint-url", server.endpoint],
                       env=env, capture_output=True, text=True)
    assert p.returncode != 0
    assert "(InvalidSignatureException)" in p.stderr
    assert "The request signature we calculated does not match" in p.stderr
