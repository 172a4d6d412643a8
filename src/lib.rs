//! 函查 hancha: the gateway through which county governments exchange inquiries and status
//! confirmations about people who live in one county but are registered in another.
//!
//! # Layout
//!
//! Dependencies point down only — domain ← store ← (peer client, exchange server) ← node ←
//! (workers, operator) ← app wiring ← cli — and `tests/layering.rs` fails when a module names a
//! layer above it.
//!
//! - [`domain`]: pure rules and validated types (resident ID numbers, division codes, the message
//!   vocabulary, agreements and the one access policy — for peers, and for operator principals
//!   with their township scope — delivery outcomes, China time, what a received notice changes
//!   in the registry; reconciliation's rules, its rateless IBLT coding and schedules). No I/O, no gRPC, no SQL.
//! - [`store`]: every SQL statement the node runs, rows as domain types, and the migrations
//!   applied at start-up; with several database addresses, the choice of the primary among them
//!   and the timeline fence (`store::failover`).
//! - [`exchange`]: the gRPC edge peers call (`hancha.exchange.v1`): wire ⇄ domain, one batch
//!   handler, and the reconciliation protocol on the wire. It reaches the node through
//!   [`exchange::Intake`], which the node implements.
//! - [`peer`]: the peer client, the one seam through which the node calls a peer county
//!   ([`peer::PeerLink`]): domain in, domain verdicts out.
//! - [`status`]: the one mapping of refusals to gRPC statuses, for both edges.
//! - [`node`]: what a county's gateway does with messages (receive through one intake, send,
//!   answer, reconcile), in domain types only.
//! - [`metrics`]: every metric's name, labels and help in one place, one recording function per
//!   event (the node, workers and wiring call them; the domain never does), and the
//!   database-derived gauges filled at scrape time.
//! - [`workers`]: delivery (outbox → peers), auto-answer, deadlines, the reconciliation
//!   schedule and webhooks (events → county systems' endpoints, over the one HTTP client in
//!   `workers::webhooks::client`), following the database's primary, each a `run_once` step.
//! - [`operator`]: the gRPC edge operators call (`hancha.operator.v1`): every call admitted
//!   through one gate (principal from the certificate, `authorize`, the lookup limit, the audit
//!   of refusals and reads).
//! - [`app`]: the wiring of a running node (`hancha serve`): listeners, peer links, workers.
//! - [`tls`]: identities from verified certificates, mutual-TLS configurations, development
//!   certificates.
//! - [`config`]: the node's TOML configuration with `HANCHA_…` overrides; every timing in
//!   `[limits]`.
//! - [`csv_input`]: CSV files as county offices produce them (UTF-8 or GBK), read record by
//!   record: for sweeps and registry imports, whoever sends the file.
//! - [`present`]: how the CLI and the demo show things to people.
//! - [`cli`]: the `hancha` command line, one file per subcommand.
//! - [`devdb`]: the throwaway PostgreSQL (and fresh databases) that tests, the demo and
//!   benchmarks start for themselves.
//! - [`bench`]: `hancha bench`, benchmarks that start the nodes and databases they measure.
//! - [`demo`]: `hancha demo`, three county nodes in one process playing the domain's story.
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
pub mod metrics;
pub mod node;
pub mod operator;
pub mod peer;
pub mod present;
pub mod proto;
pub mod rpc_trace;
pub mod status;
pub mod store;
pub mod tls;
pub mod web;
pub mod workers;
