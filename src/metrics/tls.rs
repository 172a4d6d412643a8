//! Why a TLS handshake was refused, as a bounded label: the TLS library's error text names the
//! cause in many words; a dashboard needs a handful of them.

use std::io;

/// The reason label of `hancha_tls_handshakes_refused_total` for a failed handshake:
/// `certificate_revoked`, `crl_expired` (the issuer's CRL is past `nextUpdate` and the grace),
/// `certificate_expired`, `unknown_ca`, `no_certificate`, `protocol_version` (TLS 1.2 or older),
/// `not_tls` (plaintext on the port), `bad_certificate` (any other certificate problem, a
/// missing or extra county among them) or `other`.
pub fn handshake_refusal_reason(error: &io::Error) -> &'static str {
    let text = error.to_string().to_ascii_lowercase();
    let has = |needle: &str| text.contains(needle);
    if has("revoked") {
        "certificate_revoked"
    } else if has("revocationlist") || has("revocation list") {
        "crl_expired"
    } else if has("expired") {
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

/// The metrics of TLS material reloads and of the connections they close.
#[derive(Clone, Debug)]
pub struct TlsMetrics {
    /// Reload attempts that read new material (`reloaded`) or failed (`failed`).
    reloads: prometheus::IntCounterVec,
    /// Failed reloads alone, for a simple alert.
    failures: prometheus::IntCounter,
    /// 1 when the material in force is what the files hold now, 0 after a failed reload.
    last_success: prometheus::IntGauge,
    /// When material was last loaded successfully.
    loaded_at: prometheus::Gauge,
    /// `nextUpdate` of each CRL in force, by issuer.
    crl_next_update: prometheus::GaugeVec,
    /// Connections closed because their certificate is now revoked.
    closed: prometheus::IntCounterVec,
}

impl TlsMetrics {
    pub(super) fn register(registry: &prometheus::Registry) -> TlsMetrics {
        let failures = prometheus::IntCounter::new(
            "hancha_tls_reload_failures_total",
            "TLS material reloads that failed (the previous material stays in force).",
        )
        .expect("valid metric");
        registry
            .register(Box::new(failures.clone()))
            .expect("registered once");
        let loaded_at = prometheus::Gauge::new(
            "hancha_tls_last_reload_success_timestamp_seconds",
            "When the TLS material in force was loaded, in Unix seconds.",
        )
        .expect("valid metric");
        registry
            .register(Box::new(loaded_at.clone()))
            .expect("registered once");
        TlsMetrics {
            reloads: super::counter_vec(
                registry,
                "hancha_tls_reloads_total",
                "TLS material reload attempts that found changed files, by outcome (reloaded, failed).",
                &["outcome"],
            ),
            failures,
            last_success: super::int_gauge(
                registry,
                "hancha_tls_last_reload_success",
                "1 when the last TLS material reload succeeded (or none was tried), 0 when it failed and the previous material is still in force.",
            ),
            loaded_at,
            crl_next_update: super::gauge_vec(
                registry,
                "hancha_tls_crl_next_update_timestamp_seconds",
                "nextUpdate of each certificate revocation list in force, by issuer, in Unix seconds.",
                &["issuer"],
            ),
            closed: super::counter_vec(
                registry,
                "hancha_tls_connections_closed_total",
                "Live connections closed because the certificate they were made with is now revoked, by listener (peer, operator, outbound).",
                &["listener"],
            ),
        }
    }

    /// New material is in force, loaded at `loaded_at` (Unix seconds), with these CRLs
    /// (`issuer`, `nextUpdate`); `reloaded` is false for the first load at start-up.
    pub fn loaded(&self, loaded_at: i64, crls: &[(String, Option<i64>)], reloaded: bool) {
        if reloaded {
            self.reloads.with_label_values(&["reloaded"]).inc();
        }
        self.last_success.set(1);
        self.loaded_at.set(loaded_at as f64);
        self.crl_next_update.reset();
        for (issuer, next_update) in crls {
            if let Some(next_update) = next_update {
                self.crl_next_update
                    .with_label_values(&[issuer.as_str()])
                    .set(*next_update as f64);
            }
        }
    }

    /// A reload failed; the previous material stays in force.
    pub fn failed(&self) {
        self.reloads.with_label_values(&["failed"]).inc();
        self.failures.inc();
        self.last_success.set(0);
    }

    /// A live connection on `listener` was closed: its certificate is now revoked.
    pub fn connection_closed(&self, listener: &str) {
        self.closed.with_label_values(&[listener]).inc();
    }
}
