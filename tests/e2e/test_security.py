"""Security with the real clients: the aws CLI with a wrong secret, a skewed clock and
--no-sign-request; boto3 with temporary credentials; permissions; two accounts side by side."""

import json
import subprocess
import time

import botocore.exceptions
import pytest

from conftest import FAST, GOOD_FO, aws_bin, cli_env, make_client

PUBLIC_AMI = "ami-02a2b3c4d5e6f7081"
ALICE = ("AKIAALICE0000000001", "alice-secret")
READER = ("AKIAREADER000000001", "reader-secret")
BOB = ("AKIABOB000000000001", "bob-secret")
TEMP = ("ASIATEMP00000000001", "temp-secret", "temp-session-token")


@pytest.fixture
def accounts(tmp_path):
    doc = {"Accounts": [
        {"AccountId": "111122223333", "Principals": [
            {"Name": "alice", "AccessKeys": [{"AccessKeyId": ALICE[0], "SecretAccessKey": ALICE[1]}],
             "SessionCredentials": [{"AccessKeyId": TEMP[0], "SecretAccessKey": TEMP[1], "SessionToken": TEMP[2],
                                     "Expiration": "2099-01-01T00:00:00Z"}]},
            {"Name": "reader", "Allow": ["aws-marketplace:Describe*"],
             "AccessKeys": [{"AccessKeyId": READER[0], "SecretAccessKey": READER[1]}]}]},
        {"AccountId": "444455556666", "Principals": [
            {"Name": "bob", "AccessKeys": [{"AccessKeyId": BOB[0], "SecretAccessKey": BOB[1]}]}]}]}
    path = tmp_path / "accounts.json"
    path.write_text(json.dumps(doc))
    return str(path)


def start(c):
    return c.start_build(FulfillmentOptionIds=[GOOD_FO], SourceImageId=PUBLIC_AMI, DestinationImageName="sec image")


def test_two_accounts_side_by_side(start_server, accounts):
    s = start_server("--in-memory", "--accounts", accounts, *FAST)
    alice = make_client(s.endpoint, access_key=ALICE[0], secret_key=ALICE[1])
    bob = make_client(s.endpoint, access_key=BOB[0], secret_key=BOB[1])
    a = start(alice)["BuildId"]
    b = start(bob)["BuildId"]
    assert [x["BuildId"] for x in alice.describe_builds()["Builds"]] == [a]
    assert [x["BuildId"] for x in bob.describe_builds()["Builds"]] == [b]
    assert bob.describe_builds(BuildIds=[a])["Builds"] == []
    # the development key is not valid once an accounts file is given
    dev = make_client(s.endpoint)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        dev.describe_builds()
    assert e.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_boto3_temporary_credentials(start_server, accounts):
    s = start_server("--in-memory", "--accounts", accounts, *FAST)
    temp = make_client(s.endpoint, access_key=TEMP[0], secret_key=TEMP[1], aws_session_token=TEMP[2])
    build_id = start(temp)["BuildId"]
    alice = make_client(s.endpoint, access_key=ALICE[0], secret_key=ALICE[1])
    assert [x["BuildId"] for x in alice.describe_builds()["Builds"]] == [build_id]
    wrong = make_client(s.endpoint, access_key=TEMP[0], secret_key=TEMP[1], aws_session_token="forged")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        wrong.describe_builds()
    assert e.value.response["Error"]["Code"] == "UnrecognizedClientException"
    assert e.value.response["Error"]["Message"] == "The security token included in the request is invalid."


def test_permissions(start_server, accounts):
    s = start_server("--in-memory", "--accounts", accounts, *FAST)
    reader = make_client(s.endpoint, access_key=READER[0], secret_key=READER[1])
    with pytest.raises(reader.exceptions.UnauthorizedOperationException) as e:
        start(reader)
    assert e.value.response["Error"]["Message"] == (
        "User: arn:aws:iam::111122223333:user/reader is not authorized to perform: aws-marketplace:StartBuild")
    assert reader.describe_builds()["Builds"] == []


def run_cli(aws_home, endpoint, *args, env_extra=None):
    env = cli_env(aws_home)
    env.update(env_extra or {})
    return subprocess.run([aws_bin(), "marketplaceimagebuild", *args, "--endpoint-url", endpoint],
                          env=env, capture_output=True, text=True, timeout=60)


def test_cli_rejections(aws_home, start_server):
    # the server's clock runs 10 minutes ahead: every CLI signature is "expired"
    skewed = start_server("--in-memory", "--clock-offset-seconds", "600", *FAST)
    p = run_cli(aws_home, skewed.endpoint, "describe-builds")
    assert p.returncode != 0
    assert "(InvalidSignatureException)" in p.stderr and "Signature expired:" in p.stderr
    behind = start_server("--in-memory", "--clock-offset-seconds", "-600", *FAST)
    p = run_cli(aws_home, behind.endpoint, "describe-builds")
    assert "Signature not yet current:" in p.stderr
    ok = start_server("--in-memory", *FAST)
    p = run_cli(aws_home, ok.endpoint, "describe-builds", env_extra={"AWS_SECRET_ACCESS_KEY": "wrong"})
    assert "(InvalidSignatureException)" in p.stderr
    p = run_cli(aws_home, ok.endpoint, "describe-builds", "--no-sign-request")
    assert "(MissingAuthenticationTokenException)" in p.stderr and "Missing Authentication Token" in p.stderr
    p = run_cli(aws_home, ok.endpoint, "describe-builds", env_extra={"AWS_ACCESS_KEY_ID": "AKIANOBODY000000001"})
    assert "(UnrecognizedClientException)" in p.stderr
    assert run_cli(aws_home, ok.endpoint, "describe-builds").returncode == 0


