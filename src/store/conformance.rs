//! The store contract, written once and run against every backend through
//! `store_conformance_suite!`.
//!
//! Depends on: store, domain.

use std::sync::Arc;

use rand::{Rng, SeedableRng};

use super::{BuildQuery, CreateOutcome, Cursor, Effects, Store, StoreError, TokenClaim};
use crate::domain::{Build, BuildStage, BuildStatus, CreatedImage, Notification, ProductRef};

/// Makes a fresh, empty store for one test (and keeps its directory alive).
pub trait StoreFactory {
    /// Returns the store and whatever must outlive it.
    fn create(
    ) -> impl std::future::Future<Output = (Arc<dyn Store>, Option<tempfile::TempDir>)> + Send;
}

/// A minimal in-progress build owned by `account` in us-east-1.
pub fn sample_build(account: &str, created_ms: i64, id: &str) -> Build {
    Build {
        build_id: id.to_string(),
        account: account.to_string(),
        region: "us-east-1".into(),
        created_ms,
        updated_ms: created_ms,
        status: BuildStatus::InProgress,
        stage: BuildStage::Provisioning,
        due_ms: Some(created_ms),
        version: 1,
        fulfillment_option_ids: vec!["fo-a".into()],
        products: vec![ProductRef {
            id: "prod-a".into(),
            version: "1".into(),
            title: "A".into(),
        }],
        source_image_id: "ami-12345678".into(),
        source_image_name: Some("src".into()),
        destination_image_name: "dst".into(),
        destination_image_description: None,
        destination_image_id: None,
        sns_topic_arn: None,
        error: None,
        has_logs: false,
        rendered: crate::domain::RenderMemo::default(),
    }
}

fn claim(token: &str, hash: &str) -> TokenClaim {
    TokenClaim {
        token: token.into(),
        param_hash: hash.into(),
    }
}

fn q(account: &str) -> BuildQuery {
    BuildQuery {
        account: account.into(),
        region: "us-east-1".into(),
        ..BuildQuery::default()
    }
}

pub async fn create_then_get_returns_the_build<F: StoreFactory>() {
    let (s, _d) = F::create().await;
    let b = sample_build("111111111111", 10, "b1");
    assert_eq!(
        s.create_build(&b, None, 5, None).await.unwrap(),
        CreateOutcome::Created
    );
    assert_eq!(s.get_build("b1").await.unwrap(), Some(b));
    assert_eq!(s.get_build("nope").await.unwrap(), None);
}

pub async fn same_token_same_params_replays_without_creating<F: StoreFactory>() {
    let (s, _d) = F::create().await;
    let b1 = sample_build("111111111111", 10, "b1");
    let b2 = sample_build("111111111111", 11, "b2");
    let t = claim("tok", "h1");
    assert_eq!(
        s.create_build(&b1, Some(&t), 5, None).await.unwrap(),
        CreateOutcome::Created
    );
    assert_eq!(
        s.create_build(&b2, Some(&t), 5, None).await.unwrap(),
        CreateOutcome::Replayed(Box::new(b1.clone()))
    );
    assert_eq!(s.get_build("b2").await.unwrap(), None);
    let page = s.list_builds(&q("111111111111"), None, 10).await.unwrap();
    assert_eq!(page.builds.len(), 1);
}

pub async fn same_token_other_params_is_a_mismatch<F: StoreFactory>() {
    let (s, _d) = F::create().await;
    let b1 = sample_build("111111111111", 10, "b1");
    let b2 = sample_build("111111111111", 11, "b2");
    s.create_build(&b1, Some(&claim("tok", "h1")), 5, None)
        .await
        .unwrap();
    assert_eq!(
        s.create_build(&b2, Some(&claim("tok", "h2")), 5, None)
            .await
            .unwrap(),
        CreateOutcome::TokenMismatch
    );
    assert_eq!(s.get_build("b2").await.unwrap(), None);
}

pub async fn tokens_are_scoped_to_account_and_region<F: StoreFactory>() {
    let (s, _d) = F::create().await;
    let b1 = sample_build("111111111111", 10, "b1");
    let b2 = sample_build("222222222222", 11, "b2");
    let mut b3 = sample_build("111111111111", 12, "b3");
    b3.region = "us-west-2".into();
    let t = claim("tok", "h1");
    for b in [&b1, &b2, &b3] {
        assert_eq!(
            s.create_build(b, Some(&t), 5, None).await.unwrap(),
            CreateOutcome::Created
        );
    }
}

pub async fn in_progress_limit_counts_only_in_progress<F: StoreFactory>() {
    let (s, _d) = F::create().await;
    for i in 0..3 {
        let b = sample_build("111111111111", i, &format!("b{i}"));
        assert_eq!(
            s.create_build(&b, None, 3, None).await.unwrap(),
            CreateOutcome::Created
        );
    }
    let b = sample_build("111111111111", 9, "b9");
    assert_eq!(
        s.create_build(&b, None, 3, None).await.unwrap(),
        CreateOutcome::LimitExceeded { limit: 3 }
    );
    // another account is unaffected
    let other = sample_build("222222222222", 9, "o9");
    assert_eq!(
        s.create_build(&other, None, 3, None).await.unwrap(),
        CreateOutcome::Created
    );
    // finishing one frees a slot
    let mut done = s.get_build("b0").await.unwrap().unwrap();
    done.status = BuildStatus::Succeeded;
    done.due_ms = None;
    done.version = 2;
    s.update_build(&done, 1, &Effects::default()).await.unwrap();
    assert_eq!(
        s.create_build(&b, None, 3, None).await.unwrap(),
        CreateOutcome::Created
    );
}

