//! The reconciliation scheduler: starts a run with each peer when its agreement's schedule says
//! (China Standard Time, nightly at 02:00 by default), and retries one that broke off.
//!
//! Replicas of a node each run a scheduler; the per-peer lock lets only one of them run a pair
//! at a time, and a run that another replica (or the peer, as caller) completed since the
//! previous slot counts: the slot is skipped rather than run twice. Both counties of a pair
//! schedule runs; whichever starts first does the work for both (a run records its report on
//! both sides).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use tracing::{info, warn};

use super::Step;
use crate::config::Limits;
use crate::domain::schedule::Schedule;
use crate::node::Node;
use crate::node::reconcile::RunError;
use crate::store::StoreError;

/// One agreement's place in its schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// The scheduled time being served.
    pub fire_at: DateTime<Utc>,
    /// The previous scheduled time (or when the scheduler started): a run completed since then,
    /// by anyone, serves this slot.
    pub since: DateTime<Utc>,
    /// When to try (the scheduled time, or a retry after it).
    pub attempt_at: DateTime<Utc>,
    /// Failed attempts for this slot.
    pub failures: u32,
}

/// What one step did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ran {
    /// Agreements whose run completed.
    pub completed: Vec<String>,
    /// Agreements skipped: a run completed since the previous slot, or another replica holds
    /// the lock.
    pub skipped: Vec<String>,
    /// Agreements whose run broke off, to be retried.
    pub failed: Vec<String>,
}

/// The scheduler's state: the next slot per reconciled agreement.
#[derive(Debug)]
pub struct ReconcileScheduler {
    node: Arc<Node>,
    /// Agreement id → its schedule.
    schedules: HashMap<String, Schedule>,
    /// Agreement id → its next slot.
    slots: HashMap<String, Slot>,
}

impl ReconcileScheduler {
    /// A scheduler for the node's configured schedules, whose first slots are the next
    /// scheduled times after `now`.
    pub fn new(node: Arc<Node>, now: DateTime<Utc>) -> ReconcileScheduler {
        let schedules: Vec<(String, Schedule)> = node
            .reconcile_settings()
            .schedules()
            .map(|(agreement, schedule)| (agreement.to_string(), schedule.clone()))
            .collect();
        ReconcileScheduler::with_schedules(node, schedules, now)
    }

    /// A scheduler for the given agreement schedules (which need reconciliation secrets in the
    /// node's configuration to run).
    pub fn with_schedules(
        node: Arc<Node>,
        schedules: Vec<(String, Schedule)>,
        now: DateTime<Utc>,
    ) -> ReconcileScheduler {
        let slots = schedules
            .iter()
            .filter_map(|(agreement, schedule)| {
                let fire_at = schedule.next_after(now)?;
                Some((
                    agreement.to_string(),
                    Slot {
                        fire_at,
                        since: now,
                        attempt_at: fire_at,
                        failures: 0,
                    },
                ))
            })
            .collect();
        ReconcileScheduler {
            node,
            schedules: schedules.into_iter().collect(),
            slots,
        }
    }

    /// The slot of one agreement.
    pub fn slot(&self, agreement: &str) -> Option<Slot> {
        self.slots.get(agreement).copied()
    }

