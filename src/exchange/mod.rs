//! The peer exchange edge: the gRPC service other county nodes call (`hancha.exchange.v1`), and
//! the conversions and error mapping around it. Handlers are thin: identify the peer from its
//! verified certificate, convert, call the [`Node`](crate::node::Node), convert back.

pub mod convert;
pub mod reconcile;
pub mod server;
pub mod status;

pub use server::ExchangeService;
