//! The reconciliation protocol on the wire (`Exchange.Reconcile`): the caller streams coded
//! symbols of its set until we have decoded the difference, both sides name what they hold of
//! it, we commit our part, then the caller commits its own.
//!
//! ```text
//! caller (initiator)                         peer (responder)
//! begin {run, agreement, set, size}   ─►     checks the agreement, loads its set
//!                                     ◄─     ready {size}
//! symbols 0..16                       ─►     decodes
//!                                     ◄─     more {received}
//! symbols 16..34 …                    ─►     … decoded
//!   (or: every element, when symbols would cost more)
//!                                     ◄─     decoded {caller_only, detail} (in parts)
//! detail (in parts)                   ─►     commits its repairs and its run record
//!                                     ◄─     committed
//! commits its repairs and its run record
//! ```
//!
//! Until `committed`, neither side has changed anything; each side's part is one transaction, so
//! an interrupted run leaves no partial repair on either side (at most the peer's whole part, if
//! the stream breaks between the two commits), and the next run starts again from the sets.
//!
//! Here: the called side of the protocol ([`respond`]), generic over where the set comes from so
//! that `hancha bench reconcile` drives the same code over an in-memory set; our node's side of
//! it ([`open`]); and the conversions both ends share. The calling side runs on the node
//! (`node::reconcile::initiate`) over the peer client ([`crate::peer::reconcile`]).

mod responder;
mod session;

use std::str::FromStr;

use uuid::Uuid;

pub use responder::{ResponderSession, respond};
pub use session::{begin_from_wire, open};

pub use crate::domain::reconcile::protocol::Responded;

use crate::domain::division::CountyCode;
use crate::domain::reconcile::{DifferenceDetail, MessageRef, MessageType, ReconcileSet};
use crate::domain::riblt::Element;
use crate::proto::exchange as pb;

/// Message references per detail part (≈ 70 bytes each: well under a megabyte).
const REFS_PER_PART: usize = 12_000;

/// Elements or tags per part (32 bytes each: one megabyte).
const ELEMENTS_PER_PART: usize = 32_768;

/// Bytes a message takes on the wire: its encoding plus gRPC's 5-byte frame header.
pub(crate) fn wire_bytes(message: &impl prost::Message) -> u64 {
    message.encoded_len() as u64 + 5
}

/// The set's wire value.
pub fn set_to_wire(set: ReconcileSet) -> pb::ReconcileSet {
    match set {
        ReconcileSet::Messages => pb::ReconcileSet::Messages,
        ReconcileSet::SharedPeople => pb::ReconcileSet::SharedPeople,
    }
}

/// The set a wire value names, if any.
pub fn set_from_wire(value: i32) -> Option<ReconcileSet> {
    match pb::ReconcileSet::try_from(value).ok()? {
        pb::ReconcileSet::Messages => Some(ReconcileSet::Messages),
        pb::ReconcileSet::SharedPeople => Some(ReconcileSet::SharedPeople),
        pb::ReconcileSet::Unspecified => None,
    }
}

/// Concatenated 32-byte elements.
pub(crate) fn elements_to_bytes(elements: &[Element]) -> Vec<u8> {
    elements.iter().flatten().copied().collect()
}

/// Splits concatenated 32-byte elements.
pub fn elements_from_bytes(bytes: &[u8], what: &str) -> Result<Vec<Element>, String> {
    if bytes.len() % 32 != 0 {
        return Err(format!(
            "{what}: {} bytes is not a whole number of 32-byte elements",
            bytes.len()
        ));
    }
    Ok(bytes
        .chunks_exact(32)
        .map(|chunk| chunk.try_into().expect("chunks of 32"))
        .collect())
}

/// A detail in wire parts, the last one marked complete (always at least one part).
pub(crate) fn detail_parts(detail: &DifferenceDetail) -> Vec<pb::DifferenceDetail> {
    let mut parts: Vec<pb::DifferenceDetail> = Vec::new();
    for chunk in detail.messages.chunks(REFS_PER_PART) {
        parts.push(pb::DifferenceDetail {
            messages: chunk.iter().map(message_ref_to_wire).collect(),
            ..Default::default()
        });
    }
    for chunk in detail.person_tags.chunks(ELEMENTS_PER_PART) {
        parts.push(pb::DifferenceDetail {
            person_tags: chunk.iter().map(|tag| tag.to_vec()).collect(),
            ..Default::default()
        });
    }
    if parts.is_empty() {
        parts.push(pb::DifferenceDetail::default());
    }
    parts.last_mut().expect("one part at least").complete = true;
    parts
}

/// Adds one wire part to a detail; returns whether it was the last.
pub fn add_detail_part(detail: &mut DifferenceDetail, part: pb::DifferenceDetail) -> Result<bool, String> {
    for (index, wire) in part.messages.iter().enumerate() {
        detail.messages.push(
            message_ref_from_wire(wire).map_err(|problem| format!("detail.messages[{index}]: {problem}"))?,
        );
    }
    for (index, tag) in part.person_tags.iter().enumerate() {
        let tag: [u8; 32] = tag.as_slice().try_into().map_err(|_| {
            format!(
                "detail.person_tags[{index}]: a tag is 32 bytes, found {}",
                tag.len()
            )
        })?;
        detail.person_tags.push(tag);
    }
    Ok(part.complete)
}

fn message_ref_to_wire(message: &MessageRef) -> pb::MessageRef {
    let message_type = match message.message_type {
        MessageType::Inquiry => pb::MessageType::Inquiry,
        MessageType::Confirmation => pb::MessageType::Confirmation,
        MessageType::Notice => pb::MessageType::Notice,
        MessageType::Feedback => pb::MessageType::Feedback,
    };
    pb::MessageRef {
        r#type: message_type as i32,
        message_id: message.message_id.to_string(),
        author_county: message.author.to_string(),
    }
}

fn message_ref_from_wire(wire: &pb::MessageRef) -> Result<MessageRef, String> {
    let message_type = match pb::MessageType::try_from(wire.r#type) {
        Ok(pb::MessageType::Inquiry) => MessageType::Inquiry,
        Ok(pb::MessageType::Confirmation) => MessageType::Confirmation,
        Ok(pb::MessageType::Notice) => MessageType::Notice,
        Ok(pb::MessageType::Feedback) => MessageType::Feedback,
        _ => return Err("type: must be inquiry, confirmation, notice or feedback".into()),
    };
    let message_id = Uuid::from_str(&wire.message_id).map_err(|_| "message_id: not a UUID".to_string())?;
    let author = CountyCode::parse(&wire.author_county).map_err(|error| format!("author_county: {error}"))?;
    Ok(MessageRef {
        message_type,
        message_id,
        author,
    })
}
