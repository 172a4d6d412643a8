//! Receiving from a peer whose county was read from its verified certificate: every message is
//! checked against the agreement it names, stored (idempotently) with its audit record, and only
//! then acknowledged. One intake does this for every message type; each type says only how it
//! is checked and how it is stored ([`Inbound`]).

use std::future::Future;

use chrono::{DateTime, SubsecRound, Utc};
use tracing::{debug, info, instrument};
use uuid::Uuid;

use super::{Node, china_date};
use crate::domain::division::CountyCode;
use crate::domain::message::{AgreementRef, Confirmation, Inquiry, Notice};
use crate::domain::policy::{AgreementBook, Rejection, RejectionCode, check_notice_fields};
use crate::domain::vocabulary::{MessageKind, NoticeEffect};
use crate::store::StoreError;
use crate::store::audit::AuditEntry;
use crate::store::inbound::{ConfirmationReceipt, InboundInquiry, InboundReceipt};
use crate::store::notices::{InboundNotice, NoticeReceipt};

pub use crate::domain::message::{Accepted, Incoming};

/// How many times one batch is stored when it keeps losing races with concurrent copies of
/// itself ([`Node::store_racing_copies`]): the second run normally finds the other copy's rows.
const RACE_ATTEMPTS: u32 = 3;

/// What the store made of one message the checks let through.
pub(super) enum Stored<R> {
    /// Stored now.
    New(R),
    /// Stored before: the first receipt again, nothing changed.
    Repeat(R),
    /// Refused by what the store knows (a daily cap reached, an id taken, an unknown inquiry).
    Refused(Rejection),
}

impl<R> Stored<R> {
    /// The same result with its receipt turned into another.
    pub(super) fn map<T>(self, f: impl FnOnce(R) -> T) -> Stored<T> {
        match self {
            Stored::New(receipt) => Stored::New(f(receipt)),
            Stored::Repeat(receipt) => Stored::Repeat(f(receipt)),
            Stored::Refused(rejection) => Stored::Refused(rejection),
        }
    }
}

/// A message type a peer sends us: how the intake checks it against the agreements and how it
/// stores the ones that pass. Everything else (auditing refusals, one receipt per message in
/// order) is the intake's, the same for every type.
pub(super) trait Inbound: Sized + Send + Sync {
    /// What the check decided for a message that passed it (e.g. its reply deadline), which
    /// the store records with it.
    type Terms: Send + Sync;
    /// What the peer gets back for an accepted message.
    type Receipt: Send;

    /// How the audit names a message of this type that could not even be read.
    const UNREADABLE_KIND: Option<&'static str>;

    /// The message's id, for its audit record.
    fn message_id(&self) -> Uuid;

    /// The message's kind as the audit names it.
    fn audit_kind(&self) -> &'static str;

    /// The agreement version the message names.
    fn agreement(&self) -> &AgreementRef;

    /// The access policy's decision on this message from `peer` at `now`.
    fn check(
        &self,
        book: &AgreementBook,
        peer: CountyCode,
        now: DateTime<Utc>,
    ) -> Result<Self::Terms, Rejection>;

    /// Stores the checked messages in one transaction, through `node`'s store: one result per
    /// message, in order.
    fn store(
        node: &Node,
        peer: CountyCode,
        checked: &[(&Self, Self::Terms)],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<Stored<Self::Receipt>>, StoreError>> + Send;
}

/// What one batch came to.
pub(super) struct Received<R> {
    /// One result per message, in the batch's order.
    pub(super) results: Vec<Result<R, Rejection>>,
    /// How many were stored now (not repeats), to wake what works on them.
    pub(super) new: usize,
}

impl Node {
    /// Receives a batch of inquiries from `peer`: one receipt per inquiry, in order. Wakes the
    /// auto-answer worker when any is new.
    #[instrument(skip_all, fields(peer = %peer, count = batch.len()))]
    pub async fn receive_inquiries(
        &self,
        peer: CountyCode,
        batch: Vec<Incoming<Inquiry>>,
    ) -> Result<Vec<Result<Accepted, Rejection>>, StoreError> {
        let received = self.intake(peer, batch).await?;
        if received.new > 0 {
            info!(accepted = received.new, "inquiries accepted");
            self.auto_answer_wake.notify_one();
        }
        Ok(received.results)
    }

