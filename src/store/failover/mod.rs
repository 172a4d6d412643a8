//! Several database addresses and the choice among them: the node writes only to the server
//! that is a primary (`pg_is_in_recovery()` false) on the highest timeline it has seen, follows
//! a promotion when its primary goes away, and never writes to an old primary that comes back
//! after another was promoted (the fence). What the durability of that primary is (a
//! synchronous standby, an asynchronous one, none) is read here too.
//!
//! sqlx has no multi-host URLs: the pool is given the chosen server's options
//! (`Pool::set_connect_options`), every new connection is checked before use (`after_connect`:
//! a standby, or a primary on a lower timeline than the highest seen, is refused), and after a
//! switch every connection opened before it is closed instead of reused (`before_acquire`).
//!
//! # The fence
//!
//! `pg_promote` always starts a new timeline, one higher than the one it leaves. The node keeps
//! the highest timeline it has seen a primary on, for the life of the process, and refuses any
//! primary on a lower one: an old primary started again after its standby was promoted is still
//! on the old timeline, so it is refused, by the check on every new connection and by the choice
//! among addresses. At start the node takes the primary on the highest timeline among the
//! addresses that answer; two primaries on that same timeline (two standbys promoted from one
//! history) are refused both, unless one is the one in use.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use sqlx::Connection;
use sqlx::pool::PoolConnectionMetadata;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use tracing::{info, warn};

use super::{Store, StoreError};

mod durability;

pub use durability::{Durability, DurabilityMode};

/// How long one address may take to connect and answer during a probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long the primary in use may take to answer the check of [`Store::follow_primary`]
/// before every address is probed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// Every this many checks of a primary that answers, all addresses are probed anyway, so that a
/// primary on a higher timeline (a promotion while the old primary still answers) is found.
const FULL_PROBE_EVERY: u64 = 10;

/// Whether a server is in recovery, and its timeline when it is a primary: the timeline of the
/// WAL it inserts now (`pg_walfile_name` of the current position), exact from the moment of a
/// promotion, unlike the last checkpoint's.
/// The third column, when the server started, tells a primary that restarted since it was chosen
/// (a crashed primary back before its standby's promotion was seen, see [`Failover::admit`]).
const ROLE_SQL: &str = "SELECT pg_is_in_recovery(), \
     CASE WHEN pg_is_in_recovery() THEN NULL \
          ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END, \
     pg_postmaster_start_time()";

/// One database address the node may use.
struct Candidate {
    /// How to connect (with the statement timeout the node sets on every connection).
    options: PgConnectOptions,
    /// The address for logs: host, port (or socket directory) and database, never a password.
    shown: String,
}

impl std::fmt::Debug for Candidate {
    // the options hold the password: only the address is shown
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Candidate").field("address", &self.shown).finish()
    }
}

/// What a probe of one address found.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Found {
    /// A primary on this timeline.
    Primary(i64),
    /// A server in recovery: a standby.
    Standby,
    /// No answer (the reason, for the log).
    Unreachable(String),
}

/// The addresses, the one in use, and the fence.
#[derive(Debug)]
pub(crate) struct Failover {
    /// Every configured address, in the configured order.
    candidates: Vec<Candidate>,
    /// Index into `candidates` of the primary in use.
    current: Mutex<usize>,
    /// The highest timeline seen on a primary: no primary on a lower one is ever used.
    highest_timeline: AtomicI64,
    /// When the pool last moved to another address: connections older than this are closed.
    switched: Mutex<Instant>,
    /// Checks of the primary in use so far, for [`FULL_PROBE_EVERY`].
    checks: AtomicU64,
    /// What the last probe said of each address, so that only changes are logged.
    last_found: Mutex<Vec<Option<String>>>,
    /// When the server in use started, as the first connection after a choice found it: a
    /// connection to a server that started since (it crashed and came back) is refused until
    /// every address has been probed again, since its standby may have been promoted meanwhile.
    known_start: Mutex<Option<DateTime<Utc>>>,
    /// Set when the server in use restarted or stopped answering: no connection is admitted until
    /// [`Store::follow_primary`] has probed every address and chosen again.
    suspect: AtomicBool,
}

impl Failover {
    /// The address in use, for logs and the health report.
    pub(crate) fn current_shown(&self) -> String {
        let index = *self.current.lock().unwrap_or_else(|p| p.into_inner());
        format!(
            "{} ({} of {})",
            self.candidates[index].shown,
            index + 1,
            self.candidates.len()
        )
    }

    /// The highest timeline seen on a primary.
    pub(crate) fn highest_timeline(&self) -> i64 {
        self.highest_timeline.load(Ordering::SeqCst)
    }

