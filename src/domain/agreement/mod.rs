//! Bilateral agreements (双向协议): the access policy between two counties, read from the TOML
//! document both counties hold.
//!
//! An agreement says, per direction (who asks → who answers; who notifies → who is notified),
//! which inquiry and notice kinds are allowed, which status fields an answer may carry, the reply
//! deadlines, a daily volume cap and whether answers may be automatic. Everything the exchange
//! decides about a peer comes from here ([`Agreement::allows`], [`Direction::answer_fields`],
//! [`Direction::deadline`]); nothing about it is a constant in code, because regulations and
//! agreements change.
//!
//! # Layout
//!
//! - this file: the checked [`Agreement`], the pure policy check [`Agreement::allows`] and its
//!   [`Denial`]s;
//! - `direction`: one [`Direction`] and the deadlines that follow from its terms;
//! - `parse`: TOML → `Agreement`, collecting every error with its line and key path;
//! - `lifecycle`: where an installed version stands ([`Stage`]) and which one a message is sent
//!   under ([`sending_version`]);
//! - `canonical`: the canonical form and the [`AgreementHash`] that pins a version;
//! - `signatures`: the counties' `[[signature]]` tables and whether they make a version signed
//!   by every party ([`assess_signatures`]);
//! - `error`: [`AgreementError`] and its [`Problem`]s.
//!
//! # The document
//!
//! | key | meaning |
//! |---|---|
//! | `id` | stable id both sides use, 1–64 of `A-Z a-z 0-9 . _ -` (convention: the two codes) |
//! | `version` | ≥ 1, raised by every amendment |
//! | `title` | the agreement's name, for people |
//! | `parties` | the two county codes (current or historical; compared after renames) |
//! | `valid_from`, `valid_until` | TOML dates; inclusive, by calendar day in China Standard Time |
//! | `retention_days` | how many days personal data from exchanges under this agreement is kept, 1–3650 (PIPL Art. 19, 47) |
//! | `[[direction]]` | one table per ordered pair, at least one; at most one per pair |
//! | `from`, `to` | the asker (notice sender) and the responder (notice receiver), both parties |
//! | `inquiry_kinds` | what `from` may ask: `certificate_verification`, `outflow_status` |
//! | `notice_kinds` | what `from` may notify: `birth`, `pregnancy`, `contraception_check`, `moved_on` |
//! | `answer_fields` | the status fields `to` may put into answers to `from`; all others are filtered out |
//! | `reply_days` | `{ normal = …, urgent = … }` days to answer an inquiry, 1–365, urgent ≤ normal |
//! | `notice_fields` | optional: per notice kind, which of its fields may travel, e.g. `{ birth = ["child_sex", "birth_order"] }`; a kind not listed carries only its date (fields in [`NoticeField`](crate::domain::vocabulary::NoticeField)) |
//! | `notice_effect` | optional: per notice kind `from` may send, what a received notice does at `to`: `"apply"` (the registry is updated at once) or `"operator"` (it waits for an operator), e.g. `{ contraception_check = "apply", birth = "operator" }`; a kind not named waits for an operator ([`NoticeEffect`](crate::domain::vocabulary::NoticeEffect)) |
//! | `notice_days` | `{ receipt = …, feedback = … }` days to acknowledge a notice and, for kinds that need it, feed back; required when `notice_kinds` is not empty |
//! | `daily_cap` | the most messages `from` may send `to` per day, 1–10,000,000 |
//! | `automatic_answers` | whether `to` may answer from its register without an operator |
//! | `[[signature]]` | one per signing county, outside the canonical form; see `signatures` (`county`, `signed_at`, `algorithm`, `certificate`, `signature`) |
//!
//! Every key is required except `notice_days`, `notice_fields`, `notice_effect` (see above) and the signatures
//! (which a node requires to apply a version, not to parse it); unknown keys are errors. Each
//! error names its line, column and key path, e.g. `line 11, column 46: direction[0].inquiry_kinds:
//! unknown inquiry kind "foo" (allowed: certificate_verification, outflow_status)`.
//!
//! The agreement between 鼎城区 and 新化县 (`examples/agreements/430703-431322.toml`):
//!
//! ```toml
#![doc = include_str!("../../../examples/agreements/430703-431322.toml")]
//! ```

mod admission;
mod canonical;
mod direction;
mod error;
mod lifecycle;
mod parse;
mod signatures;

use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, Utc};

use direction::names;

use crate::domain::division::CountyCode;
use crate::domain::time::china_date;
use crate::domain::vocabulary::MessageKind;

