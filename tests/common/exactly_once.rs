//! Exactly once, counted in both databases: what crossed between two counties in one direction
//! was received once, answered once, and the one answer arrived once; and every outbox drains.
//! For exchanges that run both ways at once (each side asks the other), so every count is of
//! one direction, named by its two counties.

use hancha::store::Store;
use uuid::Uuid;

use super::{PATIENCE, count_in, database, eventually_within};

/// One side of an exchange: its county and its database.
#[derive(Clone, Copy)]
pub struct Side<'a> {
    pub county: &'a str,
    pub store: &'a Store,
}

/// Exactly the inquiries `sent` crossed from `asker` to `responder`: each received once,
/// answered once, the one answer stored once at the asker, the daily cap and the audit log
/// counting each once.
pub async fn assert_each_inquiry_answered_exactly_once(asker: Side<'_>, responder: Side<'_>, sent: &[Uuid]) {
    let expected = sent.len() as i64;
    let mut sent = sent.to_vec();
    sent.sort();
    let direction = format!("{} → {}", asker.county, responder.county);
    let ids = |store: &Store, sql: String| {
        let store = store.clone();
        async move {
            let pool = database(&store).await;
            let ids: Vec<Uuid> = sqlx::query_scalar(&sql).fetch_all(&pool).await.expect("ids");
            pool.close().await;
            ids
        }
    };

    let asked = ids(
        asker.store,
        format!(
            "SELECT message_id FROM inquiries WHERE direction = 'outbound' AND peer_county = '{}'
             ORDER BY message_id",
            responder.county
        ),
    )
    .await;
    assert_eq!(
        asked, sent,
        "{direction}: the asker holds exactly the inquiries it sent"
    );
    let received = ids(
        responder.store,
        format!(
            "SELECT message_id FROM inquiries WHERE direction = 'inbound' AND peer_county = '{}'
             ORDER BY message_id",
            asker.county
        ),
    )
    .await;
    assert_eq!(
        received, sent,
        "{direction}: the responder received each inquiry once"
    );

    for (side, kind, peer) in [
        (asker, "outbound", responder.county),
        (responder, "inbound", asker.county),
    ] {
        let unanswered = count_in(
            side.store,
            &format!(
                "SELECT count(*) FROM inquiries WHERE direction = '{kind}' AND peer_county = '{peer}'
                 AND state <> 'answered'"
            ),
        )
        .await;
        assert_eq!(
            unanswered, 0,
            "{direction}: {kind} inquiries at {} not answered",
            side.county
        );
    }

    // One confirmation per inquiry on each side, and the same ones: those the responder wrote.
    let confirmations = |direction: &str, peer: &str| {
        format!(
            "SELECT message_id, inquiry_id FROM confirmations WHERE direction = '{direction}'
             AND peer_county = '{peer}' ORDER BY message_id"
        )
    };
    let pairs = |store: &Store, sql: String| {
        let store = store.clone();
        async move {
            let pool = database(&store).await;
            let rows: Vec<(Uuid, Uuid)> = sqlx::query_as(&sql).fetch_all(&pool).await.expect("pairs");
            pool.close().await;
            rows
        }
    };
    let written = pairs(responder.store, confirmations("outbound", asker.county)).await;
    let stored = pairs(asker.store, confirmations("inbound", responder.county)).await;
    assert_eq!(
        written.len() as i64,
        expected,
        "{direction}: one confirmation written per inquiry"
    );
    assert_eq!(
        stored, written,
        "{direction}: the asker holds exactly the responder's confirmations"
    );
    let mut answered: Vec<Uuid> = stored.iter().map(|(_, inquiry)| *inquiry).collect();
    answered.sort();
    answered.dedup();
    assert_eq!(
        answered, sent,
        "{direction}: no inquiry has two confirmations, none has none"
    );

    // Resent inquiries were recognised: accepted (and counted against the daily cap) once.
    assert_eq!(
        count_in(
            responder.store,
            &format!(
                "SELECT coalesce(sum(inquiries), 0)::bigint FROM daily_volume WHERE peer_county = '{}'",
                asker.county
            )
        )
        .await,
        expected,
        "{direction}: the daily cap counted each inquiry once"
    );
    assert_eq!(
        count_in(
            responder.store,
            &format!(
                "SELECT count(*) FROM audit_log WHERE direction = 'inbound' AND outcome = 'accepted'
                 AND kind <> 'confirmation' AND peer_county = '{}'",
                asker.county
            )
        )
        .await,
        expected,
        "{direction}: one acceptance audited per inquiry"
    );
}

/// Every outbox in `stores` empties within `patience` (the last receipts may still be on their
/// way when the answers are in), and every confirmation written is recorded as delivered.
pub async fn assert_outboxes_drain_within(stores: &[&Store], patience: std::time::Duration) {
    for (index, store) in stores.iter().enumerate() {
        eventually_within(&format!("outbox {index} is empty"), patience, || async {
            let left = count_in(store, "SELECT count(*) FROM outbox").await;
            (left == 0).then_some(())
        })
        .await;
        assert_eq!(
            count_in(
                store,
                "SELECT count(*) FROM confirmations WHERE direction = 'outbound' AND delivered_at IS NULL"
            )
            .await,
            0,
            "every confirmation is recorded as delivered"
        );
    }
}

/// [`assert_outboxes_drain_within`] the usual patience.
pub async fn assert_outboxes_drain(stores: &[&Store]) {
    assert_outboxes_drain_within(stores, PATIENCE).await;
}
