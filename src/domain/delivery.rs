//! What became of a message we sent a peer: the one outcome set the clerk's path and the
//! delivery worker share, and the one rule that decides whether a peer's refusal is final.
//!
//! A peer's words (its refusal reason, the status of a failed call) enter here and nowhere
//! else on their way to the outbox's last error, an inquiry's refusal reason and the log:
//! whatever looks like a resident ID number in them is withheld on the way in
//! ([`without_id_numbers`]), since a careless or hostile peer may echo one back.

use std::borrow::Cow;

use chrono::{DateTime, Utc};

use crate::domain::policy::RejectionCode;
use crate::domain::privacy::without_id_numbers;

/// A peer's words as they may be kept: anything that looks like an ID number withheld.
fn scrubbed(text: &str) -> String {
    without_id_numbers(text).into_owned()
}

/// The peer's verdict on one message it received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerVerdict {
    /// Stored by the peer (now, or the first time for a repeat).
    Accepted {
        /// When the peer accepted it; absent when the peer did not say.
        received_at: Option<DateTime<Utc>>,
        /// The peer's reply deadline under the agreement, for inquiries and notices.
        due_at: Option<DateTime<Utc>>,
    },
    /// Refused by the peer, with its reason (which never carries a person's data).
    Refused {
        /// The refusal class, when it is one of ours; `None` for any other status the peer
        /// returned for the message.
        code: Option<RejectionCode>,
        /// `CODE: reason` as the peer gave it.
        reason: String,
    },
}

/// Why a call to a peer produced no verdicts at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallFailure {
    /// The peer could not be reached, or did not answer in time: a condition of the peer,
    /// not of any message.
    Unreachable(String),
    /// The peer was reached but the call failed (an internal error there, a broken stream, a
    /// reply without the receipts): worth trying again.
    Failed(String),
}

impl CallFailure {
    /// The failure as one line for the outbox's last error and the log, with anything that
    /// looks like an ID number withheld.
    pub fn describe(&self) -> Cow<'_, str> {
        match self {
            CallFailure::Unreachable(text) | CallFailure::Failed(text) => without_id_numbers(text),
        }
    }
}

/// What becomes of one message after a delivery attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The peer holds it.
    Delivered {
        /// When the peer accepted it.
        received_at: Option<DateTime<Utc>>,
        /// The peer's deadline for it.
        due_at: Option<DateTime<Utc>>,
    },
    /// The peer could not be reached: every message for that peer waits, with one backoff for
    /// the peer rather than one per message.
    PeerUnreachable(String),
    /// This message could not be delivered this time; it is tried again after its own backoff.
    Retry(String),
    /// The message waits on something named (an agreement version both sides hold) and goes
    /// out once that is settled; retrying sooner cannot help.
    Held {
        /// What the message waits for: the peer to hold the version it names.
        waiting_for: String,
        /// The peer's words.
        peer_said: String,
    },
    /// The peer refused it for good: retrying the same message cannot help.
    Final(String),
}

impl Outcome {
    /// The outcome of a call that produced no verdict for this message.
    pub fn of_failure(failure: &CallFailure) -> Outcome {
        match failure {
            CallFailure::Unreachable(text) => Outcome::PeerUnreachable(scrubbed(text)),
            CallFailure::Failed(text) => Outcome::Retry(scrubbed(text)),
        }
    }

    /// The outcome of the peer's verdict on a message: the one place that decides whether a
    /// refusal is final.
    ///
    /// - `FAILED_PRECONDITION` means the two sides hold different versions of the agreement:
    ///   the message is held until they agree, never refused for good.
    /// - `RESOURCE_EXHAUSTED` is the peer's daily cap (or a size limit that a later, smaller
    ///   batch may pass): tried again later.
    /// - Malformed, not allowed, an id taken, an unknown inquiry: final.
    /// - Anything else the peer said about the message: tried again.
    ///
    /// The peer's reason is kept with anything that looks like an ID number withheld.
    pub fn of_verdict(verdict: &PeerVerdict) -> Outcome {
        match verdict {
            PeerVerdict::Accepted { received_at, due_at } => Outcome::Delivered {
                received_at: *received_at,
                due_at: *due_at,
            },
            PeerVerdict::Refused { code, reason } => {
                let reason = scrubbed(reason);
                match code {
                    Some(RejectionCode::FailedPrecondition) => Outcome::Held {
                        waiting_for: "an agreement version both sides hold".into(),
                        peer_said: reason,
                    },
                    Some(RejectionCode::ResourceExhausted) => Outcome::Retry(reason),
                    Some(
                        RejectionCode::InvalidArgument
                        | RejectionCode::PermissionDenied
                        | RejectionCode::AlreadyExists
                        | RejectionCode::NotFound,
                    ) => Outcome::Final(reason),
                    Some(
                        RejectionCode::Aborted
                        | RejectionCode::Cancelled
                        | RejectionCode::Unavailable
                        | RejectionCode::Unauthenticated,
                    )
                    | None => Outcome::Retry(reason),
                }
            }
        }
    }

