//! The access policy: the agreements this node holds, and the decisions made with them on every
//! message, in both directions; and who may do what on the operator API ([`authorize`], for
//! every operator entry point). Pure: the caller supplies the verified peer or principal and the
//! time.

pub mod lockout;
mod notices;
mod principal;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::domain::agreement::{Agreement, Denial, Direction, VersionState, sending_version};
use crate::domain::division::CountyCode;
use crate::domain::message::{AgreementRef, FieldViolation};
use crate::domain::time::china_date;
use crate::domain::vocabulary::{MessageKind, StatusField, StatusValues};

pub use notices::check_notice_fields;
pub use principal::{OperatorAction, Principal, Role, Scope};

/// The gRPC-level class of a refusal; the edges map each to its status code in one place
/// (`crate::status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectionCode {
    /// Malformed message: field violations say which fields.
    InvalidArgument,
    /// No agreement allows it.
    PermissionDenied,
    /// The sender holds another version of the agreement.
    FailedPrecondition,
    /// Over the daily cap or a size limit.
    ResourceExhausted,
    /// The message id is used by another message.
    AlreadyExists,
    /// It refers to something that does not exist (e.g. an unknown inquiry).
    NotFound,
    /// It conflicts with work in progress (e.g. a reconciliation already running).
    Aborted,
    /// The caller went away before the call was done.
    Cancelled,
    /// Something it needs is unreachable for now (e.g. the peer); retrying later may succeed.
    Unavailable,
    /// The caller's identity could not be established from its certificate.
    Unauthenticated,
}

impl RejectionCode {
    /// The classes a receiver's refusal of one message takes in its receipt: what the sender
    /// reads back from a status (`crate::status::refusal_of`) and decides on
    /// ([`crate::domain::delivery::Outcome::of_verdict`]).
    pub const MESSAGE_REFUSALS: [RejectionCode; 6] = [
        RejectionCode::InvalidArgument,
        RejectionCode::PermissionDenied,
        RejectionCode::FailedPrecondition,
        RejectionCode::ResourceExhausted,
        RejectionCode::AlreadyExists,
        RejectionCode::NotFound,
    ];

    /// The canonical gRPC name, used in audit reasons.
    pub const fn as_str(self) -> &'static str {
        match self {
            RejectionCode::InvalidArgument => "INVALID_ARGUMENT",
            RejectionCode::PermissionDenied => "PERMISSION_DENIED",
            RejectionCode::FailedPrecondition => "FAILED_PRECONDITION",
            RejectionCode::ResourceExhausted => "RESOURCE_EXHAUSTED",
            RejectionCode::AlreadyExists => "ALREADY_EXISTS",
            RejectionCode::NotFound => "NOT_FOUND",
            RejectionCode::Aborted => "ABORTED",
            RejectionCode::Cancelled => "CANCELLED",
            RejectionCode::Unavailable => "UNAVAILABLE",
            RejectionCode::Unauthenticated => "UNAUTHENTICATED",
        }
    }
}

/// Why a message was refused: safe to show the peer (never a person's data).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The class of refusal.
    pub code: RejectionCode,
    /// One line saying why.
    pub reason: String,
    /// For malformed messages, which fields.
    pub violations: Vec<FieldViolation>,
}

impl Rejection {
    /// A refusal without field violations.
    pub fn new(code: RejectionCode, reason: impl Into<String>) -> Rejection {
        Rejection {
            code,
            reason: reason.into(),
            violations: Vec::new(),
        }
    }

    /// A malformed message.
    pub fn invalid(violations: Vec<FieldViolation>) -> Rejection {
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        Rejection {
            code: RejectionCode::InvalidArgument,
            reason: format!("invalid fields: {}", fields.join(", ")),
            violations,
        }
    }

    /// A malformed request with one field at fault; the reason names the field and says why.
    pub fn invalid_field(field: &str, description: impl Into<String>) -> Rejection {
        let description = description.into();
        Rejection {
            code: RejectionCode::InvalidArgument,
            reason: format!("{field}: {description}"),
            violations: vec![FieldViolation::new(field, description)],
        }
    }

    /// `CODE: reason`, as the audit log records it.
    pub fn audit_reason(&self) -> String {
        format!("{}: {}", self.code.as_str(), self.reason)
    }
}

/// An answer that carries fields its agreement does not let the asker see.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("fields not allowed by agreement {agreement}: {} (allowed: {})", names(.refused), names(.allowed))]
pub struct FieldsNotAllowed {
    /// The agreement that decides.
    pub agreement: String,
    /// The fields present that the agreement does not allow.
    pub refused: Vec<StatusField>,
    /// The fields the agreement allows, so that the refusal says what may be sent.
    pub allowed: Vec<StatusField>,
}

