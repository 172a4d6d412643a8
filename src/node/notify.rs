//! Sending our own notices (信息通报): checked against the agreement first (kind allowed in
//! this direction, fields allowed and well formed), then written with the outbox entry in one
//! transaction for the delivery worker, which sends them like every message. The caller may
//! wait a little for the peer's receipt.

use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use tracing::{info, instrument};
use uuid::Uuid;

use super::{Node, SendError};
use crate::domain::division::CountyCode;
use crate::domain::message::{Notice, Subject};
use crate::domain::policy::{Rejection, RejectionCode};
use crate::domain::vocabulary::{NoticeKind, NoticeValues};
use crate::store::StoreError;
use crate::store::notices_out::{NoticeRecord, QueuedNotice};

/// How often a caller waiting for a receipt looks at the store.
pub(super) const RECEIPT_POLL: Duration = Duration::from_millis(50);

/// A notice before it is given an agreement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoticeDraft {
    /// What happened.
    pub kind: NoticeKind,
    /// To whom.
    pub subject: Subject,
    /// When: the check, the birth, the confirmation of the pregnancy, the departure.
    pub occurred_on: NaiveDate,
    /// What the notice tells, checked for form ([`NoticeValues::parse`]).
    pub fields: NoticeValues,
    /// A caller-chosen id (UUID v7), so that sending the same notice again adds nothing; a new
    /// one is generated when absent.
    pub message_id: Option<Uuid>,
}

/// Where a notice we sent stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoticeOutcome {
    /// Its id.
    pub message_id: Uuid,
    /// `delivered`, `answered`, `queued` or `rejected`.
    pub state: &'static str,
    /// When the peer received it.
    pub received_at: Option<DateTime<Utc>>,
    /// The peer's feedback deadline, for kinds owing feedback.
    pub feedback_due_at: Option<DateTime<Utc>>,
    /// Why the peer refused it, or why it still waits.
    pub note: Option<String>,
    /// The id was stored before: this is its first receipt.
    pub repeat: bool,
}

impl Node {
    /// The notice id for a caller's idempotency key: HMAC-SHA256 under this node's own key
    /// (migration 0014), shaped as a UUID v7. The same key always gives the same id here; the
    /// id reveals nothing of what the key was made from, to a peer or a log reader.
    pub async fn message_id_for(&self, idempotency_key: &str) -> Result<Uuid, StoreError> {
        use hmac::{Hmac, Mac};
        let key = self.store.message_id_key().await?;
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key)
            .map_err(|_| StoreError::Corrupt("the node's message id key".into()))?;
        mac.update(b"hancha notice id\0");
        mac.update(idempotency_key.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Ok(uuid::Builder::from_custom_bytes(bytes)
            .with_version(uuid::Version::SortRand)
            .into_uuid())
    }

    /// Sends `peer` a notice: refused here, with nothing stored, when the agreement does not
    /// allow its kind or one of its fields in our direction; otherwise stored with its outbox
    /// entry and sent by the delivery worker. Waits up to `wait` for the peer's receipt. A
    /// repeat of the same id and content returns the first receipt; the same id with other
    /// content is `ALREADY_EXISTS`.
    #[instrument(skip_all, fields(peer = %peer, kind = %draft.kind))]
    pub async fn notify(
        &self,
        peer: CountyCode,
        draft: NoticeDraft,
        wait: Duration,
    ) -> Result<NoticeOutcome, SendError> {
        let agreement = self
            .agreements()
            .check_notice_outbound(peer, draft.kind, &draft.fields, Utc::now())
            .map_err(SendError::Refused)?;
        let notice = Notice {
            message_id: draft.message_id.unwrap_or_else(Uuid::now_v7),
            agreement,
            kind: draft.kind,
            subject: draft.subject,
            occurred_on: Some(draft.occurred_on),
            fields: draft.fields,
        };
        let id = notice.message_id;
        let repeat = match self.store.queue_outbound_notice(peer, &notice).await? {
            QueuedNotice::New => {
                info!(message_id = %id, "notice queued");
                self.wake_delivery();
                false
            }
            QueuedNotice::Repeat => true,
            QueuedNotice::IdTaken => {
                return Err(SendError::Refused(Rejection::new(
                    RejectionCode::AlreadyExists,
                    format!(
                        "message id {id} is already used by another message: a resend must repeat the notice exactly (same county, kind, person, date and fields)"
                    ),
                )));
            }
        };
        let record = self.await_notice_receipt(id, wait).await?;
        Ok(NoticeOutcome {
            message_id: id,
            state: record.state(),
            received_at: record.acknowledged_at,
            feedback_due_at: record.feedback_due_at,
            note: match record.state() {
                "queued" => self.store.outbox_entry(id).await?.and_then(|(_, error)| error),
                _ => record.reject_reason.clone(),
            },
            repeat,
        })
    }

    /// The notice as stored once the peer's receipt or refusal is recorded, or when `wait`
    /// runs out.
    async fn await_notice_receipt(&self, id: Uuid, wait: Duration) -> Result<NoticeRecord, StoreError> {
        let deadline = Instant::now() + wait;
        loop {
            let record = self.store.notice(id).await?.ok_or(StoreError::NotFound)?;
            if record.state() != "queued" || Instant::now() >= deadline {
                return Ok(record);
            }
            tokio::time::sleep(RECEIPT_POLL).await;
        }
    }
}
