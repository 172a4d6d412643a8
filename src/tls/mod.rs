//! Mutual TLS between county nodes: who a peer is (from its verified certificate), the rustls
//! configurations that enforce it, the tonic transport seams, and development certificates.
//!
//! # Layout
//!
//! - [`identity`]: the county a certificate names ([`county_from_certificate`], [`County`]).
//! - [`credentials`]: this node's certificate and key ([`NodeIdentity`]) and the CAs it trusts
//!   ([`TrustAnchors`]), loaded from PEM.
//! - [`config`]: [`server_config`] and [`client_config`] — TLS 1.3 only, client certificates
//!   required, the server's county checked by the client.
//! - `verify` (private): the rustls verifiers behind those configurations.
//! - [`transport`]: [`tls_incoming`] for `Server::serve_with_incoming_shutdown`, [`connect`] /
//!   [`connect_lazy`] for client channels, [`peer_county`] for handlers.
//! - [`dev`]: development and test certificates minted with rcgen. Never for production.

pub mod config;
pub mod credentials;
pub mod dev;
pub mod identity;
pub mod transport;
mod verify;

pub use config::{
    ConfigError, OperatorClientError, client_config, operator_client_config, operator_server_config,
    server_config,
};
pub use credentials::{LoadError, NodeIdentity, TrustAnchors};
pub use identity::{COUNTY_URI_PREFIX, County, IdentityError, county_from_certificate};
pub use transport::{
    ChannelTimings, ConnectError, DEFAULT_HANDSHAKE_TIMEOUT, TlsIncoming, connect, connect_lazy, peer_county,
    tls_incoming,
};