impl FieldsNotAllowed {
    /// The refusal a peer receives for it.
    pub fn rejection(&self) -> Rejection {
        Rejection::new(RejectionCode::PermissionDenied, self.to_string())
    }
}

fn names(fields: &[StatusField]) -> String {
    if fields.is_empty() {
        return "none".into();
    }
    fields.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(", ")
}

/// Which fields may go back: an answer from `responder` to `asker` under `agreement` may carry
/// only the fields the agreement lets `asker` see (none, when it has no direction from `asker`
/// to `responder`). Both the answering side, before anything leaves, and the asking side, on
/// receipt, decide with this.
pub fn check_answer_fields(
    agreement: &Agreement,
    asker: CountyCode,
    responder: CountyCode,
    fields: &StatusValues,
) -> Result<(), FieldsNotAllowed> {
    let allowed = agreement
        .direction(asker, responder)
        .map(Direction::answer_fields);
    let refused: Vec<StatusField> = fields
        .present_fields()
        .into_iter()
        .filter(|field| !allowed.is_some_and(|allowed| allowed.contains(field)))
        .collect();
    if refused.is_empty() {
        return Ok(());
    }
    Err(FieldsNotAllowed {
        agreement: agreement.id().to_string(),
        refused,
        allowed: allowed.into_iter().flatten().copied().collect(),
    })
}

/// The one decision on operator access: may `principal` do `action`, and within which scope?
///
/// Every operator entry point calls this before doing anything (gRPC today; a console or HTTP
/// API maps its logins to a [`Principal`] and calls it too). A county principal may do
/// everything, county-wide. A township principal may ask (a clerk at the township window
/// verifies certificates), list, show and answer inquiries, read indicators, agreements and
/// reconciliation differences, all narrowed to its township by the caller through the
/// returned [`Scope`]; county-wide work (sweeps, the registry import, agreements, starting
/// reconciliation) is `PERMISSION_DENIED`.
pub fn authorize(principal: &Principal, action: OperatorAction) -> Result<Scope, Rejection> {
    let scope = principal.scope();
    if let (Scope::Township(township), Some(work)) = (scope, action.county_wide_work()) {
        return Err(Rejection::new(
            RejectionCode::PermissionDenied,
            format!(
                "{work} is county-wide work, done by the county office; operator {} works for township {township} {}",
                principal.name(),
                township.name()
            ),
        ));
    }
    Ok(scope)
}

/// Every agreement version this node holds, indexed for the checks made on each message.
#[derive(Clone, Debug)]
pub struct AgreementBook {
    /// The county this node speaks for.
    me: CountyCode,
    /// Agreement id → its versions, newest (highest version) first.
    versions: BTreeMap<String, Vec<Arc<Agreement>>>,
    /// Canonical hash → what this node knows of the version beyond its terms (retired here,
    /// held by the peer); a version absent here is neither retired nor known to the peer.
    states: HashMap<String, VersionState>,
}

impl AgreementBook {
    /// Indexes the agreements to which `me` is a party; others are ignored.
    pub fn new(me: CountyCode, agreements: impl IntoIterator<Item = Agreement>) -> AgreementBook {
        let mut versions: BTreeMap<String, Vec<Arc<Agreement>>> = BTreeMap::new();
        for agreement in agreements.into_iter().filter(|a| a.is_party(me)) {
            let list = versions.entry(agreement.id().to_string()).or_default();
            if !list
                .iter()
                .any(|known| known.canonical_hash() == agreement.canonical_hash())
            {
                list.push(Arc::new(agreement));
            }
        }
        for list in versions.values_mut() {
            list.sort_by_key(|agreement| std::cmp::Reverse(agreement.version()));
        }
        AgreementBook {
            me,
            versions,
            states: HashMap::new(),
        }
    }

    /// The same book, knowing `states` (canonical hash → state) of the versions it holds.
    pub fn with_states(mut self, states: HashMap<String, VersionState>) -> AgreementBook {
        self.states = states;
        self
    }

    /// What this node knows of each version, by canonical hash.
    pub fn states(&self) -> &HashMap<String, VersionState> {
        &self.states
    }

    /// What this node knows of the version with `hash`.
    pub fn state_of(&self, hash: &str) -> VersionState {
        self.states.get(hash).copied().unwrap_or_default()
    }