    /// Asks every address at once what it is.
    async fn probe_all(&self) -> Vec<Found> {
        let probes = self.candidates.iter().map(|candidate| probe(&candidate.options));
        let found = futures::future::join_all(probes).await;
        self.log_changes(&found);
        found
    }

    /// The primary to use among `found`: a primary on the highest timeline seen there, if that
    /// is not lower than the fence; the one in use when it is among several on that timeline.
    fn choose(&self, found: &[Found]) -> Result<(usize, i64), String> {
        let fence = self.highest_timeline();
        let best = found
            .iter()
            .filter_map(|f| match f {
                Found::Primary(timeline) => Some(*timeline),
                _ => None,
            })
            .max();
        let Some(best) = best else {
            return Err(format!("no primary among {}", self.summary(found)));
        };
        if best < fence {
            return Err(format!(
                "no primary on timeline {fence} or later (the highest seen) among {}",
                self.summary(found)
            ));
        }
        let on_best: Vec<usize> = (0..found.len())
            .filter(|&i| found[i] == Found::Primary(best))
            .collect();
        let current = *self.current.lock().unwrap_or_else(|p| p.into_inner());
        match on_best.as_slice() {
            [one] => Ok((*one, best)),
            several if several.contains(&current) => Ok((current, best)),
            _ => Err(format!(
                "several primaries on timeline {best} (two standbys promoted?): none is used until an operator stops all but one; {}",
                self.summary(found)
            )),
        }
    }