def test_bad_accounts_file_stops_startup(tmp_path):
    from conftest import BIN
    bad = tmp_path / "accounts.json"
    bad.write_text('{"Accounts": [{"AccountId": "123", "Principals": []}]}')
    p = subprocess.run([str(BIN), "serve", "--listen", "127.0.0.1:0", "--in-memory", "--accounts", str(bad)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    assert "Accounts[0].AccountId" in p.stderr


def test_secrets_never_reach_the_logs(start_server, accounts):
    s = start_server("--in-memory", "--accounts", accounts, *FAST, env={"IMAGEBUILD_LOG": "trace"})
    alice = make_client(s.endpoint, access_key=ALICE[0], secret_key=ALICE[1])
    start(alice)
    start(make_client(s.endpoint, access_key=TEMP[0], secret_key=TEMP[1], aws_session_token=TEMP[2]))
    with pytest.raises(botocore.exceptions.ClientError):
        make_client(s.endpoint, access_key=ALICE[0], secret_key="wrong-secret-value").describe_builds()
    s.stop()
    log = "".join(s.log)
    for secret in (ALICE[1], TEMP[1], TEMP[2], READER[1], BOB[1]):
        assert secret not in log


def test_rotate_keys_command(start_server, tmp_path):
    import conftest
    data = str(tmp_path / "data")
    s = start_server("--data-dir", data, "--provision-seconds", "600")
    c = make_client(s.endpoint)
    for _ in range(2):
        c.start_build(FulfillmentOptionIds=[GOOD_FO], SourceImageId=conftest.LINUX_AMI, DestinationImageName="x y z")
    token = c.describe_builds(MaxResults=1)["NextToken"]
    assert s.stop() == 0
    subprocess.run([str(conftest.BIN), "rotate-keys", "--data-dir", data], check=True, capture_output=True)
    s2 = start_server("--data-dir", data, "--provision-seconds", "600")
    assert len(make_client(s2.endpoint).describe_builds(MaxResults=1, NextToken=token)["Builds"]) == 1


def test_readiness_turns_503_while_draining_then_the_server_exits(start_server):
    """SIGTERM with --shutdown-delay-seconds: /_imagebuild/ready answers 503 at once while
    requests are still served; the listener closes after the delay and the process exits 0."""
    import signal as _signal
    import urllib.error
    import urllib.request
    s = start_server("--in-memory", "--shutdown-delay-seconds", "3")

    def get(path):
        try:
            with urllib.request.urlopen(f"{s.endpoint}/_imagebuild/{path}", timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    assert get("ready") == (200, {"Ready": True})
    s.proc.send_signal(_signal.SIGTERM)
    deadline = time.time() + 2
    while get("ready")[0] == 200 and time.time() < deadline:
        time.sleep(0.05)
    assert get("ready") == (503, {"Ready": False, "Reason": "draining"})
    assert get("health")[0] == 200, "liveness is not readiness"
    assert s.proc.wait(20) == 0


def test_json_access_log_names_each_request_and_never_a_secret(start_server, accounts):
    """--log-format json: one access line per request, with the request id the client saw;
    secret keys, signatures and session tokens never reach the log."""
    s = start_server("--in-memory", "--accounts", accounts, "--log-format", "json", *FAST)
    temp = make_client(s.endpoint, access_key=TEMP[0], secret_key=TEMP[1], aws_session_token=TEMP[2])
    sent = []
    temp.meta.events.register("before-send", lambda request, **kw: sent.append(request.headers["Authorization"]))
    ok = start(temp)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        temp.describe_builds(Filters=[{"Name": "colour", "Values": ["x"]}])
    seen = [ok["ResponseMetadata"]["RequestId"], e.value.response["ResponseMetadata"]["RequestId"]]
    assert s.stop() == 0
    lines = [json.loads(x) for x in s.log if x.startswith("{")]
    assert len(lines) == len([x for x in s.log if x.strip()]), "every line is JSON"
    access = {x["fields"]["request_id"]: x["fields"] for x in lines if x["target"] == "imagebuild::access"}
    first, second = access[seen[0]], access[seen[1]]
    assert (first["service"], first["operation"], first["account"], first["region"], first["status"], first["error_code"]) == \
        ("AWSMPImageBuilding", "StartBuild", "111122223333", "us-east-1", 200, "")
    assert (second["operation"], second["status"], second["error_code"]) == ("DescribeBuilds", 400, "InvalidFilterException")
    assert second["bytes_in"] > 0 and second["bytes_out"] > 0 and second["duration_us"] >= 0
    text = "".join(s.log)
    signatures = [(a.decode() if isinstance(a, bytes) else a).split("Signature=")[1] for a in sent]
    for secret in [TEMP[1], TEMP[2], ALICE[1], *signatures]:
        assert secret not in text, secret