pub use admission::{Admission, InstalledVersion, NotAdmitted, admit};
pub use canonical::{AgreementHash, AgreementHashError};
pub use direction::{Direction, NoticeDays, NoticeDeadlines, ReplyDays};
pub use error::{AgreementError, AgreementErrors, Problem};
pub use lifecycle::{Stage, VersionState, sending_version};
pub use parse::well_formed_id;
pub use signatures::{SignatureCheck, SignatureEntry, SignatureProblem, Unsigned, assess_signatures};

/// A checked bilateral agreement: parsed, every rule of the format satisfied, hash computed.
///
/// Only [`Agreement::parse`] makes one, so holding an `Agreement` means holding a valid one.
#[derive(Debug, Clone)]
pub struct Agreement {
    /// Stable id both sides name in every exchange, with the hash.
    id: String,
    /// Raised by every amendment, so operators can tell versions apart without hashes.
    version: u32,
    /// The agreement's name, for people.
    title: String,
    /// The two counties, sorted by code so that the written order never matters.
    parties: [CountyCode; 2],
    /// First day (China Standard Time) on which the agreement applies.
    valid_from: NaiveDate,
    /// Last day (China Standard Time) on which the agreement applies.
    valid_until: NaiveDate,
    /// Days personal data from exchanges under this agreement is kept (PIPL Art. 19, 47).
    retention_days: u16,
    /// The allowed directions, sorted by (from, to), at most one per ordered pair.
    directions: Vec<Direction>,
    /// The `[[signature]]` tables, outside the canonical form: who says they signed, to be
    /// verified by the node.
    signatures: Vec<SignatureEntry>,
    /// The document as written, which the store keeps so the signed text can be shown again.
    source_text: String,
    /// The canonical form the hash is taken over, kept for debugging hash mismatches.
    canonical_form: String,
    /// The hash of the canonical form, which pins this version in every exchange.
    hash: AgreementHash,
}

/// Why an agreement does not allow a message. Each reason is precise, because it goes into the
/// audit record and, as `PERMISSION_DENIED`, to the peer that has to fix its side.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    /// The county is not one of the two parties.
    #[error("{county} is not a party to this agreement")]
    NotAParty {
        /// The county that is not a party.
        county: CountyCode,
    },
    /// Both counties are parties, but the agreement allows nothing from one to the other.
    #[error("the agreement allows nothing from {from} to {to}")]
    NoDirection {
        /// The asker (sender).
        from: CountyCode,
        /// The responder (receiver).
        to: CountyCode,
    },
    /// The agreement has not started yet.
    #[error("the agreement applies from {from} (China Standard Time)")]
    NotYetValid {
        /// Its first day.
        from: NaiveDate,
    },
    /// The agreement has ended.
    #[error("the agreement expired after {until} (China Standard Time)")]
    Expired {
        /// Its last day.
        until: NaiveDate,
    },
    /// The direction exists but does not allow this kind.
    #[error(
        "the agreement does not allow {kind} in this direction (allowed: {})",
        names(allowed)
    )]
    KindNotAllowed {
        /// The kind asked for.
        kind: MessageKind,
        /// What the direction does allow, so the sender can see its mistake.
        allowed: Vec<MessageKind>,
    },
}

// === impl Agreement ===

impl AsRef<Agreement> for Agreement {
    fn as_ref(&self) -> &Agreement {
        self
    }
}

impl Agreement {
    /// Parses and checks an agreement document (format in the module documentation).
    ///
    /// On failure returns every error it could find, each with line, column and key path.
    /// Syntax errors are all reported; a document that is valid TOML but of the wrong shape
    /// (unknown or missing key, wrong type) reports the first such error; all semantic errors
    /// (codes, names, ranges, duplicates, dates) are reported together.
    pub fn parse(text: &str) -> Result<Agreement, AgreementErrors> {
        parse::parse(text)
    }

    /// The stable id both sides name in every exchange.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The version, raised by every amendment.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The agreement's name, for people.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// The two parties, sorted by code.
    pub fn parties(&self) -> [CountyCode; 2] {
        self.parties
    }

    /// The first day of validity (China Standard Time, inclusive).
    pub fn valid_from(&self) -> NaiveDate {
        self.valid_from
    }

    /// The last day of validity (China Standard Time, inclusive).
    pub fn valid_until(&self) -> NaiveDate {
        self.valid_until
    }

    /// How many days personal data (resident IDs, answered fields) from exchanges under this
    /// agreement is kept before it is erased.
    pub fn retention_days(&self) -> u16 {
        self.retention_days
    }