pub async fn concurrent_same_token_creates_exactly_one<F: StoreFactory>() {
    let (s, _d) = F::create().await;
    let mut tasks = Vec::new();
    for i in 0..32 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let b = sample_build("111111111111", i, &format!("b{i}"));
            s.create_build(&b, Some(&claim("same", "h")), 100, None)
                .await
                .unwrap()
        }));
    }
    let mut created = 0;
    for t in tasks {
        match t.await.unwrap() {
            CreateOutcome::Created => created += 1,
            CreateOutcome::Replayed(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(
        s.list_builds(&q("111111111111"), None, 100)
            .await
            .unwrap()
            .builds
            .len(),
        1
    );
}

pub async fn concurrent_creates_never_overshoot_the_limit<F: StoreFactory>() {
    let (s, _d) = F::create().await;
    let mut tasks = Vec::new();
    for i in 0..24 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let b = sample_build("111111111111", i, &format!("b{i}"));
            s.create_build(&b, Some(&claim(&format!("t{i}"), "h")), 5, None)
                .await
                .unwrap()
        }));
    }
    let mut created = 0;
    for t in tasks {
        if t.await.unwrap() == CreateOutcome::Created {
            created += 1;
        }
    }
    assert_eq!(created, 5);
}

pub async fn update_with_stale_version_fails<F: StoreFactory>() {
    let (s, _d) = F::create().await;
    let b = sample_build("111111111111", 10, "b1");
    s.create_build(&b, None, 5, None).await.unwrap();
    let mut next = b.clone();
    next.version = 2;
    next.stage = BuildStage::Installing;
    s.update_build(&next, 1, &Effects::default()).await.unwrap();
    let mut stale = b.clone();
    stale.version = 2;
    assert!(matches!(
        s.update_build(&stale, 1, &Effects::default()).await,
        Err(StoreError::ConditionFailed)
    ));
    assert_eq!(
        s.get_build("b1").await.unwrap().unwrap().stage,
        BuildStage::Installing
    );
    let mut missing = sample_build("111111111111", 10, "nope");
    missing.version = 2;
    assert!(matches!(
        s.update_build(&missing, 1, &Effects::default()).await,
        Err(StoreError::ConditionFailed)
    ));
}

pub async fn listing_is_newest_first_and_pages_are_stable<F: StoreFactory>() {
    let (s, _d) = F::create().await;
    // equal timestamps are ordered by id, descending
    for i in 0..23 {
        let b = sample_build("111111111111", i / 2, &format!("b{i:02}"));
        s.create_build(&b, None, 1000, None).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut cursor: Option<Cursor> = None;
    let mut pages = 0;
    loop {
        let page = s
            .list_builds(&q("111111111111"), cursor.as_ref(), 5)
            .await
            .unwrap();
        pages += 1;
        if page.next.is_some() {
            assert_eq!(page.builds.len(), 5, "pages are full until the last");
        }
        seen.extend(
            page.builds
                .iter()
                .map(|b| (b.created_ms, b.build_id.clone())),
        );
        // a build created between pages (newer) never shifts later pages
        if pages == 2 {
            s.create_build(&sample_build("111111111111", 1000, "new"), None, 1000, None)
                .await
                .unwrap();
        }
        match page.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen.len(), 23);
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted);
    assert_eq!(pages, 5);
}

pub async fn listing_is_scoped_to_account_and_region<F: StoreFactory>() {
    let (s, _d) = F::create().await;
    s.create_build(&sample_build("111111111111", 1, "a"), None, 5, None)
        .await
        .unwrap();
    let mut west = sample_build("111111111111", 2, "w");
    west.region = "us-west-2".into();
    s.create_build(&west, None, 5, None).await.unwrap();
    assert!(s
        .list_builds(&q("222222222222"), None, 10)
        .await
        .unwrap()
        .builds
        .is_empty());
    let ids: Vec<_> = s
        .list_builds(&q("111111111111"), None, 10)
        .await
        .unwrap()
        .builds
        .into_iter()
        .map(|b| b.build_id.clone())
        .collect();
    assert_eq!(ids, vec!["a"]);
    let mut by_id = q("222222222222");
    by_id.build_ids = Some(vec!["a".into()]);
    assert!(s
        .list_builds(&by_id, None, 10)
        .await
        .unwrap()
        .builds
        .is_empty());
}

