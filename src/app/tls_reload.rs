//! Reloading the node's TLS material while it runs: on SIGHUP (`hancha serve` passes it on) and
//! when the files change (their content is read every `tls.watch_interval`, 5 s by default: a
//! hash of a few kilobytes, portable, and blind to a mere `touch`). What a reload does to the
//! material and to live connections is `crate::tls::live`'s business; here its outcome is
//! logged, counted, audited and shown on `/healthz` and `/readyz`.
//!
//! A failed reload keeps the previous material (which still works) and does not make the node
//! unready: it sets `hancha_tls_last_reload_success` to 0, counts
//! `hancha_tls_reload_failures_total`, logs why (files and causes, never key material) and adds
//! a `warning: tls: …` line to `/healthz` and `/readyz` until a reload succeeds.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;
use tracing::{info, warn};

use super::health::Health;
use crate::node::Node;
use crate::store::audit::AuditEntry;
use crate::tls::{ClosedConnection, LiveTls, ReloadOutcome, Role, certificate_not_after};
use crate::web::{WebCertificate, WebReload};

/// Applies reloads of one node's TLS material, one at a time.
#[derive(Debug)]
pub struct TlsReloader {
    live: Arc<LiveTls>,
    /// The web listener's own certificate (`[web.tls]`), when it has one.
    web: Option<Arc<WebCertificate>>,
    node: Arc<Node>,
    health: Arc<Health>,
    /// A SIGHUP and the file watch never reload at once.
    one_at_a_time: tokio::sync::Mutex<()>,
}

impl TlsReloader {
    /// Reports the material loaded at start-up.
    pub fn new(
        live: Arc<LiveTls>,
        web: Option<Arc<WebCertificate>>,
        node: Arc<Node>,
        health: Arc<Health>,
    ) -> Arc<TlsReloader> {
        let reloader = Arc::new(TlsReloader {
            live,
            web,
            node,
            health,
            one_at_a_time: tokio::sync::Mutex::new(()),
        });
        reloader.report_loaded(false);
        reloader
    }

    /// Reads the files again (`force`: even if unchanged or failed before, as on SIGHUP) and
    /// reports what came of it.
    pub async fn reload(&self, force: bool) -> ReloadOutcome {
        let _one = self.one_at_a_time.lock().await;
        let live = Arc::clone(&self.live);
        let outcome = tokio::task::spawn_blocking(move || live.reload(force))
            .await
            .unwrap_or_else(|error| ReloadOutcome::Failed {
                why: format!("the reload task failed: {error}"),
            });
        match &outcome {
            ReloadOutcome::Unchanged | ReloadOutcome::StillFailing => {}
            ReloadOutcome::Reloaded { closed } => {
                self.report_loaded(true);
                for connection in closed {
                    self.report_closed(connection).await;
                }
            }
            ReloadOutcome::Failed { why } => {
                self.node.metrics().tls().failed();
                let loaded_at = self.live.current().loaded_at();
                warn!(why = %why, %loaded_at, "tls reload failed: still serving with the previous certificate, key, anchors and CRLs");
                self.health.warn(
                    "tls",
                    Some(format!(
                        "the reload at {} failed ({why}); still serving with the material loaded at {loaded_at}",
                        Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
                    )),
                );
            }
        }
        self.check_crl_freshness();
        self.reload_web(force).await;
        outcome
    }

    /// Reads the web listener's certificate again (a failure keeps the one in force, warns on
    /// `/healthz` and is logged).
    async fn reload_web(&self, force: bool) {
        let Some(web) = &self.web else {
            return;
        };
        let web = Arc::clone(web);
        let outcome = tokio::task::spawn_blocking(move || web.reload(force))
            .await
            .unwrap_or_else(|error| WebReload::Failed(format!("the reload task failed: {error}")));
        match outcome {
            WebReload::Unchanged => {}
            WebReload::Reloaded => {
                info!("web listener certificate reloaded: new connections get it");
                self.health.warn("web tls", None);
            }
            WebReload::Failed(why) => {
                warn!(why = %why, "web listener certificate reload failed: still serving the previous one");
                self.health.warn(
                    "web tls",
                    Some(format!(
                        "the reload at {} failed ({why}); still serving the previous web certificate",
                        Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
                    )),
                );
            }
        }
    }

    /// Reloads when the files change, every `interval`, until shutdown (never if `interval` is
    /// zero: SIGHUP only).
    pub async fn watch(self: Arc<Self>, interval: Duration, mut shutdown: watch::Receiver<bool>) {
        if interval.is_zero() {
            let _ = shutdown.wait_for(|stop| *stop).await;
            return;
        }
        while !*shutdown.borrow() {
            tokio::select! {
                () = tokio::time::sleep(interval) => { self.reload(false).await; }
                changed = shutdown.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
            }
        }
    }

    fn report_loaded(&self, reloaded: bool) {
        let material = self.live.current();
        let crls: Vec<(String, Option<i64>)> = material
            .crls()
            .iter()
            .map(|crl| (crl.issuer.clone(), crl.next_update))
            .collect();
        self.node
            .metrics()
            .tls()
            .loaded(material.loaded_at().timestamp(), &crls, reloaded);
        let identity = material.identity();
        if let Some(not_after) = identity
            .cert_chain()
            .first()
            .and_then(|c| certificate_not_after(c))
        {
            self.node
                .metrics()
                .certificate_expiry("own", identity.county().as_str(), not_after);
        }
        self.health.warn("tls", None);
        if reloaded {
            info!(
                county = %identity.county(),
                crls = crls.len(),
                "tls material reloaded: new handshakes use the new certificate, key, anchors and CRLs"
            );
        }
    }

    /// Warns on `/healthz` while a CRL is past `nextUpdate` and the grace (its CA's
    /// certificates are refused until a fresh one is loaded).
    fn check_crl_freshness(&self) {
        let material = self.live.current();
        let stale: Vec<String> = material
            .stale_crls(Utc::now().timestamp())
            .iter()
            .map(|crl| crl.issuer.clone())
            .collect();
        let warning = (!stale.is_empty()).then(|| {
            format!(
                "the CRL of {} is past its nextUpdate and tls.crl_grace: certificates of that CA are refused until a fresh CRL is loaded",
                stale.join(", ")
            )
        });
        self.health.warn("crl", warning);
    }

    async fn report_closed(&self, connection: &ClosedConnection) {
        let listener = connection.role.label();
        self.node.metrics().tls().connection_closed(listener);
        let county = connection.county.map(|c| c.to_string());
        warn!(
            listener,
            county = county.as_deref().unwrap_or("-"),
            serial = %connection.serial,
            remote = ?connection.remote,
            "closed a live connection: its certificate is now revoked"
        );
        let reason = format!(
            "UNAUTHENTICATED: certificate revoked: open {listener} connection closed (certificate serial {}, issuer {})",
            connection.serial, connection.issuer
        );
        // the county as the certificate names it, known to the division table or not
        let refused = AuditEntry {
            peer_county: county,
            ..AuditEntry::inbound_rejected(None, reason)
        };
        let entry = match connection.role {
            Role::PeerClient | Role::OperatorClient => refused,
            // a connection we dialled: the same refusal, on our side of it
            Role::Server(_) => AuditEntry {
                direction: "outbound".into(),
                ..refused
            },
        };
        if let Err(error) = self.node.store().append_audit(&entry).await {
            warn!(%error, "cannot audit a connection closed for a revoked certificate");
        }
    }
}
