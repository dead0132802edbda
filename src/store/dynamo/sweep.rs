//! Slots of the in-progress build quota are reserved by name, so that none leaks.
//!
//! StartBuild takes its slot with a single-item `ADD n 1` on the account's counter (the
//! contended check), then writes the build in a transaction. An instance that dies between the
//! two would leak the slot for ever. So the `ADD` also adds a reservation
//! `{created_ms:013}#{build_id}` to the counter's `pending` set, and the transaction that
//! writes the build deletes it — on condition that it is still there. A reservation older than
//! the grace period therefore names a build that was never written; the sweep gives its slot
//! back (`ADD n -1 DELETE pending r`, on the same condition), and a transaction that would
//! still arrive later fails instead of counting a build twice. No recount can tell a leak from
//! a start in flight; a named reservation can, exactly.
//!
//! One instance sweeps at a time, under a lease (`LEASE#sweep`) that lapses if it dies. Scan
//! counters move inside the transactions that write the scans, so they cannot leak.
//!
//! Depends on: store (trait types), the parent module's helpers.

use std::sync::OnceLock;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, TransactWriteItem, Update};

use super::{build_error, condition_failed, get_n, get_s, n, s, unavailable, DynamoStore, Item};
use crate::domain::Build;
use crate::store::{StoreError, Sweep};

/// GSI4 partition listing every in-progress counter.
pub(super) const COUNTERS: &str = "CTR";
const LEASE_PK: &str = "LEASE#sweep";

/// The reservation of `build`'s slot.
pub(super) fn reservation(build: &Build) -> String {
    format!("{:013}#{}", build.created_ms, build.build_id)
}

/// When a reservation was made.
fn reserved_at(r: &str) -> Option<i64> {
    r.split('#').next().and_then(|ms| ms.parse().ok())
}

/// The transaction item that turns a reservation into the build being written.
pub(super) fn settle_in_transaction(
    table: &str,
    counter_pk: &str,
    reservation: &str,
) -> Result<TransactWriteItem, StoreError> {
    let u = Update::builder()
        .table_name(table)
        .key("PK", s(counter_pk))
        .key("SK", s("C"))
        .update_expression("DELETE pending :r")
        .condition_expression("contains(pending, :one)")
        .expression_attribute_values(":r", AttributeValue::Ss(vec![reservation.to_string()]))
        .expression_attribute_values(":one", s(reservation))
        .build()
        .map_err(build_error)?;
    Ok(TransactWriteItem::builder().update(u).build())
}

/// With `IMAGEBUILD_FAILPOINT=<name>` the calling task stops here for ever (logging that it
/// did), so a test can kill the process at exactly this point. Unset, it costs one load.
pub(super) async fn failpoint(name: &str) {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    let armed = ARMED.get_or_init(|| std::env::var("IMAGEBUILD_FAILPOINT").ok());
    if armed.as_deref() == Some(name) {
        tracing::warn!(failpoint = name, "failpoint reached; this task stops here");
        std::future::pending::<()>().await;
    }
}

impl DynamoStore {
    /// Takes a slot of the account's in-progress quota under `reservation`: `Ok(false)` when
    /// `limit` builds are already in progress.
    pub(super) async fn reserve_slot(
        &self,
        counter_pk: &str,
        reservation: &str,
        limit: u32,
    ) -> Result<bool, StoreError> {
        let reserved = self
            .counter_write(
                counter_pk,
                reservation,
                "ADD n :one, pending :r SET G4PK = :ctr, G4SK = :pk",
                "attribute_not_exists(n) OR n < :limit",
                [
                    (":one", n(1)),
                    (":ctr", s(COUNTERS)),
                    (":pk", s(counter_pk)),
                    (":limit", n(i64::from(limit))),
                ],
            )
            .await?;
        if reserved {
            failpoint("after-build-reservation").await;
        }
        Ok(reserved)
    }

    /// Gives a reserved slot back if the reservation is still there: `Ok(true)` when it was.
    pub(super) async fn release_slot(
        &self,
        counter_pk: &str,
        reservation: &str,
    ) -> Result<bool, StoreError> {
        self.counter_write(
            counter_pk,
            reservation,
            "ADD n :minus DELETE pending :r",
            "contains(pending, :one)",
            [(":minus", n(-1)), (":one", s(reservation))],
        )
        .await
    }