    /// Receives confirmations `peer` sends for inquiries we asked it.
    #[instrument(skip_all, fields(peer = %peer, count = batch.len()))]
    pub async fn receive_confirmations(
        &self,
        peer: CountyCode,
        batch: Vec<Incoming<Confirmation>>,
    ) -> Result<Vec<Result<(), Rejection>>, StoreError> {
        Ok(self.intake(peer, batch).await?.results)
    }

    /// Receives notices (信息通报) from `peer`; the receipt carries the feedback deadline for
    /// kinds that need feedback.
    #[instrument(skip_all, fields(peer = %peer, count = batch.len()))]
    pub async fn receive_notices(
        &self,
        peer: CountyCode,
        batch: Vec<Incoming<Notice>>,
    ) -> Result<Vec<Result<Accepted, Rejection>>, StoreError> {
        Ok(self.intake(peer, batch).await?.results)
    }

    /// [`Inbound::store`], run again when it lost a race with a concurrent copy of the same
    /// messages (another connection from the peer sending the batch again because its lease ran
    /// out while this copy was being written, [`StoreError::lost_a_race`]): the second run finds
    /// them stored and answers them as repeats, with the receipts the first copy got. At most
    /// [`RACE_ATTEMPTS`] runs; a batch that keeps losing fails as any database error does, and
    /// the peer sends it again. (A race of two different messages for the same thing — two
    /// feedbacks to one notice at once — ends the same way: the second run refuses the later one
    /// as already answered, instead of failing the batch.)
    async fn store_racing_copies<M: Inbound>(
        &self,
        peer: CountyCode,
        checked: &[(&M, M::Terms)],
        now: DateTime<Utc>,
    ) -> Result<Vec<Stored<M::Receipt>>, StoreError> {
        let mut attempt = 1;
        loop {
            match M::store(self, peer, checked, now).await {
                Err(error) if error.lost_a_race() && attempt < RACE_ATTEMPTS => {
                    debug!(
                        %peer, attempt, %error,
                        "a concurrent copy of the batch was being written; storing it again"
                    );
                    attempt += 1;
                }
                outcome => return outcome,
            }
        }
    }

