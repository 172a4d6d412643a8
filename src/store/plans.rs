//! The plans PostgreSQL chooses for the hot paths, for a test that checks each uses the index
//! meant for it once the tables are large and analysed. The SQL explained is the store's own
//! (the same text the paths run), with representative parameters; `fill_for_plans` writes the
//! synthetic history the plans are made on.

use chrono::{DateTime, Utc};

use super::{Store, StoreError};
use crate::domain::report::ReportPeriod;

/// The peer whose reconciliation plans are explained: one the synthetic history does not name,
/// as each of a county's many peers is a small part of its history.
const OTHER_PEER: &str = "110101";

/// One hot path's plan.
#[derive(Clone, Debug)]
pub struct HotPathPlan {
    /// Which path.
    pub name: &'static str,
    /// `EXPLAIN`'s text, one line per node.
    pub plan: String,
}

impl Store {
    /// The plans of the hot paths as the database would run them now: the answer's registry
    /// lookup (`ids` as the inquiries' subjects), the work queue both ways, the deadlines
    /// worker's overdue scan, reconciliation's reads of one peer's inquiries, and the indicator
    /// report for `period`.
    pub async fn hot_path_plans(
        &self,
        ids: &[String],
        now: DateTime<Utc>,
        period: &ReportPeriod,
    ) -> Result<Vec<HotPathPlan>, StoreError> {
        let mut plans = Vec::new();
        let lines = |rows: Vec<String>| rows.join("\n");

        let plan = sqlx::query_scalar(&format!("EXPLAIN {}", super::registry::persons_by_id_sql()))
            .bind(ids)
            .fetch_all(self.pool())
            .await?;
        plans.push(HotPathPlan {
            name: "answer lookup by resident ID",
            plan: lines(plan),
        });

        for (name, outbound) in [("work queue, inbound", false), ("work queue, outbound", true)] {
            let plan = sqlx::query_scalar(&format!("EXPLAIN {}", super::queries::pending_sql(outbound)))
                .bind(outbound)
                .bind(false)
                .bind(None::<String>)
                .bind(None::<String>)
                .bind(50_i64)
                .bind(now)
                .fetch_all(self.pool())
                .await?;
            plans.push(HotPathPlan {
                name,
                plan: lines(plan),
            });
        }

        let plan = sqlx::query_scalar(&format!("EXPLAIN {}", super::queries::FLAG_OVERDUE_SQL))
            .bind(now)
            .fetch_all(self.pool())
            .await?;
        plans.push(HotPathPlan {
            name: "deadlines: overdue scan",
            plan: lines(plan),
        });

        // one peer among many: these plans explain a peer the history does not name
        let plan = sqlx::query_scalar(&format!("EXPLAIN {}", super::reconcile::message_digests_sql()))
            .bind(OTHER_PEER)
            .bind(format!("{OTHER_PEER}-000000"))
            .fetch_all(self.pool())
            .await?;
        plans.push(HotPathPlan {
            name: "reconciliation: a peer's messages",
            plan: lines(plan),
        });
        let plan = sqlx::query_scalar(&format!("EXPLAIN {}", super::reconcile::ASKED_BEFORE_SQL))
            .bind(OTHER_PEER)
            .bind(now - chrono::Duration::days(365))
            .fetch_all(self.pool())
            .await?;
        plans.push(HotPathPlan {
            name: "reconciliation: inquiries asked before",
            plan: lines(plan),
        });

        let birth_dates = period.childbearing_birth_dates();
        let plan = sqlx::query_scalar(&format!("EXPLAIN (VERBOSE) {}", super::report::INDICATORS_SQL))
            .bind(period.start_instant())
            .bind(period.end_instant())
            .bind(*birth_dates.start())
            .bind(*birth_dates.end())
            .bind(period.end())
            .bind(period.start())
            .fetch_all(self.pool())
            .await?;
        plans.push(HotPathPlan {
            name: "indicator report",
            plan: lines(plan),
        });
        Ok(plans)
    }

    /// The plan of the delivery worker's lease ([`super::outbox::LEASE`], under its own
    /// [`super::outbox::LEASE_SETTINGS`]) of up to `limit` entries of `message_type` for `peer`,
    /// as it would run now. Explained (with `ANALYZE`, so the lease runs) in a transaction that
    /// is rolled back: nothing is leased, but until then the rows it took stay locked, and a
    /// live node's leases skip them. For tests and diagnosis on a database no node is sending
    /// from.
    pub async fn lease_plan(&self, peer: &str, message_type: &str, limit: i64) -> Result<String, StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(super::outbox::LEASE_SETTINGS)
            .execute(&mut *tx)
            .await?;
        let plan: Vec<String> = sqlx::query_scalar(&format!(
            "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) {}",
            super::outbox::LEASE
        ))
        .bind(peer)
        .bind(message_type)
        .bind(limit)
        .bind(60_000.0_f64)
        .fetch_all(&mut *tx)
        .await?;
        tx.rollback().await?;
        Ok(plan.join("\n"))
    }

    /// Writes `count` synthetic inquiries and as many notices with `peer` — two years of
    /// history, nearly all answered long ago, one in fifty still pending with deadlines around
    /// `now` — then analyses the tables. For the plan test only: the rows name an agreement
    /// nobody holds.
    pub async fn fill_for_plans(&self, peer: &str, count: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO inquiries (message_id, direction, peer_county, agreement_id, agreement_hash, kind, priority,
                                    subject_id, state, created_at, received_at, due_at, answered_at, outcome)
             SELECT gen_random_uuid(),
                    CASE WHEN g % 2 = 0 THEN 'outbound' ELSE 'inbound' END,
                    $1, 'plans', repeat('0', 64),
                    CASE WHEN g % 3 = 0 THEN 'outflow_status' ELSE 'certificate_verification' END,
                    'normal', lpad(g::text, 17, '0') || '1',
                    CASE WHEN g % 50 = 0 THEN 'pending' ELSE 'answered' END,
                    at, at, at + interval '30 days',
                    CASE WHEN g % 50 = 0 THEN NULL ELSE at + interval '1 day' END,
                    CASE WHEN g % 50 = 0 THEN NULL WHEN g % 4 = 0 THEN 'not_found' ELSE 'found' END
             FROM generate_series(1, $2) g,
                  LATERAL (SELECT CASE WHEN g % 50 = 0 THEN now() - interval '40 days' + (g % 20) * interval '1 day'
                                       ELSE now() - interval '2 years' + (g % 300) * interval '1 day' END AS at) t",
        )
        .bind(peer)
        .bind(count)
        .execute(self.pool())
        .await?;
        sqlx::query(
            "INSERT INTO notices (message_id, direction, peer_county, agreement_id, agreement_hash, kind, subject_id,
                                  occurred_on, created_at)
             SELECT gen_random_uuid(),
                    CASE WHEN g % 2 = 0 THEN 'outbound' ELSE 'inbound' END,
                    $1, 'plans', repeat('0', 64),
                    CASE WHEN g % 2 = 0 THEN 'contraception_check' ELSE 'birth' END,
                    lpad(g::text, 17, '0') || '1',
                    (now() - interval '2 years' + (g % 300) * interval '1 day')::date,
                    now() - interval '2 years'
             FROM generate_series(1, $2) g",
        )
        .bind(peer)
        .bind(count)
        .execute(self.pool())
        .await?;
        sqlx::query("ANALYZE persons, inquiries, notices")
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