    /// Every version (newest first within each agreement) of our agreements with `peer`.
    pub fn with_peer(&self, peer: CountyCode) -> impl Iterator<Item = &Arc<Agreement>> {
        let me = self.me;
        self.versions.values().flatten().filter(move |agreement| {
            agreement
                .peer_of(me)
                .is_some_and(|p| p.current() == peer.current())
        })
    }

    /// The county this book decides for.
    pub fn me(&self) -> CountyCode {
        self.me
    }

    /// The newest version of every agreement.
    pub fn current_versions(&self) -> impl Iterator<Item = &Arc<Agreement>> {
        self.versions.values().filter_map(|list| list.first())
    }

    /// The version of the agreement with `peer` that messages (and reconciliation runs) go under
    /// at `at` ([`sending_version`]: the newest valid one both sides hold, not retired); `None`
    /// when none may be sent under.
    pub fn sending_with(&self, peer: CountyCode, at: DateTime<Utc>) -> Option<&Arc<Agreement>> {
        let today = china_date(at);
        let mut ids: Vec<&str> = self.with_peer(peer).map(|agreement| agreement.id()).collect();
        ids.dedup();
        ids.into_iter().find_map(|id| {
            let list = self.versions.get(id)?;
            let states = list
                .iter()
                .map(|agreement| (agreement, self.state_of(agreement.canonical_hash().as_str())));
            sending_version(states, today)
        })
    }

    /// [`sending_with`](Self::sending_with), or if no version may be sent under, the newest one
    /// at all, so that the refusal can say why.
    pub fn current_with(&self, peer: CountyCode, at: DateTime<Utc>) -> Option<&Arc<Agreement>> {
        self.sending_with(peer, at)
            .or_else(|| self.with_peer(peer).next())
    }

    /// The version a message names, if this node holds exactly that one.
    pub fn by_ref(&self, reference: &AgreementRef) -> Option<&Arc<Agreement>> {
        self.versions
            .get(&reference.id)?
            .iter()
            .find(|agreement| agreement.canonical_hash().as_str() == reference.hash)
    }

    /// Receiver side: may `peer` (from its verified certificate) send us a message of `kind`
    /// under `reference` at `at`? Returns the agreement and the direction's terms.
    pub fn check_inbound(
        &self,
        peer: CountyCode,
        reference: &AgreementRef,
        kind: MessageKind,
        at: DateTime<Utc>,
    ) -> Result<(&Arc<Agreement>, &Direction), Rejection> {
        let agreement = self.pinned_not_retired(reference)?;
        let direction = agreement.allows(peer, self.me, kind, at).map_err(|denial| {
            // a version out of its validity while another version of the same agreement is in
            // force here: the two sides disagree on the version, which the sender can mend (it
            // holds the message and sends it again under the version in force), not a refusal
            // for good
            let in_force = self
                .sending_with(peer, at)
                .filter(|current| current.id() == agreement.id());
            match (&denial, in_force) {
                (Denial::Expired { .. } | Denial::NotYetValid { .. }, Some(current)) => Rejection::new(
                    RejectionCode::FailedPrecondition,
                    format!(
                        "agreement {} version {}: {denial}; this node holds version {} ({}) in force",
                        agreement.id(),
                        agreement.version(),
                        current.version(),
                        current.canonical_hash().short()
                    ),
                ),
                _ => Rejection::new(RejectionCode::PermissionDenied, denial.to_string()),
            }
        })?;
        Ok((agreement, direction))
    }

    /// Sender side: may we send `peer` a message of `kind` at `at`? Returns the agreement to
    /// name and the terms of our direction.
    pub fn check_outbound(
        &self,
        peer: CountyCode,
        kind: MessageKind,
        at: DateTime<Utc>,
    ) -> Result<(&Arc<Agreement>, &Direction), Rejection> {
        let agreement = self.current_with(peer, at).ok_or_else(|| {
            Rejection::new(
                RejectionCode::PermissionDenied,
                format!("no agreement between {} and {peer}", self.me),
            )
        })?;
        let state = self.state_of(agreement.canonical_hash().as_str());
        if state.retired {
            return Err(Rejection::new(
                RejectionCode::PermissionDenied,
                retired_and_nothing_else(agreement, peer),
            ));
        }
        if state.unsigned {
            return Err(Rejection::new(
                RejectionCode::PermissionDenied,
                format!(
                    "agreement {} version {} is not signed by every party and no other version with {peer} is",
                    agreement.id(),
                    agreement.version()
                ),
            ));
        }
        let direction = agreement
            .allows(self.me, peer, kind, at)
            .map_err(|denial| Rejection::new(RejectionCode::PermissionDenied, denial.to_string()))?;
        Ok((agreement, direction))
    }