/// Random data and random queries; every page must equal the reference semantics.
pub async fn filtered_listing_matches_reference_semantics<F: StoreFactory>() {
    let (s, _d) = F::create().await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let fos = ["fo-a", "fo-b", "fo-c", "fo-d"];
    let prods = ["prod-a", "prod-b", "prod-c"];
    let mut all = Vec::new();
    for i in 0..120 {
        let account = if i % 5 == 0 {
            "222222222222"
        } else {
            "111111111111"
        };
        let mut b = sample_build(account, rng.gen_range(0..40), &format!("b{i:03}"));
        b.status = BuildStatus::ALL[rng.gen_range(0..4)];
        b.fulfillment_option_ids = (0..rng.gen_range(1..3))
            .map(|_| fos[rng.gen_range(0..4)].to_string())
            .collect();
        b.fulfillment_option_ids.dedup();
        b.products = (0..rng.gen_range(1..3))
            .map(|_| ProductRef {
                id: prods[rng.gen_range(0..3)].into(),
                version: "1".into(),
                title: "t".into(),
            })
            .collect();
        s.create_build(&b, None, 10_000, None).await.unwrap();
        all.push(b);
    }
    for _ in 0..60 {
        let mut query = q("111111111111");
        if rng.gen_bool(0.4) {
            query.statuses = Some(
                (0..rng.gen_range(1..3))
                    .map(|_| BuildStatus::ALL[rng.gen_range(0..4)])
                    .collect(),
            );
        }
        if rng.gen_bool(0.4) {
            query.fulfillment_option_ids = Some(
                (0..rng.gen_range(1..3))
                    .map(|_| fos[rng.gen_range(0..4)].to_string())
                    .collect(),
            );
        }
        if rng.gen_bool(0.3) {
            query.product_ids = Some(
                (0..rng.gen_range(1..3))
                    .map(|_| prods[rng.gen_range(0..3)].to_string())
                    .collect(),
            );
        }
        if rng.gen_bool(0.15) {
            query.build_ids = Some(
                (0..rng.gen_range(1..8))
                    .map(|_| format!("b{:03}", rng.gen_range(0..130)))
                    .collect(),
            );
        }
        let mut expected: Vec<&Build> = all.iter().filter(|b| query.matches(b)).collect();
        expected.sort_by(|a, b| (b.created_ms, &b.build_id).cmp(&(a.created_ms, &a.build_id)));
        let limit = rng.gen_range(1..9);
        let mut got = Vec::new();
        let mut cursor = None;
        loop {
            let page = s.list_builds(&query, cursor.as_ref(), limit).await.unwrap();
            if page.next.is_some() {
                assert_eq!(page.builds.len(), limit);
            }
            got.extend(page.builds.into_iter().map(|b| b.build_id.clone()));
            match page.next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let want: Vec<String> = expected.iter().map(|b| b.build_id.clone()).collect();
        assert_eq!(got, want, "query {query:?}");
    }
}

pub async fn due_builds_and_next_due<F: StoreFactory>() {
    let (s, _d) = F::create().await;
    let mut a = sample_build("111111111111", 1, "a");
    a.due_ms = Some(50);
    let mut b = sample_build("111111111111", 2, "b");
    b.due_ms = Some(20);
    s.create_build(&a, None, 5, None).await.unwrap();
    s.create_build(&b, None, 5, None).await.unwrap();
    assert_eq!(s.next_due_ms().await.unwrap(), Some(20));
    let due: Vec<_> = s
        .due_builds(30, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.build_id)
        .collect();
    assert_eq!(due, vec!["b"]);
    let due: Vec<_> = s
        .due_builds(100, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.build_id)
        .collect();
    assert_eq!(due, vec!["b", "a"]);
    let mut done = b.clone();
    done.due_ms = None;
    done.status = BuildStatus::Failed;
    done.version = 2;
    s.update_build(&done, 1, &Effects::default()).await.unwrap();
    assert_eq!(s.next_due_ms().await.unwrap(), Some(50));
}

pub async fn outbox_and_images_are_written_with_the_change<F: StoreFactory>() {
    let (s, _d) = F::create().await;
    let n = |m: &str| Notification {
        topic_arn: "arn:t".into(),
        subject: "s".into(),
        message: m.into(),
        created_ms: 1,
    };
    let b = sample_build("111111111111", 1, "a");
    s.create_build(&b, None, 5, Some(&n("one"))).await.unwrap();
    let img = CreatedImage {
        image_id: "ami-0123456789abcdef0".into(),
        region: "us-east-1".into(),
        image: crate::world::World::demo().unwrap().images[0].clone(),
    };
    let mut next = b.clone();
    next.version = 2;
    next.has_logs = true;
    let logs = crate::domain::InstallerLogs {
        stdout: "out".into(),
        stderr: "err".into(),
    };
    let effects = Effects {
        notification: Some(n("two")),
        image: Some(img.clone()),
        logs: Some(logs.clone()),
    };
    s.update_build(&next, 1, &effects).await.unwrap();
    // a failed conditional update writes no effects
    let _ = s
        .update_build(
            &next,
            1,
            &Effects {
                notification: Some(n("lost")),
                ..Effects::default()
            },
        )
        .await;
    assert_eq!(s.installer_logs("a").await.unwrap(), Some(logs));
    assert_eq!(s.installer_logs("b").await.unwrap(), None);
    let pending = s.pending_notifications(10).await.unwrap();
    let msgs: Vec<_> = pending
        .iter()
        .map(|e| e.notification.message.clone())
        .collect();
    assert_eq!(msgs, vec!["one", "two"]);
    s.mark_delivered(&[pending[0].id.clone()], 5).await.unwrap();
    assert_eq!(s.pending_notifications(10).await.unwrap().len(), 1);
    let all = s.notifications(Some("arn:t")).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].delivered_ms, Some(5));
    assert!(s.notifications(Some("arn:other")).await.unwrap().is_empty());
    assert_eq!(
        s.created_image("us-east-1", "ami-0123456789abcdef0")
            .await
            .unwrap(),
        Some(img)
    );
    assert_eq!(
        s.created_image("us-west-2", "ami-0123456789abcdef0")
            .await
            .unwrap(),
        None
    );
    s.clear_notifications(Some("arn:other")).await.unwrap();
    assert_eq!(s.notifications(None).await.unwrap().len(), 2);
    s.clear_notifications(Some("arn:t")).await.unwrap();
    assert!(s.notifications(None).await.unwrap().is_empty());
    assert!(s.pending_notifications(10).await.unwrap().is_empty());
}

pub async fn signing_keys_are_stable_and_rotate<F: StoreFactory>() {
    let (s, _d) = F::create().await;
    let a = s.signing_keys("x", 10).await.unwrap();
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].key.len(), 32);
    assert_eq!(s.signing_keys("x", 20).await.unwrap(), a);
    assert_ne!(s.signing_keys("y", 20).await.unwrap()[0].key, a[0].key);
    let b = s.rotate_key("x", 30).await.unwrap();
    assert_eq!(b.id, a[0].id + 1);
    let both = s.signing_keys("x", 40).await.unwrap();
    assert_eq!(both, vec![b.clone(), a[0].clone()]);
    // the old key verifies for the grace period after its successor appeared, then not
    assert_eq!(super::keys_in_grace(&both, 30 + 99, 100).len(), 2);
    assert_eq!(super::keys_in_grace(&both, 30 + 100, 100), vec![b]);
}

