//! The peer exchange edge: the gRPC service other county nodes call (`hancha.exchange.v1`), and
//! the conversions around it; refusals become statuses in [`crate::status`]. Handlers are thin:
//! identify the peer from its verified certificate, convert, hand the message to the node
//! behind [`Intake`] (which the node implements, so this edge never names it), convert back.

pub mod audit_wire;
pub mod convert;
pub mod intake;
mod notice_batches;
mod notice_wire;
pub mod reconcile;
pub mod server;

pub use intake::{Intake, RunSession};
pub use server::ExchangeService;