    /// A held message, named after what it waits for (`waiting_for` in place of the general
    /// words); any other outcome unchanged.
    pub fn held_for(self, waiting_for: String) -> Outcome {
        match self {
            Outcome::Held { peer_said, .. } => Outcome::Held {
                waiting_for,
                peer_said,
            },
            other => other,
        }
    }

    /// Why the message is not (yet) with the peer, for whoever waits on it; `None` once
    /// delivered.
    pub fn why_not_delivered(&self) -> Option<String> {
        match self {
            Outcome::Delivered { .. } => None,
            Outcome::PeerUnreachable(reason) | Outcome::Retry(reason) | Outcome::Final(reason) => {
                Some(reason.clone())
            }
            Outcome::Held {
                waiting_for,
                peer_said,
            } => Some(format!("held: waiting for {waiting_for} ({peer_said})")),
        }
    }
}

/// Whether a peer is taken to be reachable: a circuit per peer. A call that finds the peer
/// unreachable ([`Outcome::PeerUnreachable`]) opens it; while it is open nothing is sent to the
/// peer but one small probe on the peer's backoff schedule; the first call that reaches the
/// peer closes it, and everything owed to the peer is due again at once. Backoff per message is
/// only for what went wrong with a message ([`Outcome::Retry`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Circuit {
    /// The peer answers: deliveries flow.
    #[default]
    Closed,
    /// The peer could not be reached.
    Open {
        /// When the circuit opened (the first failure of this outage).
        since: DateTime<Utc>,
        /// Calls in a row that found the peer unreachable, the one that opened it included:
        /// drives the probe's backoff.
        failures: u32,
        /// When the next probe goes out.
        probe_at: DateTime<Utc>,
        /// Why the last call failed, as it may be kept (ID numbers withheld).
        reason: String,
    },
}

impl Circuit {
    /// Failed calls in a row so far, the next one counted: the streak a backoff is taken for.
    pub fn next_failure(&self) -> u32 {
        match self {
            Circuit::Closed => 1,
            Circuit::Open { failures, .. } => failures.saturating_add(1),
        }
    }

    /// The circuit after a call found the peer unreachable at `now`: open (or still open), the
    /// next probe at `probe_at` (taken for [`next_failure`](Self::next_failure) failures).
    pub fn tripped(self, now: DateTime<Utc>, probe_at: DateTime<Utc>, reason: &str) -> Circuit {
        let failures = self.next_failure();
        let since = match self {
            Circuit::Closed => now,
            Circuit::Open { since, .. } => since,
        };
        Circuit::Open {
            since,
            failures,
            probe_at,
            reason: scrubbed(reason),
        }
    }

    /// Whether the peer is taken to be unreachable.
    pub fn is_open(&self) -> bool {
        matches!(self, Circuit::Open { .. })
    }

    /// How long until the next probe is due at `now`: `None` while closed (nothing to probe),
    /// zero once due.
    pub fn probe_in(&self, now: DateTime<Utc>) -> Option<std::time::Duration> {
        match self {
            Circuit::Closed => None,
            Circuit::Open { probe_at, .. } => {
                Some((*probe_at - now).to_std().unwrap_or(std::time::Duration::ZERO))
            }
        }
    }

