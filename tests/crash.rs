//! Crash safety of the real binary on a data dir: SIGKILL while 1,000 StartBuild calls are in
//! flight, and SIGKILL while the worker is mid-way through builds and scans. After each restart
//! every acknowledged build is there, nothing is duplicated (a retried ClientToken gets the
//! same build, each build has exactly one notification per status) and nothing is stuck (every
//! build and scan reaches a terminal status); and SIGKILL while Catalog change sets are mid-scan
//! and mid-apply (each ends once, no entity half-changed, no lock left). Each trial is bounded
//! in time; none asserts speed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:image-build-events";
const SCAN_TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:ami-scan-events";
const ROLE: &str = "arn:aws:iam::123456789012:role/MarketplaceAmiIngestion";
const BUILDS: usize = 1000;

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    /// Starts `imagebuild serve` on `dir` and waits for "listening on".
    fn start(dir: &Path, extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_imagebuild"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .args(["--max-concurrent-builds", "5000"])
            .args(extra)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let addr: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                        .collect();
                    let _ = tx.send(addr);
                } else if line.contains("ERROR") {
                    let _ = tx.send(format!("error: {line}"));
                }
            }
        });
        let said = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("server ready within 30 s");
        let addr = said
            .parse()
            .unwrap_or_else(|_| panic!("server did not start: {said}"));
        Self { child, addr }
    }

    /// SIGKILL, then reap.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn build_body(trial: &str, i: usize) -> Value {
    let mut b = start_body(GOOD_FO, LINUX_AMI);
    b["ClientToken"] = json!(format!("{trial}-{i}"));
    b["DestinationImageName"] = json!(format!("crash {trial} {i}"));
    b["SnsTopicArn"] = json!(TOPIC);
    b
}

/// Every build of the account, paging through.
async fn all_builds(app: &TestApp) -> Vec<Value> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({"MaxResults": 256});
        if let Some(t) = &token {
            body["NextToken"] = json!(t);
        }
        let r = app.call("DescribeBuilds", body).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        out.extend(r.body["Builds"].as_array().unwrap().iter().cloned());
        match r.body["NextToken"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => return out,
        }
    }
}

