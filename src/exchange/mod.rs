//! The peer exchange edge: the gRPC service other county nodes call (`hancha.exchange.v1`), and
//! the conversions around it; refusals become statuses in [`crate::status`]. Handlers are thin: identify the peer from its
//! verified certificate, convert, call the [`Node`](crate::node::Node), convert back.

pub mod convert;
pub mod intake;
pub mod reconcile;
pub mod server;
/// The status mapping lived here before it served the operator API too; reconciliation's wire
/// code still names it by this path.
pub use crate::status;

pub use intake::{Intake, RunSession};
pub use server::ExchangeService;
