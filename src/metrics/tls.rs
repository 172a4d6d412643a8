//! Why a TLS handshake was refused, as a bounded label: the TLS library's error text names the
//! cause in many words; a dashboard needs a handful of them.

use std::io;

/// The reason label of `hancha_tls_handshakes_refused_total` for a failed handshake:
/// `certificate_expired`, `unknown_ca`, `no_certificate`, `protocol_version` (TLS 1.2 or older),
/// `not_tls` (plaintext on the port), `bad_certificate` (any other certificate problem, a
/// missing or extra county among them) or `other`.
pub fn handshake_refusal_reason(error: &io::Error) -> &'static str {
    let text = error.to_string().to_ascii_lowercase();
    let has = |needle: &str| text.contains(needle);
    if has("expired") {
        "certificate_expired"
    } else if has("unknownissuer") || has("unknown issuer") || has("unknown ca") || has("unknownca") {
        "unknown_ca"
    } else if has("no certificates") || has("nocertificates") {
        "no_certificate"
    } else if has("protocolversion") || has("protocol version") || has("incompatible") {
        "protocol_version"
    } else if has("corrupt message") || has("invalidcontenttype") || has("invalid content type") {
        "not_tls"
    } else if has("certificate") {
        "bad_certificate"
    } else {
        "other"
    }
}