/// Waits (bounded) until no build is InProgress; returns every build.
async fn all_builds_settled(app: &TestApp) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let all = all_builds(app).await;
        let running = all.iter().filter(|b| b["Status"] == "InProgress").count();
        if running == 0 {
            return all;
        }
        assert!(
            Instant::now() < deadline,
            "{running} builds stuck InProgress after restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The notifications of `topic` grouped by the id under `id_key`, each a list of statuses.
async fn notifications_by(
    app: &TestApp,
    topic: &str,
    id_key: &str,
) -> HashMap<String, Vec<String>> {
    let (status, text) = app
        .get(&format!(
            "http://{}/_imagebuild/notifications?TopicArn={topic}",
            app.addr
        ))
        .await;
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    let mut by: HashMap<String, Vec<String>> = HashMap::new();
    for n in v["Notifications"].as_array().unwrap() {
        let m: Value = serde_json::from_str(n["Message"].as_str().unwrap()).unwrap();
        by.entry(m[id_key].as_str().unwrap().to_string())
            .or_default()
            .push(m["Status"].as_str().unwrap().to_string());
    }
    by
}

/// Every build is listed once and has exactly one InProgress and one terminal notification.
async fn assert_each_build_once(app: &TestApp, builds: &[Value]) {
    let ids: HashSet<&str> = builds
        .iter()
        .map(|b| b["BuildId"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), builds.len(), "a build is listed twice");
    let by_build = notifications_by(app, TOPIC, "BuildId").await;
    for b in builds {
        let id = b["BuildId"].as_str().unwrap();
        let expected = vec![
            "InProgress".to_string(),
            b["Status"].as_str().unwrap().to_string(),
        ];
        assert_eq!(by_build.get(id), Some(&expected), "notifications of {id}");
    }
    assert_eq!(
        by_build.len(),
        builds.len(),
        "notifications of unknown builds"
    );
}

/// One trial: 1,000 concurrent StartBuild calls, SIGKILL after `kill_after` acknowledgements.
async fn kill_during_concurrent_starts(trial: &str, kill_after: usize) {
    let dir = tempfile::tempdir().unwrap();
    let stages = [
        "--provision-seconds",
        "1",
        "--install-seconds",
        "1",
        "--imaging-seconds",
        "1",
    ];
    let server = Server::start(dir.path(), &stages);
    let app = Arc::new(remote(server.addr));
    let acked: Arc<Mutex<HashMap<usize, String>>> = Arc::default();
    let count = Arc::new(AtomicUsize::new(0));
    let killed = Arc::new(tokio::sync::Notify::new());
    let mut tasks = Vec::with_capacity(BUILDS);
    for i in 0..BUILDS {
        let (app, acked, count, killed) =
            (app.clone(), acked.clone(), count.clone(), killed.clone());
        let trial = trial.to_string();
        tasks.push(tokio::spawn(async move {
            let req = app.signed(
                "AWSMPImageBuilding.StartBuild",
                &build_body(&trial, i).to_string(),
            );
            if let Some(r) = app.try_raw(req).await {
                if r.status == 200 {
                    let id = r.body["BuildId"].as_str().unwrap().to_string();
                    acked.lock().unwrap().insert(i, id);
                    if count.fetch_add(1, Ordering::SeqCst) + 1 == kill_after {
                        killed.notify_one();
                    }
                } else {
                    // Every call that got an answer at all must have succeeded.
                    panic!("StartBuild {i} answered {}: {:?}", r.status, r.body);
                }
            }
        }));
    }
    tokio::time::timeout(Duration::from_secs(60), killed.notified())
        .await
        .expect("enough acknowledgements before the kill");
    server.kill();
    for t in tasks {
        t.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= kill_after);

    let server = Server::start(dir.path(), &stages);
    let app = Arc::new(remote(server.addr));
    let listed = all_builds(&app).await;
    let ids: HashSet<&str> = listed
        .iter()
        .map(|b| b["BuildId"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), listed.len(), "a build is listed twice");
    for (i, id) in &acked {
        assert!(
            ids.contains(id.as_str()),
            "acknowledged build {i} ({id}) lost"
        );
    }

    // What an SDK does next: retry every call with its ClientToken. The acknowledged ones get
    // their build back, the others get one build each; never a second build for a token.
    for from in (0..BUILDS).step_by(100) {
        for (i, r) in start_all(&app, trial, from..from + 100).await {
            assert_eq!(r.status, 200, "retry {i}: {:?}", r.body);
            if let Some(id) = acked.get(&i) {
                assert_eq!(r.body["BuildId"].as_str(), Some(id.as_str()), "retry {i}");
            }
        }
    }
    let settled = all_builds_settled(&app).await;
    assert_eq!(settled.len(), BUILDS, "one build per ClientToken");
    assert!(settled.iter().all(|b| b["Status"] == "Succeeded"));
    assert_each_build_once(&app, &settled).await;
    eprintln!(
        "trial {trial}: killed after {} of {BUILDS} acknowledged ({} persisted at the kill)",
        acked.len(),
        listed.len()
    );
}

/// Sends StartBuild with `build_body(trial, i)` for every `i` at once; replies in order.
async fn start_all(
    app: &Arc<TestApp>,
    trial: &str,
    range: std::ops::Range<usize>,
) -> Vec<(usize, Reply)> {
    let mut set = tokio::task::JoinSet::new();
    for i in range {
        let (app, trial) = (app.clone(), trial.to_string());
        set.spawn(async move { (i, app.call("StartBuild", build_body(&trial, i)).await) });
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        out.push(r.unwrap());
    }
    out.sort_by_key(|(i, _)| *i);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_1000_concurrent_start_builds_loses_and_duplicates_nothing() {
    // Three kill points: early, in the middle, late.
    for (trial, kill_after) in [("early", 50), ("middle", 500), ("late", 950)] {
        kill_during_concurrent_starts(trial, kill_after).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_the_worker_is_mid_build_and_mid_scan_resumes_every_one_once() {
    for trial in ["worker-1", "worker-2"] {
        let dir = tempfile::tempdir().unwrap();
        // Zero-length stages: the worker moves builds and scans as fast as it can.
        let server = Server::start(dir.path(), &[]);
        let app = Arc::new(remote(server.addr));
        let images = app.scan_call("ListImages", json!({})).await;
        let linux: Vec<String> = images.body["Images"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["Platform"] == "Linux")
            .map(|i| i["ImageId"].as_str().unwrap().to_string())
            .collect();
        assert!(linux.len() >= 5, "{:?}", images.body);
        let scans: Vec<Value> = linux
            .iter()
            .map(|id| json!({"SourceImageId": id, "OsUserName": "ec2-user", "AccessRoleArn": ROLE}))
            .collect();
        let r = app
            .scan_call(
                "StartScans",
                json!({"Images": scans, "SnsTopicArn": SCAN_TOPIC}),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        for from in (0..400).step_by(50) {
            for (i, r) in start_all(&app, trial, from..from + 50).await {
                assert_eq!(r.status, 200, "{i}: {:?}", r.body);
            }
        }
        // Kill while some builds are finished and others are still moving.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let all = all_builds(&app).await;
            let done = all.iter().filter(|b| b["Status"] != "InProgress").count();
            if done > 0 && done < all.len() {
                break;
            }
            assert!(
                done == 0 && Instant::now() < deadline,
                "the worker finished all {} builds before the kill could land",
                all.len()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        server.kill();

        let server = Server::start(dir.path(), &[]);
        let app = remote(server.addr);
        let settled = all_builds_settled(&app).await;
        assert_eq!(settled.len(), 400);
        assert!(settled.iter().all(|b| b["Status"] == "Succeeded"));
        let images: HashSet<&str> = settled
            .iter()
            .map(|b| b["DestinationImage"]["Id"].as_str().unwrap())
            .collect();
        assert_eq!(images.len(), 400, "each build created its own image once");
        assert_each_build_once(&app, &settled).await;

        // Scans: each reaches a terminal status with one notification per status it passed.
        let deadline = Instant::now() + Duration::from_secs(60);
        let scans = loop {
            let r = app
                .scan_call("DescribeScans", json!({"MaxResults": 100}))
                .await;
            let list = r.body["Scans"].as_array().unwrap().clone();
            if list
                .iter()
                .all(|s| !matches!(s["Status"].as_str(), Some("Ingesting" | "Scanning")))
            {
                break list;
            }
            assert!(Instant::now() < deadline, "scans stuck: {list:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(scans.len(), linux.len());
        let by_scan = notifications_by(&app, SCAN_TOPIC, "ScanId").await;
        for s in &scans {
            let id = s["ScanId"].as_str().unwrap();
            let seen = by_scan.get(id).unwrap();
            let distinct: HashSet<&String> = seen.iter().collect();
            assert_eq!(
                distinct.len(),
                seen.len(),
                "scan {id} notified twice: {seen:?}"
            );
            assert_eq!(
                seen.last().map(String::as_str),
                s["Status"].as_str(),
                "{seen:?}"
            );
        }
        eprintln!(
            "trial {trial}: worker killed mid-way; 400 builds and {} scans resumed",
            scans.len()
        );
    }
}

/// Every change set of the account, by id.
async fn change_sets(app: &TestApp) -> HashMap<String, Value> {
    let mut out = HashMap::new();
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({"Catalog": "AWSMarketplace", "MaxResults": 20});
        if let Some(t) = &token {
            body["NextToken"] = json!(t);
        }
        let r = app.catalog("POST", "ListChangeSets", "", body).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        for s in r.body["ChangeSetSummaryList"].as_array().unwrap() {
            out.insert(s["ChangeSetId"].as_str().unwrap().to_string(), s.clone());
        }
        match r.body["NextToken"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => return out,
        }
    }
}

/// The clean Ubuntu AMI of set `i` (one per AMI version: an AMI is scanned once at a time).
fn clean_ami(i: usize) -> String {
    format!("ami-0c7a5b{i:011x}")
}

/// The demo world plus a clean copy of its Ubuntu AMI for every AMI version of the trial.
fn world_with_clean_amis(dir: &Path, sets: usize) -> std::path::PathBuf {
    let mut world: Value = serde_json::from_str(imagebuild::world::DEMO_WORLD).unwrap();
    let ubuntu = world["Images"][0].clone();
    let images = world["Images"].as_array_mut().unwrap();
    for i in (0..sets).step_by(3) {
        let mut img = ubuntu.clone();
        img["ImageId"] = json!(clean_ami(i));
        images.push(img);
    }
    let path = dir.join("world.json");
    std::fs::write(&path, world.to_string()).unwrap();
    path
}

fn version_change(i: usize) -> Value {
    // Every third set adds an AMI version (a scan runs); the others a package version.
    let details = if i.is_multiple_of(3) {
        json!({"Version": {"VersionTitle": "1.0", "ReleaseNotes": "n"}, "DeliveryOptions": [{"Details": {"AmiDeliveryOptionDetails": {
            "AmiSource": {"AmiId": clean_ami(i), "AccessRoleArn": ROLE, "UserName": "ubuntu", "OperatingSystemName": "UBUNTU", "OperatingSystemVersion": "22.04"},
            "UsageInstructions": "ssh", "RecommendedInstanceType": "m5.large"}}}]})
    } else {
        json!({"Version": {"VersionTitle": "1.0", "ReleaseNotes": "n"}, "DeliveryOptions": [{"Details": {"PackageDeliveryOptionDetails": {
            "PackageGroupName": format!("crash-{i}"), "Installer": {"Url": "s3://demo-seller-packages/agent-1.0.0.rpm", "Type": ".rpm"},
            "Platform": "Linux", "OperatingSystems": [{"Name": "AMAZONLINUX", "Version": "2023"}]}}}]})
    };
    json!({"Catalog": "AWSMarketplace", "ClientRequestToken": format!("crash-set-{i}"), "ChangeSet": [
        {"ChangeType": "CreateProduct", "ChangeName": "C", "Entity": {"Type": "AmiProduct@1.0"}, "DetailsDocument": {"ProductTitle": format!("Crash {i}")}},
        {"ChangeType": "AddDeliveryOptions", "Entity": {"Type": "AmiProduct@1.0", "Identifier": "$C.Entity.Identifier"}, "DetailsDocument": details},
    ]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_scan_and_mid_apply_ends_every_change_set_once_and_never_half_changes() {
    const SETS: usize = 60;
    let dir = tempfile::tempdir().unwrap();
    let world_dir = tempfile::tempdir().unwrap();
    let world = world_with_clean_amis(world_dir.path(), SETS);
    // Scans take a second per stage, so AMI versions are mid-scan at the kill while package
    // versions are being applied.
    let world = world.to_str().unwrap();
    let args = [
        "--change-set-seconds",
        "0",
        "--ingest-seconds",
        "1",
        "--scan-seconds",
        "1",
        "--world",
        world,
    ];
    let server = Server::start(dir.path(), &args);
    let app = remote(server.addr);
    let mut acked = HashMap::new();
    for i in 0..SETS {
        let r = app
            .catalog("POST", "StartChangeSet", "", version_change(i))
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        acked.insert(i, r.body["ChangeSetId"].as_str().unwrap().to_string());
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let sets = change_sets(&app).await;
        let done = sets.values().filter(|s| s["Status"] == "SUCCEEDED").count();
        if done > 0 && done < SETS {
            break;
        }
        assert!(
            done == 0 && Instant::now() < deadline,
            "all {SETS} sets ended before the kill could land"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill();

    let server = Server::start(dir.path(), &args);
    let app = remote(server.addr);
    // retried tokens give back the acknowledged ids
    for (i, id) in &acked {
        let r = app
            .catalog("POST", "StartChangeSet", "", version_change(*i))
            .await;
        assert_eq!(
            r.body["ChangeSetId"].as_str(),
            Some(id.as_str()),
            "{:?}",
            r.body
        );
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let sets = loop {
        let sets = change_sets(&app).await;
        if sets
            .values()
            .all(|s| !matches!(s["Status"].as_str(), Some("PREPARING" | "APPLYING")))
        {
            break sets;
        }
        assert!(Instant::now() < deadline, "change sets stuck after restart");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        sets.len(),
        SETS,
        "every acknowledged set once, nothing more"
    );
    for (i, id) in &acked {
        let s = &sets[id];
        assert_eq!(s["Status"], "SUCCEEDED", "{s:?}");
        let d = app
            .catalog(
                "GET",
                "DescribeChangeSet",
                &format!("catalog=AWSMarketplace&changeSetId={id}"),
                json!({}),
            )
            .await;
        let product = d.body["ChangeSet"][0]["Entity"]["Identifier"]
            .as_str()
            .unwrap()
            .to_string();
        let e = app
            .catalog(
                "GET",
                "DescribeEntity",
                &format!("catalog=AWSMarketplace&entityId={product}"),
                json!({}),
            )
            .await;
        // created and versioned in one write: revision 1, exactly one version, never half
        assert_eq!(
            e.body["EntityIdentifier"],
            json!(format!("{product}@1")),
            "set {i}"
        );
        assert_eq!(
            e.body["DetailsDocument"]["Versions"]
                .as_array()
                .unwrap()
                .len(),
            1,
            "set {i}"
        );
        // no lock outlived its set
        let again = app.catalog("POST", "StartChangeSet", "", json!({"Catalog": "AWSMarketplace", "ChangeSet": [
            {"ChangeType": "AddRegions", "Entity": {"Type": "AmiProduct@1.0", "Identifier": product}, "DetailsDocument": {"Regions": ["us-east-1"]}}]})).await;
        assert_eq!(again.status, 200, "{:?}", again.body);
    }
    let scans = app
        .scan_call("DescribeScans", json!({"MaxResults": 100}))
        .await;
    let scans = scans.body["Scans"].as_array().unwrap().len();
    assert_eq!(
        scans,
        SETS.div_ceil(3),
        "one scan per AMI version, none repeated after the restart"
    );
    eprintln!("change sets: {SETS} acknowledged, killed mid-way, each ended once");
}
