//! Receiving from peers: inquiries they ask us ([`inquiries`]) and confirmations they send for
//! ours ([`confirmations`]). Each batch commits in one transaction, together with its audit
//! records, before any receipt goes out.

mod confirmations;
mod inquiries;

pub use confirmations::ConfirmationReceipt;
pub(crate) use confirmations::{
    ReceiptTimes, accept_confirmations_locked_in, confirmation_audit, insert_inbound_confirmations_in,
    lock_outbound_inquiries_in,
};
pub use inquiries::{InboundInquiry, InboundReceipt};
pub(crate) use inquiries::{
    InlineAnswers, Written, accept_inquiries_in, add_daily_volume_in, inquiry_audit,
    insert_inbound_inquiries_in,
};
