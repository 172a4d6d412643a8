//! The seams between mutual TLS and tonic: an incoming stream of verified connections for the
//! server, a connector for client channels, and [`peer_county`] for handlers.
//!
//! # Layout
//!
//! - `accept`: the accepting side. [`tls_incoming`] / [`TlsIncoming`] run the listener and the
//!   handshakes for `Server::serve_with_incoming_shutdown`, telling a [`HandshakeFailureHook`]
//!   about refused clients; [`peer_county`] reads the verified client certificate in handlers.
//! - `connect`: the connecting side. [`connect`], [`connect_lazy`] and [`connect_lazy_tracked`]
//!   dial a peer with the node's [`ChannelTimings`]; [`connect_watched`] and [`probe_refusal`]
//!   learn why a server refused our certificate ([`Refusal`], [`RefusalWatch`]).
//! - here: what both sides share, the judgement of which failed connections are a peer that
//!   merely left.

mod accept;
mod connect;

use std::io;

pub use accept::{DEFAULT_HANDSHAKE_TIMEOUT, HandshakeFailureHook, TlsIncoming, peer_county, tls_incoming};
pub use connect::{
    ChannelTimings, ConnectError, Refusal, RefusalWatch, Watched, connect, connect_lazy,
    connect_lazy_tracked, connect_watched, probe_refusal, reconnector_tracked,
};

/// Port scanners and load-balancer probes connect and leave; that is not worth a warning.
/// Anything else (unknown CA, expired certificate, TLS 1.2, no certificate, plaintext) is a peer
/// that tried and failed, which an operator wants to see.
fn is_abandoned(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}
