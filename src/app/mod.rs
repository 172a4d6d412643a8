//! The application's wiring (`hancha serve`): configuration in, a running node out — its
//! database, agreements, listeners (peer exchange, operator API, metrics over HTTP), peer links and supervised
//! workers, and graceful shutdown. Everything below it (node, workers, edges) is wired here and
//! nowhere else.

pub mod health;
pub mod http;
mod serve;
pub mod supervise;
mod tls_reload;

pub use serve::{RunningNode, load_agreements, serve, start};