    /// Asker side: may `peer` (from its verified certificate) send us a confirmation answering
    /// an inquiry we sent it under `reference`, carrying `fields`? It travels under the
    /// inquiry's agreement, from the responder to us, and may carry only the fields that
    /// agreement lets us see.
    pub fn check_confirmation(
        &self,
        peer: CountyCode,
        reference: &AgreementRef,
        fields: &StatusValues,
    ) -> Result<(), Rejection> {
        let me = self.me;
        let agreement = self.pinned(reference)?;
        if !agreement.is_party(peer) {
            return Err(Rejection::new(
                RejectionCode::PermissionDenied,
                format!("{peer} is not a party to agreement {}", agreement.id()),
            ));
        }
        if agreement.direction(me, peer).is_none() {
            return Err(Rejection::new(
                RejectionCode::PermissionDenied,
                format!(
                    "agreement {} allows no inquiries from {me} to {peer}",
                    agreement.id()
                ),
            ));
        }
        check_answer_fields(agreement, me, peer, fields).map_err(|refused| refused.rejection())
    }

    /// The version a message names, if this node holds it — the newest or any older one it
    /// still holds. A receiver honours every version it holds, so an amendment applied on one
    /// side first never refuses what the other side still sends under the version both hold,
    /// and answers to inquiries asked before an amendment are taken under the inquiry's
    /// version. Whether that version allows the message at the time of receipt is the caller's
    /// check ([`Agreement::allows`] with the receipt time; never a time the sender claims). A
    /// version this node does not hold is refused with `FAILED_PRECONDITION` naming the one it
    /// holds: not final, the sender holds the message until the two sides agree.
    pub fn pinned(&self, reference: &AgreementRef) -> Result<&Arc<Agreement>, Rejection> {
        let Some(list) = self.versions.get(&reference.id) else {
            return Err(Rejection::new(
                RejectionCode::PermissionDenied,
                // the id named is not one we hold, so it is not quoted: it may be anything
                format!("the agreement named is not held by {}", self.me),
            ));
        };
        if let Some(held) = list
            .iter()
            .find(|agreement| agreement.canonical_hash().as_str() == reference.hash)
        {
            return Ok(held);
        }
        let newest = &list[0];
        Err(Rejection::new(
            RejectionCode::FailedPrecondition,
            format!(
                "agreement {}: the message names an unknown version ({}), this node holds version {} ({})",
                reference.id,
                // the peer's text, cut by characters: it may be anything, not only hex
                reference.hash.chars().take(12).collect::<String>(),
                newest.version(),
                newest.canonical_hash().short()
            ),
        ))
    }

    /// [`pinned`](Self::pinned), for a new exchange (an inquiry, a notice, a reconciliation
    /// run): a version retired here is refused too, with `FAILED_PRECONDITION` naming the
    /// newest version this node holds, so the sender holds the message until the two sides
    /// share a version. (Answers to inquiries asked under a retired version are still taken.)
    pub fn pinned_not_retired(&self, reference: &AgreementRef) -> Result<&Arc<Agreement>, Rejection> {
        let agreement = self.pinned(reference)?;
        let state = self.state_of(agreement.canonical_hash().as_str());
        if state.unsigned {
            return Err(Rejection::new(
                RejectionCode::PermissionDenied,
                format!(
                    "agreement {} version {} is not signed by every party here, so {} takes nothing under it",
                    agreement.id(),
                    agreement.version(),
                    self.me
                ),
            ));
        }
        if !state.retired {
            return Ok(agreement);
        }
        let newest = self
            .versions
            .get(agreement.id())
            .and_then(|list| {
                list.iter()
                    .find(|held| !self.state_of(held.canonical_hash().as_str()).retired)
            })
            .map(|held| format!("version {} ({})", held.version(), held.canonical_hash().short()))
            .unwrap_or_else(|| "no other version".into());
        Err(Rejection::new(
            RejectionCode::FailedPrecondition,
            format!(
                "agreement {}: version {} is retired by {}, which holds {newest}",
                agreement.id(),
                agreement.version(),
                self.me
            ),
        ))
    }
}

/// Why nothing can be sent to `peer`: the only version that could be is retired here.
pub fn retired_and_nothing_else(agreement: &Agreement, peer: CountyCode) -> String {
    format!(
        "agreement {} version {} is retired here and no other version with {peer} is in force",
        agreement.id(),
        agreement.version()
    )
}

#[cfg(test)]
mod tests;