pub async fn reset_clears_one_account_or_everything<F: StoreFactory>() {
    let (s, _d) = F::create().await;
    let t = claim("tok", "h");
    s.create_build(&sample_build("111111111111", 1, "a1"), Some(&t), 1, None)
        .await
        .unwrap();
    s.create_build(&sample_build("222222222222", 2, "b1"), Some(&t), 1, None)
        .await
        .unwrap();
    s.reset(Some("111111111111")).await.unwrap();
    assert_eq!(s.get_build("a1").await.unwrap(), None);
    assert!(s.get_build("b1").await.unwrap().is_some());
    // the token and the in-progress slot of the reset account are free again
    assert_eq!(
        s.create_build(&sample_build("111111111111", 3, "a2"), Some(&t), 1, None)
            .await
            .unwrap(),
        CreateOutcome::Created
    );
    let keys = s.signing_keys("k", 1).await.unwrap();
    s.reset(None).await.unwrap();
    assert_eq!(s.get_build("b1").await.unwrap(), None);
    assert!(s
        .list_builds(&q("111111111111"), None, 10)
        .await
        .unwrap()
        .builds
        .is_empty());
    assert_eq!(
        s.signing_keys("k", 2).await.unwrap(),
        keys,
        "signing keys survive a reset"
    );
    assert_eq!(
        s.create_build(&sample_build("222222222222", 4, "b2"), Some(&t), 1, None)
            .await
            .unwrap(),
        CreateOutcome::Created
    );
}

/// A minimal Linux scan of `image` owned by `account` in us-east-1, Ingesting.
pub fn sample_scan(account: &str, created_ms: i64, id: &str, image: &str) -> crate::scan::Scan {
    crate::scan::Scan {
        scan_id: id.to_string(),
        account: account.to_string(),
        region: "us-east-1".into(),
        created_ms,
        updated_ms: created_ms,
        ended_ms: None,
        status: crate::scan::ScanStatus::Ingesting,
        due_ms: Some(created_ms),
        version: 1,
        source_image_id: image.to_string(),
        source_image_name: None,
        platform: crate::world::Platform::Linux,
        access_role_arn: format!("arn:aws:iam::{account}:role/R"),
        os_user_name: Some("ec2-user".into()),
        scanning_port: 22,
        product_id: None,
        sns_topic_arn: None,
        error: None,
        attempt: 1,
        previous_scan_id: None,
        latest: true,
        report: None,
        scripted: None,
    }
}

fn finished(s: &crate::scan::Scan, status: crate::scan::ScanStatus) -> crate::scan::Scan {
    let mut n = s.clone();
    n.status = status;
    n.version = s.version + 1;
    n.due_ms = None;
    n.ended_ms = Some(s.created_ms + 1);
    n
}

fn scan_q(account: &str) -> super::ScanQuery {
    super::ScanQuery {
        account: account.into(),
        region: "us-east-1".into(),
        ..super::ScanQuery::default()
    }
}

/// Scans are created together with their token; a replay returns them, in order.
pub async fn scans_are_created_with_their_token_and_replayed<F: StoreFactory>() {
    use super::ScanCreateOutcome as O;
    let (st, _d) = F::create().await;
    let a = sample_scan("111111111111", 10, "s-a", "ami-0000000a");
    let b = sample_scan("111111111111", 10, "s-b", "ami-0000000b");
    let t = claim("tok", "h1");
    assert_eq!(
        st.create_scans("StartScans", &[a.clone(), b.clone()], Some(&t), 10, &[])
            .await
            .unwrap(),
        O::Created
    );
    assert_eq!(st.get_scan("s-a").await.unwrap(), Some(a.clone()));
    let again = sample_scan("111111111111", 20, "s-c", "ami-0000000c");
    assert_eq!(
        st.create_scans(
            "StartScans",
            std::slice::from_ref(&again),
            Some(&t),
            10,
            &[]
        )
        .await
        .unwrap(),
        O::Replayed(vec![a, b])
    );
    assert_eq!(
        st.create_scans(
            "StartScans",
            std::slice::from_ref(&again),
            Some(&claim("tok", "h2")),
            10,
            &[]
        )
        .await
        .unwrap(),
        O::TokenMismatch
    );
    // the same token under another operation is another token
    assert_eq!(
        st.create_scans("ResubmitScan", &[again], Some(&t), 10, &[])
            .await
            .unwrap(),
        O::Created
    );
    assert_eq!(
        st.list_scans(&scan_q("111111111111"), None, 10)
            .await
            .unwrap()
            .scans
            .len(),
        3
    );
}

