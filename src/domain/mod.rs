//! The domain: validated types and pure rules. Nothing here performs I/O.

pub mod agreement;
pub mod audit_chain;
pub mod audit_verify;
pub mod delivery;
pub mod division;
pub mod event;
pub mod feedback;
pub mod message;
pub mod notice_effect;
pub mod peer_status;
pub mod person;
pub mod person_row;
pub mod policy;
pub mod privacy;
pub mod reconcile;
pub mod reminder;
pub mod report;
pub mod resident_id;
pub mod riblt;
pub mod schedule;
pub mod time;
pub mod vocabulary;
pub mod webhook;
