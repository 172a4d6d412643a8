//! Reconciliation (对账) on a node: the sets read from the store, the run this node starts
//! ([`Node::reconcile_with`](crate::node::Node::reconcile_with)), the runs a peer starts
//! ([`Node::open_reconcile`](crate::node::Node::open_reconcile)), and the commit both share.
//! Domain types only: the caller's side of the protocol ([`initiate`]) runs over the peer client
//! ([`crate::peer::reconcile`]), the called side is driven by the exchange server's edge, which
//! converts the wire and maps [`ReconcileError`] to statuses; the rules are in
//! [`crate::domain::reconcile`].

mod caller;
mod commit;
mod initiator;
mod responder;
mod snapshot;

use std::collections::HashMap;

pub use caller::{Initiated, Progress, initiate};
pub use initiator::{RunError, RunProgress, SetSummary};
pub use responder::{NodeSession, ReconcileError};

use crate::config::ReconcileConfig;
use crate::domain::reconcile::ReconcileKey;
use crate::domain::schedule::Schedule;

/// Per agreement: the secret and the schedule; and the per-run inquiry cap.
#[derive(Clone, Debug, Default)]
pub struct ReconcileSettings {
    /// Agreement id → its key. Agreements without one are not reconciled.
    keys: HashMap<String, ReconcileKey>,
    /// Agreement id → when this node starts a run.
    schedules: HashMap<String, Schedule>,
    /// Most outflow inquiries one run may open.
    pub max_inquiries_per_run: usize,
}

impl ReconcileSettings {
    /// From the node configuration (already validated when it was loaded).
    pub fn from_config(config: &ReconcileConfig) -> anyhow::Result<ReconcileSettings> {
        let mut settings = ReconcileSettings {
            max_inquiries_per_run: config.max_inquiries_per_run,
            ..ReconcileSettings::default()
        };
        for (agreement, entry) in &config.agreements {
            let Some(secret) = &entry.secret else { continue };
            let key = ReconcileKey::new(secret.as_bytes())
                .map_err(|error| anyhow::anyhow!("reconcile.agreements.{agreement}.secret: {error}"))?;
            let schedule = Schedule::parse(&entry.schedule)
                .map_err(|error| anyhow::anyhow!("reconcile.agreements.{agreement}.schedule: {error}"))?;
            settings.keys.insert(agreement.clone(), key);
            settings.schedules.insert(agreement.clone(), schedule);
        }
        Ok(settings)
    }

    /// The key for an agreement, if it is reconciled.
    pub fn key(&self, agreement_id: &str) -> Option<&ReconcileKey> {
        self.keys.get(agreement_id)
    }

    /// The agreements this node reconciles, with their schedules.
    pub fn schedules(&self) -> impl Iterator<Item = (&str, &Schedule)> {
        self.schedules
            .iter()
            .map(|(id, schedule)| (id.as_str(), schedule))
    }
}