    /// One step at `now`: runs every agreement whose attempt is due. Returns what it did and
    /// how long to sleep.
    pub async fn run_once(&mut self, now: DateTime<Utc>) -> Result<(Ran, Step), StoreError> {
        let mut ran = Ran::default();
        let due: Vec<String> = self
            .slots
            .iter()
            .filter(|(_, slot)| slot.attempt_at <= now)
            .map(|(agreement, _)| agreement.clone())
            .collect();
        for agreement_id in due {
            let slot = self.slots[&agreement_id];
            let outcome = self.run_slot(&agreement_id, slot).await?;
            let next_fire = self
                .schedules
                .get(&agreement_id)
                .and_then(|schedule| schedule.next_after(now));
            let next = match (outcome, next_fire) {
                (_, None) => None,
                (SlotOutcome::Done | SlotOutcome::Skipped, Some(fire_at)) => Some(Slot {
                    fire_at,
                    since: slot.fire_at,
                    attempt_at: fire_at,
                    failures: 0,
                }),
                (SlotOutcome::Retry, Some(fire_at)) => {
                    let retry_at = now + retry_delay(self.node.limits(), slot.failures);
                    Some(Slot {
                        fire_at: slot.fire_at,
                        since: slot.since,
                        attempt_at: retry_at.min(fire_at),
                        failures: slot.failures + 1,
                    })
                }
            };
            match next {
                Some(slot) => {
                    self.slots.insert(agreement_id.clone(), slot);
                }
                None => {
                    self.slots.remove(&agreement_id);
                }
            }
            match outcome {
                SlotOutcome::Done => ran.completed.push(agreement_id),
                SlotOutcome::Skipped => ran.skipped.push(agreement_id),
                SlotOutcome::Retry => ran.failed.push(agreement_id),
            }
        }
        let sleep = self
            .slots
            .values()
            .map(|slot| (slot.attempt_at - now).to_std().unwrap_or(Duration::ZERO))
            .min()
            .unwrap_or(self.node.limits().reconcile_tick)
            .min(self.node.limits().reconcile_tick);
        Ok((ran, Step::Idle(sleep)))
    }

    async fn run_slot(&self, agreement_id: &str, slot: Slot) -> Result<SlotOutcome, StoreError> {
        let book = self.node.agreements();
        let Some(agreement) = book
            .current_versions()
            .find(|agreement| agreement.id() == agreement_id)
        else {
            warn!(
                agreement = agreement_id,
                "scheduled reconciliation for an agreement this node does not hold"
            );
            return Ok(SlotOutcome::Skipped);
        };
        let Some(peer) = agreement.peer_of(self.node.county()) else {
            return Ok(SlotOutcome::Skipped);
        };
        if let Some(finished) = self.node.store().last_completed_reconcile(peer).await? {
            if finished >= slot.since {
                info!(peer = %peer, "reconciliation already done since the previous slot");
                return Ok(SlotOutcome::Skipped);
            }
        }
        match self.node.reconcile_with(peer, |_| {}).await {
            Ok(_) => Ok(SlotOutcome::Done),
            Err(RunError::AlreadyRunning(_)) => {
                // Another replica is on it; if it fails, it retries.
                Ok(SlotOutcome::Skipped)
            }
            Err(RunError::Store(error)) => Err(error),
            Err(error) => {
                warn!(peer = %peer, %error, failures = slot.failures + 1, "scheduled reconciliation failed; will retry");
                Ok(SlotOutcome::Retry)
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SlotOutcome {
    Done,
    Skipped,
    Retry,
}

/// The wait before retry number `failures + 1`: doubling from `limits.reconcile_first_retry`
/// (a minute), at most `limits.reconcile_max_retry` (an hour), with up to a quarter of jitter so
/// that two counties retrying each other do not collide again.
fn retry_delay(limits: &Limits, failures: u32) -> chrono::Duration {
    let base = limits
        .reconcile_first_retry
        .saturating_mul(1 << failures.min(6))
        .min(limits.reconcile_max_retry);
    let jitter = rand::rng().random_range(0..=base.as_millis() as u64 / 4);
    chrono::Duration::from_std(base + Duration::from_millis(jitter)).unwrap_or(chrono::Duration::hours(1))
}

/// The scheduler's loop: one step at a time until shutdown. A run in progress at shutdown is
/// dropped: nothing of it was committed, and the lock goes with its connection.
pub async fn run(node: Arc<Node>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let tick = node.limits().reconcile_tick;
    let mut scheduler = ReconcileScheduler::new(node, Utc::now());
    while !*shutdown.borrow() {
        let pause = tokio::select! {
            step = scheduler.run_once(Utc::now()) => match step {
                Ok((_, Step::Idle(pause))) => pause,
                Ok((_, Step::Worked)) => Duration::ZERO,
                Err(error) => {
                    warn!(worker = "reconcile", %error, "worker step failed");
                    tick
                }
            },
            _ = shutdown.changed() => break,
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            changed = shutdown.changed() => {
                // the node that would say stop is gone: stop
                if changed.is_err() {
                    break;
                }
            }
        }
    }
}