/// One scan in progress per AMI; a resubmission must name the AMI's latest scan.
pub async fn one_scan_in_progress_per_ami_and_resubmits_chain_from_the_latest<F: StoreFactory>() {
    use super::ScanCreateOutcome as O;
    use crate::scan::ScanStatus;
    let (st, _d) = F::create().await;
    let acct = "111111111111";
    let a = sample_scan(acct, 10, "s-a", "ami-0000000a");
    assert_eq!(
        st.create_scans("StartScans", std::slice::from_ref(&a), None, 10, &[])
            .await
            .unwrap(),
        O::Created
    );
    let b = sample_scan(acct, 20, "s-b", "ami-0000000a");
    assert_eq!(
        st.create_scans("StartScans", std::slice::from_ref(&b), None, 10, &[])
            .await
            .unwrap(),
        O::InProgress {
            image_id: "ami-0000000a".into(),
            scan_id: "s-a".into()
        }
    );
    st.update_scan(&finished(&a, ScanStatus::IngestionFailed), 1, None)
        .await
        .unwrap();
    let mut b = b;
    b.previous_scan_id = Some("s-a".into());
    b.attempt = 2;
    assert_eq!(
        st.create_scans("ResubmitScan", std::slice::from_ref(&b), None, 10, &[])
            .await
            .unwrap(),
        O::Created
    );
    assert!(!st.get_scan("s-a").await.unwrap().unwrap().latest);
    assert!(st.get_scan("s-b").await.unwrap().unwrap().latest);
    st.update_scan(&finished(&b, ScanStatus::Succeeded), 1, None)
        .await
        .unwrap();
    let mut c = sample_scan(acct, 30, "s-c", "ami-0000000a");
    c.previous_scan_id = Some("s-a".into());
    assert_eq!(
        st.create_scans("ResubmitScan", &[c], None, 10, &[])
            .await
            .unwrap(),
        O::NotLatest {
            scan_id: "s-a".into(),
            latest_scan_id: "s-b".into()
        }
    );
    // another account's scans of the same AMI id do not interfere
    let other = sample_scan("222222222222", 40, "s-x", "ami-0000000a");
    assert_eq!(
        st.create_scans("StartScans", &[other], None, 10, &[])
            .await
            .unwrap(),
        O::Created
    );
    let latest = st
        .list_scans(
            &super::ScanQuery {
                latest_only: true,
                ..scan_q(acct)
            },
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(
        latest
            .scans
            .iter()
            .map(|s| s.scan_id.as_str())
            .collect::<Vec<_>>(),
        ["s-b"]
    );
}

/// The in-progress quota counts Ingesting and Scanning scans; a request over it creates nothing.
pub async fn scan_limit_is_all_or_nothing<F: StoreFactory>() {
    use super::ScanCreateOutcome as O;
    use crate::scan::ScanStatus;
    let (st, _d) = F::create().await;
    let acct = "111111111111";
    let a = sample_scan(acct, 1, "s-1", "ami-00000001");
    let b = sample_scan(acct, 1, "s-2", "ami-00000002");
    assert_eq!(
        st.create_scans("StartScans", &[a.clone(), b], None, 3, &[])
            .await
            .unwrap(),
        O::Created
    );
    let two = [
        sample_scan(acct, 2, "s-3", "ami-00000003"),
        sample_scan(acct, 2, "s-4", "ami-00000004"),
    ];
    assert_eq!(
        st.create_scans("StartScans", &two, None, 3, &[])
            .await
            .unwrap(),
        O::LimitExceeded { limit: 3 }
    );
    assert_eq!(st.get_scan("s-3").await.unwrap(), None);
    let mut scanning = finished(&a, ScanStatus::Scanning);
    scanning.due_ms = Some(5);
    scanning.ended_ms = None;
    st.update_scan(&scanning, 1, None).await.unwrap();
    assert_eq!(
        st.create_scans("StartScans", &two, None, 3, &[])
            .await
            .unwrap(),
        O::LimitExceeded { limit: 3 }
    );
    st.update_scan(&finished(&scanning, ScanStatus::Failed), 2, None)
        .await
        .unwrap();
    assert_eq!(
        st.create_scans("StartScans", &two, None, 3, &[])
            .await
            .unwrap(),
        O::Created
    );
}

/// Racing starts of one AMI create exactly one scan.
pub async fn concurrent_starts_of_one_ami_create_one_scan<F: StoreFactory>() {
    use super::ScanCreateOutcome as O;
    let (st, _d) = F::create().await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let st = st.clone();
        tasks.push(tokio::spawn(async move {
            let s = sample_scan("111111111111", 5, &format!("s-{i:02}"), "ami-0000000a");
            st.create_scans("StartScans", &[s], None, 50, &[])
                .await
                .unwrap()
        }));
    }
    let mut created = 0;
    for t in tasks {
        if t.await.unwrap() == O::Created {
            created += 1;
        }
    }
    assert_eq!(created, 1);
    assert_eq!(
        st.list_scans(&scan_q("111111111111"), None, 50)
            .await
            .unwrap()
            .scans
            .len(),
        1
    );
}

/// Filtered, paged scan listings return exactly what the reference semantics select,
/// newest first, with no duplicates across pages.
pub async fn scan_listing_matches_reference_semantics<F: StoreFactory>() {
    use crate::scan::ScanStatus;
    let (st, _d) = F::create().await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut all = Vec::new();
    for i in 0..60 {
        let acct = if i % 7 == 0 {
            "222222222222"
        } else {
            "111111111111"
        };
        let image = format!("ami-0000000{}", i % 5);
        let mut s = sample_scan(acct, 100 + i / 3, &format!("s-{i:03}"), &image);
        s.product_id = (i % 3 != 0).then(|| format!("prod-{}", i % 2));
        // finish whatever is latest for the image so the next start is allowed
        let q = super::ScanQuery {
            image_ids: Some(vec![image.clone()]),
            latest_only: true,
            ..scan_q(acct)
        };
        if let Some(prev) = st.list_scans(&q, None, 1).await.unwrap().scans.first() {
            let status = [
                ScanStatus::Succeeded,
                ScanStatus::IssuesFound,
                ScanStatus::Failed,
            ][rng.gen_range(0..3)];
            st.update_scan(&finished(prev, status), prev.version, None)
                .await
                .unwrap();
        }
        assert_eq!(
            st.create_scans("StartScans", &[s], None, 100, &[])
                .await
                .unwrap(),
            super::ScanCreateOutcome::Created
        );
    }
    for i in 0..60 {
        if let Some(s) = st.get_scan(&format!("s-{i:03}")).await.unwrap() {
            all.push(s);
        }
    }
    let queries = [
        scan_q("111111111111"),
        super::ScanQuery {
            latest_only: true,
            ..scan_q("111111111111")
        },
        super::ScanQuery {
            image_ids: Some(vec!["ami-00000001".into(), "ami-00000003".into()]),
            ..scan_q("111111111111")
        },
        super::ScanQuery {
            product_ids: Some(vec!["prod-1".into()]),
            statuses: Some(vec![ScanStatus::Succeeded, ScanStatus::Ingesting]),
            ..scan_q("111111111111")
        },
        super::ScanQuery {
            statuses: Some(vec![ScanStatus::Failed]),
            latest_only: true,
            ..scan_q("111111111111")
        },
        super::ScanQuery {
            scan_ids: Some(vec![
                "s-001".into(),
                "s-002".into(),
                "s-007".into(),
                "nope".into(),
            ]),
            ..scan_q("111111111111")
        },
        super::ScanQuery {
            image_ids: Some(vec!["ami-00000002".into()]),
            product_ids: Some(vec!["prod-0".into()]),
            ..scan_q("222222222222")
        },
    ];
    for q in &queries {
        let mut expected: Vec<&crate::scan::Scan> = all.iter().filter(|s| q.matches(s)).collect();
        expected.sort_by(|a, b| (b.created_ms, &b.scan_id).cmp(&(a.created_ms, &a.scan_id)));
        let mut got = Vec::new();
        let mut after = None;
        loop {
            let page = st.list_scans(q, after.as_ref(), 4).await.unwrap();
            assert!(page.scans.len() <= 4);
            got.extend(page.scans.into_iter().map(|s| s.scan_id));
            match page.next {
                Some(c) => after = Some(c),
                None => break,
            }
        }
        let want: Vec<String> = expected.iter().map(|s| s.scan_id.clone()).collect();
        assert_eq!(got, want, "{q:?}");
    }
}

