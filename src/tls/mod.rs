//! Mutual TLS between county nodes: who a peer is (from its verified certificate), the rustls
//! configurations that enforce it, the tonic transport seams, and development certificates.
//!
//! # Layout
//!
//! - [`identity`]: the county a certificate names ([`county_from_certificate`], [`County`]), and
//!   the operator (with its township, if any) an operator certificate names
//!   ([`operator_from_certificate`]).
//! - [`credentials`]: this node's certificate and key ([`NodeIdentity`]) and the CAs it trusts
//!   ([`TrustAnchors`]), loaded from PEM.
//! - [`config`]: [`server_config`] and [`client_config`] — TLS 1.3 only, client certificates
//!   required, the server's county checked by the client.
//! - `verify` (private): the rustls verifiers behind those configurations.
//! - [`transport`]: [`tls_incoming`] for `Server::serve_with_incoming_shutdown`, [`connect`] /
//!   [`connect_lazy`] for client channels ([`connect_watched`] also learns why a server refused
//!   our certificate), [`peer_county`] for handlers.
//! - [`signing`]: signatures by a county's key over agreements, audit checkpoints and resume
//!   statements ([`signing::sign`], [`signing::verify`]), with a domain-separation prefix per
//!   purpose: the one signing path for all evidence.
//! - [`in_force`]: the key that signs and the anchors that check, fixed or as the live material
//!   holds them now ([`CountyKey`], [`AnchorsInForce`]).
//! - [`live`]: the material in force ([`LiveTls`]): reloaded from its files while the node
//!   runs, read by every handshake, with the live connections it closes when their certificate
//!   is revoked, and the CRL policy.
//! - [`dev`]: development and test certificates minted with rcgen. Never for production.

pub mod config;
pub mod credentials;
pub mod dev;
pub mod identity;
pub mod in_force;
pub mod live;
pub mod signing;
pub mod transport;
mod verify;

pub use config::{
    ConfigError, OperatorClientError, client_config, operator_client_config, operator_server_config,
    server_config,
};
pub use credentials::{LoadError, NodeIdentity, TrustAnchors};
pub use identity::{
    COUNTY_URI_PREFIX, County, IdentityError, OperatorIdentity, TOWNSHIP_URI_PREFIX, certificate_not_after,
    county_from_certificate, operator_from_certificate,
};
pub use in_force::{AnchorsInForce, CountyKey};
pub use live::{ClosedConnection, LiveTls, MaterialError, ReloadOutcome, Revocation, Role, TlsSources};
pub use transport::{
    ChannelTimings, ConnectError, DEFAULT_HANDSHAKE_TIMEOUT, Refusal, RefusalWatch, TlsIncoming, connect,
    connect_lazy, connect_lazy_tracked, connect_watched, peer_county, probe_refusal, reconnector_tracked,
    tls_incoming,
};