    /// One conditional update of an in-progress counter naming `reservation` as `:r`:
    /// `Ok(false)` when the condition does not hold.
    async fn counter_write<const N: usize>(
        &self,
        counter_pk: &str,
        reservation: &str,
        update: &str,
        condition: &str,
        values: [(&str, AttributeValue); N],
    ) -> Result<bool, StoreError> {
        let mut u = self
            .client
            .update_item()
            .table_name(&*self.table)
            .key("PK", s(counter_pk))
            .key("SK", s("C"))
            .update_expression(update)
            .condition_expression(condition)
            .expression_attribute_values(":r", AttributeValue::Ss(vec![reservation.to_string()]));
        for (name, value) in values {
            u = u.expression_attribute_values(name, value);
        }
        match u.send().await {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// Takes or renews the sweep lease until `until`: `None` when another instance holds it,
    /// else whether it was taken over from another instance.
    async fn take_lease(
        &self,
        owner: &str,
        now_ms: i64,
        until: i64,
    ) -> Result<Option<bool>, StoreError> {
        let r = self
            .client
            .update_item()
            .table_name(&*self.table)
            .key("PK", s(LEASE_PK))
            .key("SK", s("LEASE"))
            .update_expression("SET #o = :me, #u = :until")
            .condition_expression("attribute_not_exists(PK) OR #u < :now OR #o = :me")
            .expression_attribute_names("#o", "owner")
            .expression_attribute_names("#u", "until")
            .expression_attribute_values(":me", s(owner))
            .expression_attribute_values(":until", n(until))
            .expression_attribute_values(":now", n(now_ms))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match r {
            Ok(out) => {
                let before = out.attributes().and_then(|a| get_s(a, "owner"));
                Ok(Some(before.is_some_and(|o| o != owner)))
            }
            Err(e) if condition_failed(&e) => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// Every counter with its reservations.
    async fn counters(&self) -> Result<Vec<Item>, StoreError> {
        self.partition("GSI4", "G4PK", COUNTERS.to_string()).await
    }

    /// One sweep pass (see the module's notes); the lease lasts three grace periods.
    pub(super) async fn sweep(
        &self,
        owner: &str,
        now_ms: i64,
        grace_ms: i64,
    ) -> Result<Sweep, StoreError> {
        let Some(took_over) = self
            .take_lease(owner, now_ms, now_ms + 3 * grace_ms.max(1000))
            .await?
        else {
            return Ok(Sweep::default());
        };
        let mut out = Sweep {
            held: true,
            took_over,
            released: 0,
        };
        for counter in self.counters().await? {
            let Some(pk) = get_s(&counter, "PK") else {
                continue;
            };
            let pending = counter
                .get("pending")
                .and_then(|v| v.as_ss().ok())
                .cloned()
                .unwrap_or_default();
            for r in pending {
                if reserved_at(&r).is_some_and(|at| now_ms - at >= grace_ms)
                    && self.release_slot(pk, &r).await?
                {
                    tracing::warn!(counter = pk, reservation = %r, in_progress_before = get_n(&counter, "n"),
                        "gave back an in-progress slot whose build was never written");
                    out.released += 1;
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::sample_build;
    use crate::store::Store;

    async fn store() -> DynamoStore {
        let endpoint = std::env::var("IMAGEBUILD_TEST_DYNAMODB_ENDPOINT")
            .expect("IMAGEBUILD_TEST_DYNAMODB_ENDPOINT (./scripts/test starts moto_server)");
        let client = DynamoStore::static_client(&endpoint, "us-east-1", "testing", "testing");
        let store = DynamoStore::new(client, &format!("t-{}", uuid::Uuid::new_v4()));
        assert!(store.create_table().await.unwrap());
        store
    }

    async fn counter(store: &DynamoStore, pk: &str) -> Item {
        store.get(pk.to_string(), "C").await.unwrap().unwrap()
    }

    /// A slot reserved as StartBuild reserves it, by an instance that then died.
    async fn leak(store: &DynamoStore, pk: &str, reservation: &str) {
        assert!(store.reserve_slot(pk, reservation, 100).await.unwrap());
    }

    #[tokio::test]
    #[ignore = "needs IMAGEBUILD_TEST_DYNAMODB_ENDPOINT (./scripts/test runs it against moto_server)"]
    async fn a_written_build_leaves_no_reservation_and_a_leaked_one_is_given_back() {
        let store = store().await;
        let b = sample_build("123456789012", 1_000, "b-0001");
        let pk = format!("C#{}#{}", b.account, b.region);
        store.create_build(&b, None, 5, None).await.unwrap();
        let c = counter(&store, &pk).await;
        assert_eq!(get_n(&c, "n"), Some(1));
        assert!(!c.contains_key("pending"), "{c:?}");

        leak(&store, &pk, "0000000002000#lost-build").await;
        assert_eq!(get_n(&counter(&store, &pk).await, "n"), Some(2));
        // Too young: kept (its StartBuild may still be on its way).
        let young = store.sweep_reservations("a", 2_500, 1_000).await.unwrap();
        assert_eq!((young.held, young.released), (true, 0));
        // Another instance waits for the lease; then the holder gives the slot back once.
        let other = store.sweep_reservations("b", 3_500, 1_000).await.unwrap();
        assert!(!other.held);
        let swept = store.sweep_reservations("a", 3_500, 1_000).await.unwrap();
        assert_eq!(swept.released, 1);
        let c = counter(&store, &pk).await;
        assert_eq!(get_n(&c, "n"), Some(1));
        assert!(!c.contains_key("pending"), "{c:?}");
        assert_eq!(
            store
                .sweep_reservations("a", 4_000, 1_000)
                .await
                .unwrap()
                .released,
            0
        );
        // The lease lapses (three grace periods) and "b" takes it over.
        let taken = store.sweep_reservations("b", 20_000, 1_000).await.unwrap();
        assert!(taken.held && taken.took_over);
    }

    #[tokio::test]
    #[ignore = "needs IMAGEBUILD_TEST_DYNAMODB_ENDPOINT (./scripts/test runs it against moto_server)"]
    async fn a_build_whose_slot_was_given_back_is_not_written() {
        let store = store().await;
        let b = sample_build("123456789012", 1_000, "b-0001");
        let pk = format!("C#{}#{}", b.account, b.region);
        let r = reservation(&b);
        leak(&store, &pk, &r).await;
        assert!(store.release_slot(&pk, &r).await.unwrap());
        // The late transaction of that StartBuild: refused, so the build is not counted twice.
        let late = store
            .transact(vec![settle_in_transaction(&store.table, &pk, &r).unwrap()])
            .await;
        assert!(late.is_err());
        assert!(!store.release_slot(&pk, &r).await.unwrap());
        assert_eq!(get_n(&counter(&store, &pk).await, "n"), Some(0));
    }
}