/// Due scans come back earliest first, updates are fenced by version and queue their
/// notification, and reset removes scans.
pub async fn due_scans_updates_and_reset<F: StoreFactory>() {
    use crate::scan::ScanStatus;
    let (st, _d) = F::create().await;
    let mut a = sample_scan("111111111111", 10, "s-a", "ami-0000000a");
    a.due_ms = Some(50);
    let mut b = sample_scan("222222222222", 10, "s-b", "ami-0000000b");
    b.due_ms = Some(40);
    st.create_scans("StartScans", std::slice::from_ref(&a), None, 10, &[])
        .await
        .unwrap();
    st.create_scans("StartScans", std::slice::from_ref(&b), None, 10, &[])
        .await
        .unwrap();
    let due: Vec<String> = st
        .due_scans(100, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.scan_id)
        .collect();
    assert_eq!(due, ["s-b", "s-a"]);
    assert!(st.due_scans(45, 10).await.unwrap().len() == 1);
    assert_eq!(st.next_due_ms().await.unwrap(), Some(40));
    let n = Notification {
        topic_arn: "arn:aws:sns:us-east-1:111111111111:t".into(),
        subject: "s".into(),
        message: "{}".into(),
        created_ms: 60,
    };
    let done = finished(&b, ScanStatus::Succeeded);
    st.update_scan(&done, 1, Some(&n)).await.unwrap();
    assert!(matches!(
        st.update_scan(&done, 1, None).await,
        Err(StoreError::ConditionFailed)
    ));
    assert_eq!(st.notifications(None).await.unwrap().len(), 1);
    assert_eq!(st.due_scans(100, 10).await.unwrap().len(), 1);
    assert_eq!(st.next_due_ms().await.unwrap(), Some(50));
    st.reset(Some("111111111111")).await.unwrap();
    assert_eq!(st.get_scan("s-a").await.unwrap(), None);
    assert!(st.get_scan("s-b").await.unwrap().is_some());
    st.reset(None).await.unwrap();
    assert_eq!(st.get_scan("s-b").await.unwrap(), None);
    assert_eq!(st.next_due_ms().await.unwrap(), None);
}

fn doc(
    kind: &str,
    id: &str,
    owner: &str,
    version: u64,
    due_ms: Option<i64>,
    body: &str,
) -> super::Doc {
    super::Doc {
        kind: kind.into(),
        id: id.into(),
        owner: owner.into(),
        version,
        due_ms,
        sort: id.into(),
        body: body.into(),
    }
}

fn put(d: super::Doc, expected: Option<u64>) -> super::DocWrite {
    super::DocWrite::Put { doc: d, expected }
}

/// Catalog documents: put-if-absent, version-fenced replace and delete, all or nothing.
pub async fn documents_are_versioned_and_written_all_or_nothing<F: StoreFactory>() {
    let (st, _dir) = F::create().await;
    st.write_docs(&[put(
        doc("entity", "prod-1", "111111111111", 1, None, "{}"),
        None,
    )])
    .await
    .unwrap();
    // a second create of the same id loses, and takes the other writes of its batch with it
    let lost = st
        .write_docs(&[
            put(doc("lock", "prod-9", "111111111111", 1, None, "cs"), None),
            put(
                doc("entity", "prod-1", "111111111111", 1, None, "{\"x\":1}"),
                None,
            ),
        ])
        .await;
    assert!(matches!(lost, Err(StoreError::ConditionFailed)), "{lost:?}");
    assert_eq!(st.get_doc("lock", "prod-9").await.unwrap(), None);
    assert_eq!(
        st.get_doc("entity", "prod-1").await.unwrap().unwrap().body,
        "{}"
    );
    // replace on the read version only
    st.write_docs(&[put(
        doc("entity", "prod-1", "111111111111", 2, Some(5), "v2"),
        Some(1),
    )])
    .await
    .unwrap();
    let stale = st
        .write_docs(&[put(
            doc("entity", "prod-1", "111111111111", 2, None, "v2b"),
            Some(1),
        )])
        .await;
    assert!(matches!(stale, Err(StoreError::ConditionFailed)));
    let got = st.get_doc("entity", "prod-1").await.unwrap().unwrap();
    assert_eq!(
        (got.version, got.due_ms, got.body.as_str()),
        (2, Some(5), "v2")
    );
    // delete fenced too
    let wrong = st
        .write_docs(&[super::DocWrite::Delete {
            kind: "entity".into(),
            id: "prod-1".into(),
            expected: 1,
        }])
        .await;
    assert!(matches!(wrong, Err(StoreError::ConditionFailed)));
    st.write_docs(&[super::DocWrite::Delete {
        kind: "entity".into(),
        id: "prod-1".into(),
        expected: 2,
    }])
    .await
    .unwrap();
    assert_eq!(st.get_doc("entity", "prod-1").await.unwrap(), None);
}