    /// The directions, sorted by (from, to).
    pub fn directions(&self) -> &[Direction] {
        &self.directions
    }

    /// The `[[signature]]` tables as written (not verified: see [`assess_signatures`]).
    pub fn signatures(&self) -> &[SignatureEntry] {
        &self.signatures
    }

    /// The bytes each county signs (after the purpose and time, see `crate::tls::signing`):
    /// the canonical hash as 64 hex digits.
    pub fn signed_content(&self) -> &[u8] {
        self.hash.as_str().as_bytes()
    }

    /// The document exactly as parsed, for the store to keep and show.
    pub fn source_text(&self) -> &str {
        &self.source_text
    }

    /// The canonical form the hash is taken over, to find out why two hashes differ.
    pub fn canonical_form(&self) -> &str {
        &self.canonical_form
    }

    /// The hash that pins this version: equal for documents that mean the same, different for
    /// any change of terms.
    pub fn canonical_hash(&self) -> &AgreementHash {
        &self.hash
    }

    /// Whether `county` (or the county it was renamed to) is a party.
    pub fn is_party(&self, county: CountyCode) -> bool {
        self.parties
            .iter()
            .any(|party| party.current() == county.current())
    }

    /// The other party, seen from `me`; `None` when `me` is not a party.
    pub fn peer_of(&self, me: CountyCode) -> Option<CountyCode> {
        let [first, second] = self.parties;
        if first.current() == me.current() {
            Some(second)
        } else if second.current() == me.current() {
            Some(first)
        } else {
            None
        }
    }

    /// Whether the agreement applies at instant `at`: its China Standard Time date lies within
    /// `valid_from..=valid_until`.
    pub fn is_valid_at(&self, at: DateTime<Utc>) -> bool {
        self.is_valid_on(china_date(at))
    }

    /// Whether the agreement applies on `day` (China Standard Time): `valid_from..=valid_until`.
    pub fn is_valid_on(&self, day: NaiveDate) -> bool {
        self.valid_from <= day && day <= self.valid_until
    }

    /// The direction from `from` to `to` (renamed counties match their successors).
    pub fn direction(&self, from: CountyCode, to: CountyCode) -> Option<&Direction> {
        self.directions
            .iter()
            .find(|d| d.from.current() == from.current() && d.to.current() == to.current())
    }

    /// Whether `asker` may send a message of `kind` to `responder` at `at`, and on which terms.
    ///
    /// Whether the agreement is in force at `at` (by calendar day in China Standard Time): what
    /// every exchange under it, reconciliation included, requires.
    pub fn in_force(&self, at: DateTime<Utc>) -> Result<(), Denial> {
        let today = china_date(at);
        if today < self.valid_from {
            return Err(Denial::NotYetValid {
                from: self.valid_from,
            });
        }
        if today > self.valid_until {
            return Err(Denial::Expired {
                until: self.valid_until,
            });
        }
        Ok(())
    }

    /// For notices, `asker` is the sender and `responder` the receiver. Checks in order: both
    /// are parties, the agreement is valid at `at`, a direction exists, it allows `kind`.
    pub fn allows(
        &self,
        asker: CountyCode,
        responder: CountyCode,
        kind: MessageKind,
        at: DateTime<Utc>,
    ) -> Result<&Direction, Denial> {
        for county in [asker, responder] {
            if !self.is_party(county) {
                return Err(Denial::NotAParty { county });
            }
        }
        self.in_force(at)?;
        let direction = self.direction(asker, responder).ok_or(Denial::NoDirection {
            from: asker,
            to: responder,
        })?;
        if !direction.allows_kind(kind) {
            return Err(Denial::KindNotAllowed {
                kind,
                allowed: direction.message_kinds(),
            });
        }
        Ok(direction)
    }

    /// A few lines describing the agreement, for `hancha agreement check` and logs.
    pub fn summary(&self) -> String {
        let mut summary = format!(
            "{} version {}: {}\nhash {}\nparties {} {} and {} {}, valid {} to {} (China Standard Time)\npersonal data kept {} days",
            self.id,
            self.version,
            self.title,
            self.hash,
            self.parties[0],
            self.parties[0].name(),
            self.parties[1],
            self.parties[1].name(),
            self.valid_from,
            self.valid_until,
            self.retention_days,
        );
        for direction in &self.directions {
            // Writing to a String cannot fail.
            let _ = write!(summary, "\n{}", direction.summary());
        }
        summary
    }
}

#[cfg(test)]
mod tests;