    /// What a call's result says of the peer: reached (even a call that failed at the peer
    /// reached it) closes the circuit; unreachable keeps it open.
    pub fn reached_by<T>(result: &Result<T, CallFailure>) -> bool {
        !matches!(result, Err(CallFailure::Unreachable(_)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(code: Option<RejectionCode>) -> Outcome {
        Outcome::of_verdict(&PeerVerdict::Refused {
            code,
            reason: "WHY: because".into(),
        })
    }

    #[test]
    fn only_refusals_no_retry_can_change_are_final() {
        for code in [
            RejectionCode::InvalidArgument,
            RejectionCode::PermissionDenied,
            RejectionCode::AlreadyExists,
            RejectionCode::NotFound,
        ] {
            assert_eq!(
                refused(Some(code)),
                Outcome::Final("WHY: because".into()),
                "{code:?}"
            );
        }
        assert_eq!(
            refused(Some(RejectionCode::ResourceExhausted)),
            Outcome::Retry("WHY: because".into())
        );
        assert_eq!(refused(None), Outcome::Retry("WHY: because".into()));
    }

    #[test]
    fn a_version_mismatch_holds_the_message_instead_of_refusing_it() {
        let outcome = refused(Some(RejectionCode::FailedPrecondition));
        assert!(
            matches!(&outcome, Outcome::Held { waiting_for, peer_said } if waiting_for.contains("agreement version") && peer_said == "WHY: because")
        );
        assert!(
            !matches!(outcome, Outcome::Final(_) | Outcome::Delivered { .. }),
            "not settled for good"
        );
    }

    #[test]
    fn an_id_number_in_the_peers_words_is_withheld_from_every_outcome() {
        let id = "11010519491231002X";
        let said = format!("PERMISSION_DENIED: {id} is not registered here");
        for code in [
            Some(RejectionCode::PermissionDenied),
            Some(RejectionCode::FailedPrecondition),
            Some(RejectionCode::ResourceExhausted),
            None,
        ] {
            let outcome = Outcome::of_verdict(&PeerVerdict::Refused {
                code,
                reason: said.clone(),
            });
            let kept = outcome.why_not_delivered().expect("not delivered");
            assert!(!kept.contains(id), "{code:?}: {kept}");
            assert!(kept.contains("is not registered here"), "{code:?}: {kept}");
        }
        for failure in [
            CallFailure::Unreachable(said.clone()),
            CallFailure::Failed(said.clone()),
        ] {
            let kept = Outcome::of_failure(&failure)
                .why_not_delivered()
                .expect("not delivered");
            assert!(!kept.contains(id), "{kept}");
            assert!(!failure.describe().contains(id), "{failure:?}");
        }
    }

    #[test]
    fn call_failures_are_a_peer_condition_or_a_retry_never_final() {
        assert_eq!(
            Outcome::of_failure(&CallFailure::Unreachable(
                "UNAVAILABLE: connection refused".into()
            )),
            Outcome::PeerUnreachable("UNAVAILABLE: connection refused".into())
        );
        assert_eq!(
            Outcome::of_failure(&CallFailure::Failed("INTERNAL: stored nothing".into())),
            Outcome::Retry("INTERNAL: stored nothing".into())
        );
    }

    #[test]
    fn a_circuit_opens_on_the_first_unreachable_call_counts_failures_and_keeps_its_start() {
        let t0 = Utc::now();
        let circuit = Circuit::default();
        assert!(!circuit.is_open());
        assert_eq!(circuit.probe_in(t0), None);
        assert_eq!(circuit.next_failure(), 1);
        let open = circuit.tripped(t0, t0 + chrono::Duration::seconds(2), "UNAVAILABLE: refused");
        assert!(open.is_open());
        assert_eq!(open.probe_in(t0), Some(std::time::Duration::from_secs(2)));
        assert_eq!(
            open.probe_in(t0 + chrono::Duration::seconds(3)),
            Some(std::time::Duration::ZERO)
        );
        let later = t0 + chrono::Duration::seconds(2);
        let again = open.tripped(later, later + chrono::Duration::seconds(4), "UNAVAILABLE: again");
        assert!(matches!(
            &again,
            Circuit::Open { since, failures: 2, reason, .. } if *since == t0 && reason == "UNAVAILABLE: again"
        ));
        assert_eq!(again.next_failure(), 3);
    }

    #[test]
    fn only_an_unreachable_peer_keeps_the_circuit_open() {
        assert!(Circuit::reached_by::<()>(&Ok(())));
        assert!(Circuit::reached_by::<()>(&Err(CallFailure::Failed(
            "INTERNAL".into()
        ))));
        assert!(!Circuit::reached_by::<()>(&Err(CallFailure::Unreachable(
            "DEADLINE_EXCEEDED".into()
        ))));
    }

    #[test]
    fn a_circuit_keeps_no_id_number_a_peer_sent() {
        let id = "11010519491231002X";
        let now = Utc::now();
        let open = Circuit::Closed.tripped(now, now, &format!("UNAVAILABLE: {id}"));
        assert!(matches!(open, Circuit::Open { reason, .. } if !reason.contains(id)));
    }
}
