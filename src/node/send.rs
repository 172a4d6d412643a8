//! Sending our own inquiries: checked against the agreement here first (the sender refuses
//! locally what the agreement does not allow), then written with their outbox entries in one
//! transaction for the delivery worker.

use chrono::Utc;
use tracing::{info, instrument};
use uuid::Uuid;

use super::Node;
use crate::domain::division::CountyCode;
use crate::domain::message::{AgreementRef, Inquiry, Subject};
use crate::domain::policy::Rejection;
use crate::domain::vocabulary::{InquiryKind, MessageKind, Priority};
use crate::store::StoreError;

/// An inquiry before it is given an id and an agreement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InquiryDraft {
    /// What to ask.
    pub kind: InquiryKind,
    /// Urgent for key subjects.
    pub priority: Priority,
    /// About whom.
    pub subject: Subject,
    /// A caller-chosen id (UUID v7), so that resubmitting the same draft adds nothing; a new
    /// one is generated when absent.
    pub message_id: Option<Uuid>,
}

/// Why our inquiries could not be queued.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The agreement with that peer does not allow it.
    #[error("{}", .0.reason)]
    Refused(Rejection),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Node {
    /// Queues inquiries to `peer` for delivery. All are refused if the agreement does not allow
    /// any one of them; nothing is written then. Returns the inquiries as queued (ids and
    /// agreement filled in) and how many were new.
    #[instrument(skip_all, fields(peer = %peer, count = drafts.len()))]
    pub async fn send_inquiries(
        &self,
        peer: CountyCode,
        drafts: Vec<InquiryDraft>,
    ) -> Result<(Vec<Inquiry>, u64), SendError> {
        let now = Utc::now();
        let book = self.agreements();
        let mut inquiries = Vec::with_capacity(drafts.len());
        for draft in drafts {
            let (agreement, _) = book
                .check_outbound(peer, MessageKind::Inquiry(draft.kind), now)
                .map_err(SendError::Refused)?;
            inquiries.push(Inquiry {
                message_id: draft.message_id.unwrap_or_else(Uuid::now_v7),
                agreement: AgreementRef {
                    id: agreement.id().to_string(),
                    hash: agreement.canonical_hash().as_str().to_string(),
                },
                kind: draft.kind,
                priority: draft.priority,
                subject: draft.subject,
            });
        }
        let new = self
            .store
            .queue_outbound_inquiries(peer.as_str(), &inquiries)
            .await?;
        info!(new, "inquiries queued");
        self.wake_delivery();
        Ok((inquiries, new))
    }
}
