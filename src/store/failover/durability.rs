//! What protects a commit on the node's primary from the loss of that server: its
//! `synchronous_commit`, `synchronous_standby_names` and streaming standbys, read from the
//! server, and the one-word mode (with what a failover can lose) the node logs and `/healthz`
//! shows.

use crate::store::{Store, StoreError};

impl Store {
    /// What protects a commit on the primary in use from the loss of that server.
    pub async fn durability(&self) -> Result<Durability, StoreError> {
        let (synchronous_commit, standby_names, streaming, synchronous, hidden): (
            String,
            String,
            i64,
            i64,
            i64,
        ) = sqlx::query_as(
            "SELECT current_setting('synchronous_commit'),
                    current_setting('synchronous_standby_names'),
                    (SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'),
                    (SELECT count(*) FROM pg_stat_replication
                      WHERE state = 'streaming' AND sync_state IN ('sync', 'quorum')),
                    (SELECT count(*) FROM pg_stat_replication WHERE state IS NULL)",
        )
        .fetch_one(self.pool())
        .await?;
        Ok(Durability {
            synchronous_commit,
            standby_names,
            streaming_standbys: streaming,
            synchronous_standbys: synchronous,
            hidden_standbys: hidden,
        })
    }
}

/// The durability settings and standbys of the primary in use, read from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Durability {
    /// `synchronous_commit`.
    pub synchronous_commit: String,
    /// `synchronous_standby_names` (empty: none).
    pub standby_names: String,
    /// Standbys streaming from the primary now.
    pub streaming_standbys: i64,
    /// Of those, the ones a commit waits for (`sync` or `quorum`).
    pub synchronous_standbys: i64,
    /// Standbys whose state the node's role may not read (it lacks `pg_monitor`).
    pub hidden_standbys: i64,
}

/// The durability of the node's database, in one word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DurabilityMode {
    /// A commit returns only once a synchronous standby has it: a failover to that standby
    /// loses nothing acknowledged.
    Synchronous,
    /// Synchronous standbys are named but none is streaming: every commit waits for one.
    SynchronousWaiting,
    /// Standbys receive the WAL after the commit returned: a failover can lose the last commits.
    Asynchronous,
    /// No standby: the database is one server.
    Single,
    /// The node's role may not read the standbys' state (grant it `pg_monitor`).
    Unknown,
}

impl DurabilityMode {
    /// The word for logs and the health report.
    pub fn as_str(self) -> &'static str {
        match self {
            DurabilityMode::Synchronous => "synchronous",
            DurabilityMode::SynchronousWaiting => "synchronous-waiting",
            DurabilityMode::Asynchronous => "asynchronous",
            DurabilityMode::Single => "single",
            DurabilityMode::Unknown => "unknown",
        }
    }
}

impl Durability {
    /// Whether a commit waits for a standby at all under these settings.
    fn commit_waits_for_standby(&self) -> bool {
        !self.standby_names.trim().is_empty()
            && matches!(
                self.synchronous_commit.as_str(),
                "on" | "remote_apply" | "remote_write"
            )
    }

    /// The mode in one word.
    pub fn mode(&self) -> DurabilityMode {
        if self.commit_waits_for_standby() {
            if self.synchronous_standbys > 0 {
                DurabilityMode::Synchronous
            } else if self.hidden_standbys > 0 {
                DurabilityMode::Unknown
            } else {
                DurabilityMode::SynchronousWaiting
            }
        } else if self.streaming_standbys > 0 {
            DurabilityMode::Asynchronous
        } else if self.hidden_standbys > 0 {
            DurabilityMode::Unknown
        } else {
            DurabilityMode::Single
        }
    }

    /// What the mode means for what the node acknowledges, for the log and the health report.
    pub fn describe(&self) -> String {
        let settings = format!(
            "synchronous_commit = {}, synchronous_standby_names = '{}'",
            self.synchronous_commit, self.standby_names
        );
        let meaning = match self.mode() {
            DurabilityMode::Synchronous => format!(
                "{} synchronous standby(s) streaming: a commit returns only once a synchronous standby has it, so a failover to it loses nothing the node acknowledged",
                self.synchronous_standbys
            ),
            DurabilityMode::SynchronousWaiting => "synchronous standbys are named but none is streaming: every commit waits until one is (the node acknowledges nothing meanwhile)".to_string(),
            DurabilityMode::Asynchronous => format!(
                "{} asynchronous standby(s) only: a failover can lose the commits of the last moments before the primary failed (what the standby had not yet received), messages already acknowledged to peers and operators included",
                self.streaming_standbys
            ),
            DurabilityMode::Single => "no standby: the database is one server, and losing it loses everything since its last backup".to_string(),
            DurabilityMode::Unknown => "the node's database role cannot read the standbys' state (grant it pg_monitor)".to_string(),
        };
        let local = if self.synchronous_commit == "off" {
            "; synchronous_commit = off: even a crash of the primary alone can lose the last commits"
        } else {
            ""
        };
        format!("{} ({settings}): {meaning}{local}", self.mode().as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn durability(commit: &str, names: &str, streaming: i64, synchronous: i64) -> Durability {
        Durability {
            synchronous_commit: commit.into(),
            standby_names: names.into(),
            streaming_standbys: streaming,
            synchronous_standbys: synchronous,
            hidden_standbys: 0,
        }
    }

    #[test]
    fn the_durability_mode_says_what_a_failover_can_lose() {
        let synchronous = durability("on", "FIRST 1 (standby1)", 1, 1);
        assert_eq!(synchronous.mode(), DurabilityMode::Synchronous);
        assert!(
            synchronous
                .describe()
                .contains("loses nothing the node acknowledged")
        );
        assert_eq!(
            durability("on", "ANY 1 (s1, s2)", 0, 0).mode(),
            DurabilityMode::SynchronousWaiting
        );
        let asynchronous = durability("on", "", 1, 0);
        assert_eq!(asynchronous.mode(), DurabilityMode::Asynchronous);
        assert!(asynchronous.describe().contains("a failover can lose"));
        // named standbys do not protect a commit that does not wait for them
        assert_eq!(
            durability("local", "standby1", 1, 1).mode(),
            DurabilityMode::Asynchronous
        );
        let off = durability("off", "", 0, 0);
        assert_eq!(off.mode(), DurabilityMode::Single);
        assert!(off.describe().contains("even a crash of the primary alone"));
        let hidden = Durability {
            hidden_standbys: 1,
            ..durability("on", "", 0, 0)
        };
        assert_eq!(hidden.mode(), DurabilityMode::Unknown);
    }
}
