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
}