    /// Every address and what it is, for an error message.
    fn summary(&self, found: &[Found]) -> String {
        self.candidates
            .iter()
            .zip(found)
            .map(|(candidate, found)| format!("{}: {}", candidate.shown, self.describe(found)))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn describe(&self, found: &Found) -> String {
        let fence = self.highest_timeline();
        match found {
            Found::Primary(timeline) if *timeline < fence => format!(
                "FENCED: a primary on timeline {timeline}, but a primary on timeline {fence} was seen (an old primary back after a failover): never used"
            ),
            Found::Primary(timeline) => format!("primary on timeline {timeline}"),
            Found::Standby => "standby (in recovery)".to_string(),
            Found::Unreachable(why) => format!("unreachable: {why}"),
        }
    }

    /// Logs each address whose state changed since the last probe.
    fn log_changes(&self, found: &[Found]) {
        let mut last = self.last_found.lock().unwrap_or_else(|p| p.into_inner());
        for (index, found) in found.iter().enumerate() {
            let said = self.describe(found);
            if last[index].as_deref() == Some(said.as_str()) {
                continue;
            }
            let address = &self.candidates[index].shown;
            match found {
                Found::Primary(timeline) if *timeline < self.highest_timeline() => {
                    warn!(address = %address, "database address refused: {said}")
                }
                Found::Unreachable(_) => warn!(address = %address, "database address {said}"),
                _ => info!(address = %address, "database address is a {said}"),
            }
            last[index] = Some(said);
        }
    }

    /// Raises the fence to `timeline` if it is higher.
    fn saw_primary_on(&self, timeline: i64) {
        self.highest_timeline.fetch_max(timeline, Ordering::SeqCst);
    }

    /// The check every new connection passes before the pool hands it out: a primary on the
    /// highest timeline seen or a higher one (which raises the fence).
    async fn admit(&self, connection: &mut PgConnection) -> Result<(), sqlx::Error> {
        let (standby, timeline, started): (bool, Option<i32>, DateTime<Utc>) =
            sqlx::query_as(ROLE_SQL).fetch_one(&mut *connection).await?;
        if self.restarted_since_chosen(started) {
            self.suspect.store(true, Ordering::SeqCst);
        }
        if self.suspect.load(Ordering::SeqCst) {
            return Err(sqlx::Error::Configuration(
                "database connection refused: the server in use restarted or stopped answering; every address is probed again first (its standby may have been promoted meanwhile)".into(),
            ));
        }
        let refusal = match (standby, timeline) {
            (true, _) => "the server is a standby (in recovery)".to_string(),
            (false, Some(timeline)) if i64::from(timeline) < self.highest_timeline() => format!(
                "the server is a primary on timeline {timeline}, but a primary on timeline {} was seen: an old primary is never written to",
                self.highest_timeline()
            ),
            (false, Some(timeline)) => {
                self.saw_primary_on(i64::from(timeline));
                return Ok(());
            }
            (false, None) => "the server did not say its timeline".to_string(),
        };
        Err(sqlx::Error::Configuration(
            format!("database connection refused: {refusal}").into(),
        ))
    }

    /// Whether the server that started at `started` is not the one found when the primary was
    /// last chosen; the first connection after a choice records it.
    fn restarted_since_chosen(&self, started: DateTime<Utc>) -> bool {
        let mut known = self.known_start.lock().unwrap_or_else(|p| p.into_inner());
        match *known {
            Some(known) => known != started,
            None => {
                *known = Some(started);
                false
            }
        }
    }

    /// After every address was probed and the primary chosen: the next connection records the
    /// chosen server's start, and connections are admitted again.
    fn chosen(&self) {
        *self.known_start.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.suspect.store(false, Ordering::SeqCst);
    }

    /// Whether a pooled connection may be reused: only if it was opened after the last switch.
    fn reusable(&self, metadata: &PoolConnectionMetadata) -> bool {
        let since_switch = self.switched.lock().unwrap_or_else(|p| p.into_inner()).elapsed();
        metadata.age < since_switch
    }
}

/// Connects to `options` and asks what the server is.
async fn probe(options: &PgConnectOptions) -> Found {
    let asked = async {
        let mut connection = PgConnection::connect_with(options).await?;
        let (standby, timeline, _started): (bool, Option<i32>, DateTime<Utc>) =
            sqlx::query_as(ROLE_SQL).fetch_one(&mut connection).await?;
        let _ = connection.close().await;
        Ok::<_, sqlx::Error>((standby, timeline))
    };
    match tokio::time::timeout(PROBE_TIMEOUT, asked).await {
        Err(_) => Found::Unreachable(format!("no answer within {PROBE_TIMEOUT:?}")),
        Ok(Err(error)) => Found::Unreachable(error.to_string()),
        Ok(Ok((true, _))) => Found::Standby,
        Ok(Ok((false, Some(timeline)))) => Found::Primary(i64::from(timeline)),
        Ok(Ok((false, None))) => Found::Unreachable("the server did not say its timeline".into()),
    }
}

/// An address for logs: `host:port/database`, or the socket directory for a Unix socket.
fn shown(options: &PgConnectOptions) -> String {
    let database = options.get_database().unwrap_or("(default database)");
    match options.get_socket() {
        Some(socket) => format!("{}/{database}", socket.display()),
        None => format!("{}:{}/{database}", options.get_host(), options.get_port()),
    }
}

/// A pool on the primary among `options`: every address is probed, the primary on the highest
/// timeline is chosen, and the pool checks every connection it opens (see the module's doc).
pub(super) async fn connect(
    options: Vec<PgConnectOptions>,
    pool: PgPoolOptions,
) -> Result<(PgPool, Arc<Failover>), StoreError> {
    let failover = Arc::new(Failover {
        last_found: Mutex::new(vec![None; options.len()]),
        candidates: options
            .into_iter()
            .map(|options| Candidate {
                shown: shown(&options),
                options,
            })
            .collect(),
        current: Mutex::new(0),
        highest_timeline: AtomicI64::new(0),
        switched: Mutex::new(Instant::now()),
        checks: AtomicU64::new(0),
        known_start: Mutex::new(None),
        suspect: AtomicBool::new(false),
    });
    let found = failover.probe_all().await;
    let (index, timeline) = failover.choose(&found).map_err(|why| {
        StoreError::Database(sqlx::Error::Configuration(
            format!("cannot choose a database: {why}").into(),
        ))
    })?;
    failover.saw_primary_on(timeline);
    *failover.current.lock().unwrap_or_else(|p| p.into_inner()) = index;
    info!(
        address = %failover.current_shown(),
        timeline,
        "database: using the primary"
    );
    let (admitting, reusing) = (Arc::clone(&failover), Arc::clone(&failover));
    let pool = pool
        .after_connect(move |connection, _| -> BoxFuture<'_, Result<(), sqlx::Error>> {
            let failover = Arc::clone(&admitting);
            Box::pin(async move { failover.admit(connection).await })
        })
        .before_acquire(move |_, metadata| -> BoxFuture<'_, Result<bool, sqlx::Error>> {
            let reusable = reusing.reusable(&metadata);
            Box::pin(async move { Ok(reusable) })
        })
        .connect_with(failover.candidates[index].options.clone())
        .await?;
    Ok((pool, failover))
}

