//! 函查 hancha: the gateway through which county governments exchange inquiries and status
//! confirmations about people who live in one county but are registered in another.
//!
//! # Layout
//!
//! - [`domain`]: pure rules and validated types (resident ID numbers, division codes, the message
//!   vocabulary, agreements and the access policy; reconciliation's rules, its rateless IBLT
//!   coding and schedules). No I/O, no gRPC, no SQL.
//! - [`node`]: what a county's gateway does with messages (receive, send, answer, reconcile), and
//!   the wiring of a running node ([`node::serve`]).
//! - [`exchange`]: the gRPC edge peers call (`hancha.exchange.v1`): wire ⇄ domain, and the
//!   reconciliation protocol on the wire.
//! - [`peer`]: the peer client, how the node reaches a peer county: domain in, domain out.
//! - [`workers`]: delivery (outbox → peers), auto-answer, deadlines and the reconciliation
//!   schedule, each a `run_once` step.
//! - [`store`]: every SQL statement the node runs, and the migrations applied at start-up.
//! - [`tls`]: identities from verified certificates, mutual-TLS configurations, development
//!   certificates.
//! - [`config`]: the node's TOML configuration with `HANCHA_…` overrides.
//! - [`csv_input`]: CSV files as county offices produce them (UTF-8 or GBK), read record by
//!   record: for sweeps and registry imports, whoever sends the file.
//! - [`cli`]: the `hancha` command line, one file per subcommand.
//! - [`devdb`]: the throwaway PostgreSQL that tests, the demo and benchmarks start for themselves.
//! - [`bench`]: `hancha bench`, benchmarks that start the nodes and databases they measure.
//! - [`demo`]: `hancha demo`, three county nodes in one process playing the domain's story.
//! - [`operator`]: the gRPC edge operators call (`hancha.operator.v1`).
//! - [`status`]: the one mapping of refusals to gRPC statuses, for both edges.
//! - [`proto`]: the generated gRPC code; nothing outside the edges uses it.
#![forbid(unsafe_code)]

pub mod app;
pub mod bench;
pub mod cli;
pub mod config;
pub mod csv_input;
pub mod demo;
pub mod devdb;
pub mod domain;
pub mod exchange;
pub mod node;
pub mod operator;
pub mod peer;
pub mod present;
pub mod proto;
pub mod status;
pub mod store;
pub mod tls;
pub mod workers;