/// Listing by owner and kind, due documents earliest first, reset by account.
pub async fn documents_list_by_owner_come_due_and_reset<F: StoreFactory>() {
    let (st, _dir) = F::create().await;
    let a = "111111111111";
    let b = "222222222222";
    st.write_docs(&[
        put(doc("changeset", "c2", a, 1, Some(20), "2"), None),
        put(doc("changeset", "c1", a, 1, Some(10), "1"), None),
        put(doc("changeset", "c3", b, 1, None, "3"), None),
        put(doc("entity", "e1", a, 1, Some(1), "e"), None),
    ])
    .await
    .unwrap();
    let ids = |v: Vec<super::Doc>| v.into_iter().map(|d| d.id).collect::<Vec<_>>();
    assert_eq!(
        ids(st.list_docs("changeset", a).await.unwrap()),
        ["c1", "c2"]
    );
    assert_eq!(ids(st.list_docs("changeset", b).await.unwrap()), ["c3"]);
    assert_eq!(ids(st.due_docs("changeset", 15, 10).await.unwrap()), ["c1"]);
    assert_eq!(
        ids(st.due_docs("changeset", 100, 10).await.unwrap()),
        ["c1", "c2"]
    );
    assert_eq!(ids(st.due_docs("changeset", 100, 1).await.unwrap()), ["c1"]);
    st.reset(Some(a)).await.unwrap();
    assert!(st.list_docs("changeset", a).await.unwrap().is_empty());
    assert_eq!(ids(st.list_docs("changeset", b).await.unwrap()), ["c3"]);
    st.reset(None).await.unwrap();
    assert!(st.list_docs("changeset", b).await.unwrap().is_empty());
}

/// Keyset pages by `sort`, highest first, are O(page) and stable as documents change.
pub async fn documents_page_by_sort_key_descending<F: StoreFactory>() {
    let (st, _dir) = F::create().await;
    let a = "111111111111";
    let mut writes = Vec::new();
    for i in 0..25 {
        let mut d = doc("entity", &format!("e{i:02}"), a, 1, None, "{}");
        d.sort = format!("{:013}#e{i:02}", 1000 + (i % 5));
        writes.push(put(d, None));
    }
    writes.push(put(
        doc("entity", "other", "222222222222", 1, None, "{}"),
        None,
    ));
    st.write_docs(&writes).await.unwrap();
    let mut seen = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let page = st
            .page_docs("entity", a, before.as_deref(), 10)
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        before = page.last().map(|d| d.sort.clone());
        seen.extend(page.into_iter().map(|d| d.sort));
    }
    let mut expected = seen.clone();
    expected.sort();
    expected.reverse();
    assert_eq!(seen, expected);
    assert_eq!(seen.len(), 25);
    assert_eq!(
        st.list_docs("entity", a)
            .await
            .unwrap()
            .first()
            .map(|d| d.sort.clone()),
        seen.last().cloned()
    );
}

/// Counters: increments stop at their bound, taking their whole write with them; releases
/// never fail (callers release only what they counted).
pub async fn counters_bound_their_writes<F: StoreFactory>() {
    let (st, _dir) = F::create().await;
    let count = |delta: i64| super::DocWrite::Count {
        kind: "opencount".into(),
        id: "111111111111".into(),
        owner: "111111111111".into(),
        delta,
        max: 2,
    };
    for i in 0..2 {
        st.write_docs(&[
            count(1),
            put(
                doc("changeset", &format!("c{i}"), "111111111111", 1, None, "{}"),
                None,
            ),
        ])
        .await
        .unwrap();
    }
    let over = st
        .write_docs(&[
            count(1),
            put(doc("changeset", "c2", "111111111111", 1, None, "{}"), None),
        ])
        .await;
    assert!(matches!(over, Err(StoreError::ConditionFailed)), "{over:?}");
    assert_eq!(st.get_doc("changeset", "c2").await.unwrap(), None);
    let version = |st: Arc<dyn Store>| async move {
        st.get_doc("opencount", "111111111111")
            .await
            .unwrap()
            .unwrap()
            .version
    };
    assert_eq!(version(st.clone()).await, 2);
    st.write_docs(&[count(-1)]).await.unwrap();
    st.write_docs(&[count(1)]).await.unwrap();
    assert_eq!(version(st.clone()).await, 2);
    for _ in 0..2 {
        st.write_docs(&[count(-1)]).await.unwrap();
    }
    assert_eq!(version(st.clone()).await, 0);
}