    /// The one intake: checks every message, audits the refusals, stores the valid ones, and
    /// returns one result per message in order.
    pub(super) async fn intake<M: Inbound>(
        &self,
        peer: CountyCode,
        batch: Vec<Incoming<M>>,
    ) -> Result<Received<M::Receipt>, StoreError> {
        let now = now_as_stored();
        let book = self.agreements();
        let mut results: Vec<Option<Result<M::Receipt, Rejection>>> = batch.iter().map(|_| None).collect();
        let mut checked = Vec::new();
        let mut checked_at = Vec::new();
        let mut audit = Vec::new();
        for (index, item) in batch.iter().enumerate() {
            let (entry, rejection) = match item {
                Err((message_id, violations)) => {
                    let rejection = Rejection::invalid(violations.clone());
                    let entry = AuditEntry::inbound_rejected(Some(peer), rejection.audit_reason())
                        .message(*message_id)
                        .kind(M::UNREADABLE_KIND);
                    (entry, rejection)
                }
                Ok(message) => match message.check(&book, peer, now) {
                    Ok(terms) => {
                        checked.push((message, terms));
                        checked_at.push(index);
                        continue;
                    }
                    Err(rejection) => {
                        let entry = AuditEntry::inbound_rejected(Some(peer), rejection.audit_reason())
                            .message(Some(message.message_id()))
                            .kind(Some(message.audit_kind()))
                            .under(message.agreement());
                        (entry, rejection)
                    }
                },
            };
            audit.push(entry);
            results[index] = Some(Err(rejection));
        }
        if !audit.is_empty() {
            self.store.append_audit_batch(&audit).await?;
        }
        let stored = if checked.is_empty() {
            Vec::new()
        } else {
            self.store_racing_copies::<M>(peer, &checked, now).await?
        };
        let mut new = 0usize;
        for (index, outcome) in checked_at.into_iter().zip(stored) {
            results[index] = Some(match outcome {
                Stored::New(receipt) => {
                    new += 1;
                    Ok(receipt)
                }
                Stored::Repeat(receipt) => Ok(receipt),
                Stored::Refused(rejection) => Err(rejection),
            });
        }
        let results = results
            .into_iter()
            .map(|result| {
                result.ok_or_else(|| {
                    StoreError::Corrupt("the store returned fewer receipts than messages".into())
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Received { results, new })
    }
}

/// Now, at the precision PostgreSQL keeps (microseconds): a repeated message gets its first
/// receipt read back from the database, which must equal the one sent the first time.
pub(super) fn now_as_stored() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// The store's refusal of a message id that belongs to another message.
pub(super) fn id_taken() -> Rejection {
    Rejection::new(
        RejectionCode::AlreadyExists,
        "message id already used by another message",
    )
}

// === impl Inbound for Inquiry ===

/// What the agreement sets for an inquiry it lets in.
#[derive(Clone, Copy, Debug)]
pub(super) struct InquiryTerms {
    /// Reply deadline.
    pub(super) due_at: DateTime<Utc>,
    /// The direction's daily cap, which the store enforces.
    pub(super) daily_cap: u32,
}

impl Inbound for Inquiry {
    type Terms = InquiryTerms;
    type Receipt = Accepted;

    const UNREADABLE_KIND: Option<&'static str> = None;

    fn message_id(&self) -> Uuid {
        self.message_id
    }

    fn audit_kind(&self) -> &'static str {
        self.kind.as_str()
    }

    fn agreement(&self) -> &AgreementRef {
        &self.agreement
    }

    fn check(
        &self,
        book: &AgreementBook,
        peer: CountyCode,
        now: DateTime<Utc>,
    ) -> Result<InquiryTerms, Rejection> {
        let (_, direction) =
            book.check_inbound(peer, &self.agreement, MessageKind::Inquiry(self.kind), now)?;
        Ok(InquiryTerms {
            due_at: direction.deadline(now, self.priority),
            daily_cap: direction.daily_cap(),
        })
    }

    async fn store(
        node: &Node,
        peer: CountyCode,
        checked: &[(&Inquiry, InquiryTerms)],
        now: DateTime<Utc>,
    ) -> Result<Vec<Stored<Accepted>>, StoreError> {
        let batch: Vec<InboundInquiry<'_>> = checked
            .iter()
            .map(|&(inquiry, terms)| InboundInquiry {
                inquiry,
                due_at: terms.due_at,
                daily_cap: terms.daily_cap,
            })
            .collect();
        let receipts = node
            .store
            .accept_inbound_inquiries(peer, china_date(now), &batch, now)
            .await?;
        Ok(receipts.into_iter().map(stored_inquiry).collect())
    }
}

/// What the store's receipt for an inquiry means for the peer.
pub(super) fn stored_inquiry(receipt: InboundReceipt) -> Stored<Accepted> {
    match receipt {
        InboundReceipt::Accepted { received_at, due_at } => Stored::New(Accepted {
            received_at,
            due_at: Some(due_at),
        }),
        InboundReceipt::Duplicate { received_at, due_at } => Stored::Repeat(Accepted {
            received_at,
            due_at: Some(due_at),
        }),
        InboundReceipt::OverDailyCap { cap } => Stored::Refused(Rejection::new(
            RejectionCode::ResourceExhausted,
            format!("daily cap of {cap} inquiries under the agreement is reached"),
        )),
        InboundReceipt::IdTaken => Stored::Refused(id_taken()),
    }
}

// === impl Inbound for Confirmation ===

impl Inbound for Confirmation {
    type Terms = ();
    type Receipt = ();

    const UNREADABLE_KIND: Option<&'static str> = Some("confirmation");

    fn message_id(&self) -> Uuid {
        self.message_id
    }

    fn audit_kind(&self) -> &'static str {
        "confirmation"
    }

    fn agreement(&self) -> &AgreementRef {
        &self.agreement
    }

    fn check(&self, book: &AgreementBook, peer: CountyCode, _now: DateTime<Utc>) -> Result<(), Rejection> {
        book.check_confirmation(peer, &self.agreement, &self.fields)
    }

    async fn store(
        node: &Node,
        peer: CountyCode,
        checked: &[(&Confirmation, ())],
        _now: DateTime<Utc>,
    ) -> Result<Vec<Stored<()>>, StoreError> {
        let confirmations: Vec<Confirmation> = checked.iter().map(|&(c, ())| c.clone()).collect();
        let receipts = node
            .store
            .accept_inbound_confirmations(peer, &confirmations)
            .await?;
        Ok(receipts
            .into_iter()
            .map(|receipt| match receipt {
                ConfirmationReceipt::Accepted => Stored::New(()),
                ConfirmationReceipt::Duplicate => Stored::Repeat(()),
                ConfirmationReceipt::UnknownInquiry => Stored::Refused(Rejection::new(
                    RejectionCode::NotFound,
                    "no inquiry with this id was sent to you",
                )),
                ConfirmationReceipt::AlreadyAnswered => Stored::Refused(Rejection::new(
                    RejectionCode::AlreadyExists,
                    "the inquiry already has an answer",
                )),
            })
            .collect())
    }
}

// === impl Inbound for Notice ===

/// What the agreement sets for a notice it lets in.
#[derive(Clone, Copy, Debug)]
pub(super) struct NoticeTerms {
    /// When feedback is due, for kinds that need it.
    feedback_due_at: Option<DateTime<Utc>>,
    /// What the notice does in our registry.
    effect: NoticeEffect,
    /// Our county, whose registry that is.
    here: CountyCode,
}

impl Inbound for Notice {
    type Terms = NoticeTerms;
    type Receipt = Accepted;