impl Store {
    /// Follows the primary among the configured addresses (nothing to do with one address):
    /// checks that the primary in use answers as a primary and, when it does not (or every
    /// [`FULL_PROBE_EVERY`] checks anyway), probes every address and moves the pool to the
    /// primary [`Failover::choose`] picks. Returns the new address when the pool moved; an error
    /// when no address may be used now (the work waits: callers see the database unavailable).
    pub async fn follow_primary(&self) -> Result<Option<String>, StoreError> {
        let Some(failover) = &self.failover else {
            return Ok(None);
        };
        let check = sqlx::query_scalar::<_, bool>("SELECT pg_is_in_recovery()").fetch_one(self.pool());
        let answers_as_primary = matches!(tokio::time::timeout(CHECK_TIMEOUT, check).await, Ok(Ok(false)));
        if !answers_as_primary {
            // until every address is probed, no connection is admitted: the server in use may
            // come back before its standby's promotion is seen
            failover.suspect.store(true, Ordering::SeqCst);
        }
        let checks = failover.checks.fetch_add(1, Ordering::SeqCst) + 1;
        if answers_as_primary && !failover.suspect.load(Ordering::SeqCst) && checks % FULL_PROBE_EVERY != 0 {
            return Ok(None);
        }
        let found = failover.probe_all().await;
        let (index, timeline) = failover.choose(&found).map_err(|why| {
            StoreError::Database(sqlx::Error::Configuration(
                format!("no database to use: {why}").into(),
            ))
        })?;
        failover.saw_primary_on(timeline);
        {
            let mut current = failover.current.lock().unwrap_or_else(|p| p.into_inner());
            if *current == index {
                failover.chosen();
                return Ok(None);
            }
            *current = index;
        }
        self.pool()
            .set_connect_options(failover.candidates[index].options.clone());
        *failover.switched.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        failover.chosen();
        let address = failover.current_shown();
        warn!(address = %address, timeline, "database: moved to a new primary");
        Ok(Some(address))
    }

    /// Where the node writes, when it was given several addresses: the address in use and the
    /// highest timeline seen (the fence).
    pub fn primary_in_use(&self) -> Option<(String, i64)> {
        self.failover
            .as_ref()
            .map(|failover| (failover.current_shown(), failover.highest_timeline()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failover(addresses: usize, fence: i64, current: usize) -> Failover {
        Failover {
            candidates: (0..addresses)
                .map(|i| {
                    let options: PgConnectOptions = format!("postgres://db{i}/hancha").parse().unwrap();
                    Candidate {
                        shown: shown(&options),
                        options,
                    }
                })
                .collect(),
            current: Mutex::new(current),
            highest_timeline: AtomicI64::new(fence),
            switched: Mutex::new(Instant::now()),
            checks: AtomicU64::new(0),
            last_found: Mutex::new(vec![None; addresses]),
            known_start: Mutex::new(None),
            suspect: AtomicBool::new(false),
        }
    }

    #[test]
    fn a_server_that_restarted_since_it_was_chosen_is_suspect_until_chosen_again() {
        let failover = failover(2, 1, 0);
        let started = Utc::now() - chrono::Duration::hours(1);
        assert!(
            !failover.restarted_since_chosen(started),
            "the first connection records it"
        );
        assert!(!failover.restarted_since_chosen(started), "the same server");
        let again = started + chrono::Duration::minutes(59);
        assert!(
            failover.restarted_since_chosen(again),
            "it restarted: its standby may have been promoted"
        );
        failover.chosen();
        assert!(
            !failover.restarted_since_chosen(again),
            "chosen again after every address was probed"
        );
        assert!(!failover.suspect.load(Ordering::SeqCst));
    }

    #[test]
    fn the_primary_on_the_highest_timeline_is_chosen_and_an_old_one_never() {
        let unreachable = || Found::Unreachable("connection refused".into());
        // the old primary (first, timeline 1) is back beside the promoted one (timeline 2)
        let found = [Found::Primary(1), Found::Primary(2)];
        assert_eq!(failover(2, 1, 0).choose(&found), Ok((1, 2)));
        // once timeline 2 was seen, the old primary alone is refused
        let alone = [Found::Primary(1), unreachable()];
        let refused = failover(2, 2, 1).choose(&alone).unwrap_err();
        assert!(refused.contains("FENCED"), "{refused}");
        assert_eq!(failover(2, 0, 0).choose(&[Found::Standby, unreachable()]).map(|_| ()), Err(
            "no primary among db0:5432/hancha: standby (in recovery); db1:5432/hancha: unreachable: connection refused".to_string()
        ));
        // two primaries on one timeline: the one in use stays, otherwise neither is used
        let split = [Found::Primary(2), Found::Primary(2), Found::Standby];
        assert_eq!(failover(3, 2, 1).choose(&split), Ok((1, 2)));
        assert!(
            failover(3, 2, 2)
                .choose(&split)
                .unwrap_err()
                .contains("several primaries")
        );
    }
}