/// Sixteen writers racing for one lock: exactly one wins.
pub async fn concurrent_lock_claims_have_one_winner<F: StoreFactory>() {
    let (st, _dir) = F::create().await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let st = st.clone();
        tasks.push(tokio::spawn(async move {
            st.write_docs(&[
                put(
                    doc(
                        "changeset",
                        &format!("cs{i}"),
                        "111111111111",
                        1,
                        None,
                        "{}",
                    ),
                    None,
                ),
                put(
                    doc("lock", "prod-1", "111111111111", 1, None, &format!("cs{i}")),
                    None,
                ),
            ])
            .await
        }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => won += 1,
            Err(StoreError::ConditionFailed) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(won, 1);
    let holder = st.get_doc("lock", "prod-1").await.unwrap().unwrap().body;
    assert!(st.get_doc("changeset", &holder).await.unwrap().is_some());
    assert_eq!(
        st.list_docs("changeset", "111111111111")
            .await
            .unwrap()
            .len(),
        1
    );
}

/// The catalog half of the store contract.
#[macro_export]
macro_rules! doc_store_conformance_suite {
    ($factory:ty $(, #[$attr:meta])?) => {
        $crate::store_conformance_suite!(@tests $factory; [$(#[$attr])?];
            documents_are_versioned_and_written_all_or_nothing,
            documents_list_by_owner_come_due_and_reset,
            documents_page_by_sort_key_descending,
            counters_bound_their_writes,
            concurrent_lock_claims_have_one_winner
        );
    };
}

/// The scan half of the store contract, for the backends that keep scans.
#[macro_export]
macro_rules! scan_store_conformance_suite {
    ($factory:ty $(, #[$attr:meta])?) => {
        $crate::store_conformance_suite!(@tests $factory; [$(#[$attr])?];
            scans_are_created_with_their_token_and_replayed,
            one_scan_in_progress_per_ami_and_resubmits_chain_from_the_latest,
            scan_limit_is_all_or_nothing,
            concurrent_starts_of_one_ami_create_one_scan,
            scan_listing_matches_reference_semantics,
            due_scans_updates_and_reset
        );
    };
}

/// Instantiates the conformance suite for a `StoreFactory`.
#[macro_export]
macro_rules! store_conformance_suite {
    ($factory:ty $(, #[$attr:meta])?) => {
        $crate::store_conformance_suite!(@tests $factory; [$(#[$attr])?];
            create_then_get_returns_the_build,
            same_token_same_params_replays_without_creating,
            same_token_other_params_is_a_mismatch,
            tokens_are_scoped_to_account_and_region,
            in_progress_limit_counts_only_in_progress,
            concurrent_same_token_creates_exactly_one,
            concurrent_creates_never_overshoot_the_limit,
            update_with_stale_version_fails,
            listing_is_newest_first_and_pages_are_stable,
            listing_is_scoped_to_account_and_region,
            filtered_listing_matches_reference_semantics,
            due_builds_and_next_due,
            outbox_and_images_are_written_with_the_change,
            signing_keys_are_stable_and_rotate,
            reset_clears_one_account_or_everything
        );
    };
    (@tests $factory:ty; $attrs:tt; $($name:ident),* $(,)?) => {
        $( $crate::store_conformance_suite!(@one $factory; $attrs; $name); )*
    };
    (@one $factory:ty; [$($attr:tt)*]; $name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        $($attr)*
        async fn $name() {
            $crate::store::conformance::$name::<$factory>().await;
        }
    };
}

/// A store whose every call fails as an unreachable backend would.
#[derive(Debug, Default)]
pub struct FailingStore;

#[async_trait::async_trait]
impl Store for FailingStore {
    async fn create_build(
        &self,
        _: &Build,
        _: Option<&TokenClaim>,
        _: u32,
        _: Option<&Notification>,
    ) -> Result<CreateOutcome, StoreError> {
        Err(StoreError::Unavailable("injected".into()))
    }
    async fn list_builds(
        &self,
        _: &BuildQuery,
        _: Option<&Cursor>,
        _: usize,
    ) -> Result<super::Page, StoreError> {
        Err(StoreError::Unavailable("injected".into()))
    }
    async fn get_build(&self, _: &str) -> Result<Option<Build>, StoreError> {
        Err(StoreError::Unavailable("injected".into()))
    }
    async fn due_builds(&self, _: i64, _: usize) -> Result<Vec<Build>, StoreError> {
        Err(StoreError::Unavailable("injected".into()))
    }
    async fn next_due_ms(&self) -> Result<Option<i64>, StoreError> {
        Err(StoreError::Unavailable("injected".into()))
    }
    async fn update_build(&self, _: &Build, _: u64, _: &Effects) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("injected".into()))
    }
    async fn create_scans(
        &self,
        _: &str,
        _: &[crate::scan::Scan],
        _: Option<&TokenClaim>,
        _: u32,
        _: &[Notification],
    ) -> Result<super::ScanCreateOutcome, StoreError> {
        Err(StoreError::Unavailable("injected".into()))
    }
    async fn list_scans(
        &self,
        _: &super::ScanQuery,
        _: Option<&Cursor>,
        _: usize,
    ) -> Result<super::ScanPage, StoreError> {
        Err(StoreError::Unavailable("injected".into()))
    }
    async fn get_scan(&self, _: &str) -> Result<Option<crate::scan::Scan>, StoreError> {
        Err(StoreError::Unavailable("injected".into()))
    }
    async fn due_scans(&self, _: i64, _: usize) -> Result<Vec<crate::scan::Scan>, StoreError> {
        Err(StoreError::Unavailable("injected".into()))
    }
    async fn update_scan(
        &self,
        _: &crate::scan::Scan,
        _: u64,
        _: Option<&Notification>,
    ) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("injected".into()))
    }
    async fn created_image(&self, _: &str, _: &str) -> Result<Option<CreatedImage>, StoreError> {
        Err(StoreError::Unavailable("injected".into()))
    }
    async fn pending_notifications(&self, _: usize) -> Result<Vec<super::OutboxEntry>, StoreError> {
        Err(StoreError::Unavailable("injected".into()))
    }
    async fn mark_delivered(&self, _: &[String], _: i64) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("injected".into()))
    }
    async fn notifications(&self, _: Option<&str>) -> Result<Vec<super::OutboxEntry>, StoreError> {
        Err(StoreError::Unavailable("injected".into()))
    }
    async fn signing_keys(&self, _: &str, _: i64) -> Result<Vec<super::SigningKey>, StoreError> {
        Err(StoreError::Unavailable("injected".into()))
    }
    async fn rotate_key(&self, _: &str, _: i64) -> Result<super::SigningKey, StoreError> {
        Err(StoreError::Unavailable("injected".into()))
    }
    async fn get_doc(&self, _: &str, _: &str) -> Result<Option<super::Doc>, StoreError> {
        Err(StoreError::Unavailable("injected".into()))
    }
    async fn list_docs(&self, _: &str, _: &str) -> Result<Vec<super::Doc>, StoreError> {
        Err(StoreError::Unavailable("injected".into()))
    }
    async fn page_docs(
        &self,
        _: &str,
        _: &str,
        _: Option<&str>,
        _: usize,
    ) -> Result<Vec<super::Doc>, StoreError> {
        Err(StoreError::Unavailable("injected".into()))
    }
    async fn due_docs(&self, _: &str, _: i64, _: usize) -> Result<Vec<super::Doc>, StoreError> {
        Err(StoreError::Unavailable("injected".into()))
    }
    async fn write_docs(&self, _: &[super::DocWrite]) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("injected".into()))
    }
    async fn status_counts(&self, _: &[&str]) -> Result<Vec<super::StatusCount>, StoreError> {
        Err(StoreError::Unavailable("injected".into()))
    }
    async fn clear_notifications(&self, _: Option<&str>) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("injected".into()))
    }
    async fn reset(&self, _: Option<&str>) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("injected".into()))
    }
    async fn installer_logs(
        &self,
        _: &str,
    ) -> Result<Option<crate::domain::InstallerLogs>, StoreError> {
        Err(StoreError::Unavailable("injected".into()))
    }
}