    const UNREADABLE_KIND: Option<&'static str> = None;

    fn message_id(&self) -> Uuid {
        self.message_id
    }

    fn audit_kind(&self) -> &'static str {
        self.kind.as_str()
    }

    fn agreement(&self) -> &AgreementRef {
        &self.agreement
    }

    fn check(
        &self,
        book: &AgreementBook,
        peer: CountyCode,
        now: DateTime<Utc>,
    ) -> Result<NoticeTerms, Rejection> {
        let (agreement, direction) =
            book.check_inbound(peer, &self.agreement, MessageKind::Notice(self.kind), now)?;
        check_notice_fields(agreement, direction, self.kind, &self.fields)?;
        Ok(NoticeTerms {
            feedback_due_at: direction
                .notice_deadlines(self.kind, now)
                .and_then(|deadlines| deadlines.feedback),
            effect: direction.notice_effect(self.kind),
            here: book.me(),
        })
    }

    async fn store(
        node: &Node,
        peer: CountyCode,
        checked: &[(&Notice, NoticeTerms)],
        now: DateTime<Utc>,
    ) -> Result<Vec<Stored<Accepted>>, StoreError> {
        let batch: Vec<InboundNotice<'_>> = checked
            .iter()
            .map(|&(notice, terms)| InboundNotice {
                notice,
                feedback_due_at: terms.feedback_due_at,
                effect: terms.effect,
            })
            .collect();
        let here = checked.first().map_or(peer, |(_, terms)| terms.here);
        let receipts = node.store.accept_inbound_notices(peer, here, &batch, now).await?;
        Ok(receipts
            .into_iter()
            .map(|receipt| match receipt {
                NoticeReceipt::Accepted {
                    received_at,
                    feedback_due_at,
                } => Stored::New(Accepted {
                    received_at,
                    due_at: feedback_due_at,
                }),
                NoticeReceipt::Duplicate {
                    received_at,
                    feedback_due_at,
                } => Stored::Repeat(Accepted {
                    received_at,
                    due_at: feedback_due_at,
                }),
                NoticeReceipt::IdTaken => Stored::Refused(id_taken()),
            })
            .collect())
    }
}
