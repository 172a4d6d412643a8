//! Node configuration: one TOML file per node, every setting overridable by a `HANCHA_…`
//! environment variable. Secrets (the database password, key files' contents) are never printed:
//! `Debug` and [`NodeConfig::describe`] redact them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::domain::division::CountyCode;

mod environment;
mod limits;

pub use environment::ENVIRONMENT_OVERRIDES;
use environment::apply_environment;
pub use limits::{Limits, WORKER_FIRST_RESTART, WORKER_MAX_RESTART, WORKER_STABLE_AFTER};
use limits::{check_durations, translate_deprecated_limits};

/// Everything a node needs to run. See `examples/node-430703.toml` for a documented example.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// The county this node speaks for; must match the county in its certificate.
    pub county: CountyCode,
    /// Where the peer (exchange) listener binds, e.g. `0.0.0.0:7443`; port 0 picks a free port.
    pub listen: SocketAddr,
    /// PostgreSQL URL of this county's database (may carry a password: never printed). Empty
    /// when `database_urls` is set instead.
    #[serde(default)]
    pub database_url: String,
    /// Several PostgreSQL URLs of the same database (a primary and its standbys): the node
    /// writes to the one that is a primary and follows a promotion (see
    /// [`crate::store::failover`]). Set either this or `database_url`.
    #[serde(default)]
    pub database_urls: Vec<String>,
    /// Maximum database connections this node opens.
    #[serde(default = "default_pool_size")]
    pub database_pool_size: u32,
    /// The node's certificate, key and the trust anchors for peers.
    pub tls: TlsFiles,
    /// Directory of agreement documents (`*.toml`) this node holds.
    pub agreements_dir: PathBuf,
    /// Whether an agreement version must be signed by every party (signatures verified against
    /// `tls.trust_anchors`) to be applied, loaded and used. On unless turned off.
    #[serde(default = "default_require_signatures")]
    pub require_signatures: bool,
    /// The operator API listener (CLI, township systems).
    #[serde(default)]
    pub operator: OperatorListener,
    /// The metrics listener (Prometheus, plain HTTP).
    #[serde(default)]
    pub metrics: MetricsListener,
    /// The web listener: the operator API as HTTP/JSON for the county's other systems (off
    /// unless `web.listen` is set).
    #[serde(default)]
    pub web: WebListener,
    /// Peer county code → `host:port` of its exchange listener.
    #[serde(default)]
    pub peers: BTreeMap<String, String>,
    /// Limits and timings; defaults suit a county office.
    #[serde(default)]
    pub limits: Limits,
    /// Reconciliation (对账): per agreement, the shared secret and the schedule.
    #[serde(default)]
    pub reconcile: ReconcileConfig,
    /// What loading found deprecated (old keys, old variables), each naming its replacement,
    /// for `hancha serve` to log at start. Empty for a configuration built in code.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// Reconciliation settings.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReconcileConfig {
    /// Most outflow inquiries one run may open for persons the peer does not know or knows
    /// differently; the rest are reported and asked about in later runs.
    pub max_inquiries_per_run: usize,
    /// Agreement id → its reconciliation settings. An agreement without an entry (or without a
    /// secret) is not reconciled, and the peer's runs for it are refused.
    pub agreements: BTreeMap<String, AgreementReconcile>,
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        ReconcileConfig {
            max_inquiries_per_run: 200,
            agreements: BTreeMap::new(),
        }
    }
}

/// How one agreement is reconciled.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgreementReconcile {
    /// The secret both counties hold for this agreement (at least 32 bytes); elements are
    /// HMAC-SHA256 under it. Never printed. `HANCHA_RECONCILE_SECRET_<ID>` (the agreement id
    /// with `-` written as `_`) overrides it.
    pub secret: Option<String>,
    /// When this node starts a run: cron syntax (minute hour day month weekday) in China
    /// Standard Time. Default: nightly at 02:00.
    #[serde(default = "default_reconcile_schedule")]
    pub schedule: String,
}

impl std::fmt::Debug for AgreementReconcile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgreementReconcile")
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("schedule", &self.schedule)
            .finish()
    }
}

impl std::fmt::Debug for ReconcileConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReconcileConfig")
            .field("max_inquiries_per_run", &self.max_inquiries_per_run)
            .field("agreements", &self.agreements)
            .finish()
    }
}

fn default_require_signatures() -> bool {
    true
}

fn default_reconcile_schedule() -> String {
    "0 2 * * *".to_string()
}

/// Certificate files, PEM.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// This node's certificate chain (URI SAN `urn:hancha:county:<code>`).
    pub certificate: PathBuf,
    /// This node's private key. Only the path is ever shown.
    pub private_key: PathBuf,
    /// CA certificates that peers' certificates must chain to.
    pub trust_anchors: PathBuf,
    /// Certificate revocation lists (PEM or DER files) checked for peers' and operators'
    /// certificates; empty: no revocation checking. The policy is in `crate::tls::live`.
    #[serde(default)]
    pub crls: Vec<PathBuf>,
    /// How long after its `nextUpdate` a CRL is still used; past it, certificates of that CA are
    /// refused until a fresh CRL is loaded. `0s` (the default): from `nextUpdate` on.
    #[serde(default, with = "limits::human_duration")]
    pub crl_grace: std::time::Duration,
    /// How often the files above are read to see whether they changed (content, not mtime);
    /// a change is loaded as on SIGHUP. `0s` turns the watch off (SIGHUP only).
    #[serde(default = "default_tls_watch_interval", with = "limits::human_duration")]
    pub watch_interval: std::time::Duration,
}

fn default_tls_watch_interval() -> std::time::Duration {
    std::time::Duration::from_secs(5)
}

impl TlsFiles {
    /// The three files, with no CRLs and the default watch.
    pub fn new(certificate: PathBuf, private_key: PathBuf, trust_anchors: PathBuf) -> TlsFiles {
        TlsFiles {
            certificate,
            private_key,
            trust_anchors,
            crls: Vec::new(),
            crl_grace: std::time::Duration::ZERO,
            watch_interval: default_tls_watch_interval(),
        }
    }
}

/// Where the operator API listens and who may use it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorListener {
    /// Loopback by default: only this machine's users reach it, without certificates. Any other
    /// address requires `trust_anchors`.
    pub listen: SocketAddr,
    /// The operator CA: when set, clients must present an operator certificate it issued (mutual
    /// TLS 1.3, the node's own certificate as server certificate).
    pub trust_anchors: Option<PathBuf>,
}

impl Default for OperatorListener {
    fn default() -> Self {
        OperatorListener {
            listen: SocketAddr::from(([127, 0, 0, 1], 7530)),
            trust_anchors: None,
        }
    }
}

/// Where `/metrics` is served: plain HTTP on its own listener, never on the peer port.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsListener {
    /// Loopback by default (`127.0.0.1:7540`): a Prometheus on the same machine, or one that
    /// reaches it through the operator's own tunnel or proxy. Port 0 picks a free port.
    pub listen: SocketAddr,
}

impl Default for MetricsListener {
    fn default() -> Self {
        MetricsListener {
            listen: SocketAddr::from(([127, 0, 0, 1], 7540)),
        }
    }
}

/// The web listener (`[web]`): the operator API as HTTP/JSON under `/v1/`, its OpenAPI
/// document at `/openapi.json`. No listener unless `listen` is set.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebListener {
    /// Where to listen, e.g. `127.0.0.1:7550`, or `0.0.0.0:8443` with `[web.tls]`.
    pub listen: Option<SocketAddr>,
    /// Whether every API request needs an API token and every console page a login. Default:
    /// off on a loopback address (a caller without a token or login is the county-wide
    /// loopback principal, as on the loopback operator listener; a reverse proxy in front makes
    /// everyone that), on otherwise; it cannot be turned off off loopback.
    pub require_login: Option<bool>,
    /// The server certificate and key (HTTPS); required when `listen` is not loopback.
    pub tls: Option<WebTls>,
}

impl WebListener {
    /// Whether a request without a token is refused (see [`WebListener::require_login`]).
    pub fn login_required(&self) -> bool {
        match (self.require_login, self.listen) {
            (Some(required), _) => required,
            (None, Some(listen)) => !listen.ip().is_loopback(),
            (None, None) => true,
        }
    }
}

/// The web listener's server certificate (PEM chain) and private key (PEM).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebTls {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (never printed).
    pub key: PathBuf,
}

fn default_pool_size() -> u32 {
    10
}

impl NodeConfig {
    /// Reads the file, applies `HANCHA_…` overrides from the process environment (plus
    /// `HANCHA_PEER_<COUNTY>=host:port` for peers), resolves relative paths against the file's
    /// directory, and validates.
    pub fn load(path: &Path) -> anyhow::Result<NodeConfig> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let environment: Vec<(String, String)> = std::env::vars().collect();
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_toml(&text, &environment, base).with_context(|| format!("in {}", path.display()))
    }

    /// [`NodeConfig::load`] without touching the file system or process environment.
    pub fn from_toml(
        text: &str,
        environment: &[(String, String)],
        base: &Path,
    ) -> anyhow::Result<NodeConfig> {
        let mut document: toml::Table = text.parse().context("not valid TOML")?;
        let mut warnings = Vec::new();
        translate_deprecated_limits(&mut document, &mut warnings)?;
        apply_environment(&mut document, environment, &mut warnings)?;
        check_durations(&document)?;
        let mut config: NodeConfig = document.try_into().context("invalid node configuration")?;
        if let Some(path) = config.operator.trust_anchors.as_mut().filter(|p| p.is_relative()) {
            *path = base.join(&*path);
        }
        if config.metrics.listen == config.listen {
            bail!(
                "metrics.listen {} is the peer listener's address: metrics are served on their own port",
                config.metrics.listen
            );
        }
        if !config.operator.listen.ip().is_loopback() && config.operator.trust_anchors.is_none() {
            bail!(
                "operator.listen {} is not a loopback address: set operator.trust_anchors to the operator CA",
                config.operator.listen
            );
        }
        if let Some(listen) = config.web.listen {
            // port 0 picks a free port at start, so two listeners given port 0 do not clash
            if listen.port() != 0
                && [config.listen, config.metrics.listen, config.operator.listen].contains(&listen)
            {
                bail!(
                    "web.listen {listen} is another listener's address: the web listener needs its own port"
                );
            }
            if !listen.ip().is_loopback() {
                if config.web.tls.is_none() {
                    bail!(
                        "web.listen {listen} is not a loopback address: set [web.tls] cert and key (HTTPS), tokens never travel in clear text"
                    );
                }
                if config.web.require_login == Some(false) {
                    bail!(
                        "web.listen {listen} is not a loopback address: web.require_login cannot be false there"
                    );
                }
            }
        }
        if let Some(tls) = config.web.tls.as_mut() {
            for path in [&mut tls.cert, &mut tls.key] {
                if path.is_relative() {
                    *path = base.join(&*path);
                }
            }
        }
        for path in [
            &mut config.tls.certificate,
            &mut config.tls.private_key,
            &mut config.tls.trust_anchors,
            &mut config.agreements_dir,
        ]
        .into_iter()
        .chain(config.tls.crls.iter_mut())
        {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
        for (county, endpoint) in &config.peers {
            CountyCode::parse(county).map_err(|error| anyhow::anyhow!("peers.{county}: {error}"))?;
            if endpoint.trim().is_empty() {
                bail!("peers.{county}: empty endpoint");
            }
        }
        for (agreement, settings) in &config.reconcile.agreements {
            if let Some(secret) = &settings.secret {
                crate::domain::reconcile::ReconcileKey::new(secret.as_bytes())
                    .map_err(|error| anyhow::anyhow!("reconcile.agreements.{agreement}.secret: {error}"))?;
            }
            crate::domain::schedule::Schedule::parse(&settings.schedule)
                .map_err(|error| anyhow::anyhow!("reconcile.agreements.{agreement}.schedule: {error}"))?;
        }
        match (
            config.database_url.trim().is_empty(),
            config.database_urls.is_empty(),
        ) {
            (true, true) => {
                bail!("database_url (or database_urls, for a primary and its standbys) is not set")
            }
            (false, false) => bail!(
                "both database_url and database_urls are set: set one (database_urls lists every address, the primary's too)"
            ),
            _ => {}
        }
        if config.database_urls.iter().any(|url| url.trim().is_empty()) {
            bail!("database_urls: an empty address");
        }
        config.limits.validate()?;
        config.warnings = warnings;
        Ok(config)
    }

    /// The database addresses: `database_urls`, or the one `database_url`.
    pub fn database_addresses(&self) -> Vec<String> {
        if self.database_urls.is_empty() {
            vec![self.database_url.clone()]
        } else {
            self.database_urls.clone()
        }
    }

    /// The peers as county codes.
    pub fn peer_endpoints(&self) -> Vec<(CountyCode, String)> {
        self.peers
            .iter()
            .filter_map(|(county, endpoint)| Some((CountyCode::parse(county).ok()?, endpoint.clone())))
            .collect()
    }

    /// A human-readable account of the configuration with secrets redacted.
    pub fn describe(&self) -> String {
        let mut lines = vec![
            format!("county            {} {}", self.county, self.county.name()),
            format!("listen            {}", self.listen),
            format!(
                "database          {}",
                self.database_addresses()
                    .iter()
                    .map(|url| redact_url(url))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            format!("certificate       {}", self.tls.certificate.display()),
            format!(
                "private key       {} (contents never shown)",
                self.tls.private_key.display()
            ),
            format!("trust anchors     {}", self.tls.trust_anchors.display()),
            format!(
                "revocation lists  {}",
                if self.tls.crls.is_empty() {
                    "none (revocation not checked)".to_string()
                } else {
                    let files: Vec<String> = self.tls.crls.iter().map(|p| p.display().to_string()).collect();
                    format!(
                        "{} (grace {})",
                        files.join(", "),
                        humantime::format_duration(self.tls.crl_grace)
                    )
                }
            ),
            format!(
                "tls reload        on SIGHUP{}",
                if self.tls.watch_interval.is_zero() {
                    String::new()
                } else {
                    format!(
                        " and when the files change (checked every {})",
                        humantime::format_duration(self.tls.watch_interval)
                    )
                }
            ),
            format!("agreements        {}", self.agreements_dir.display()),
            format!(
                "signatures        {}",
                if self.require_signatures {
                    "every party's signature required"
                } else {
                    "NOT required (require_signatures = false)"
                }
            ),
            format!(
                "operator api      {}{}",
                self.operator.listen,
                match &self.operator.trust_anchors {
                    Some(path) => format!(" (operator certificates from {})", path.display()),
                    None => " (loopback, no certificates)".to_string(),
                }
            ),
            format!("metrics           http://{}/metrics", self.metrics.listen),
            match (self.web.listen, &self.web.tls) {
                (None, _) => "web api           off (web.listen not set)".to_string(),
                (Some(listen), tls) => format!(
                    "web api           {}://{listen}/v1/ and the console (控制台) at / ({}{})",
                    if tls.is_some() { "https" } else { "http" },
                    if self.web.login_required() {
                        "API token or console login required"
                    } else {
                        "loopback: no token or login needed"
                    },
                    match tls {
                        Some(tls) => format!(", certificate {}", tls.cert.display()),
                        None => String::new(),
                    }
                ),
            },
        ];
        for (county, endpoint) in &self.peers {
            lines.push(format!("peer              {county} at {endpoint}"));
        }
        for (agreement, settings) in &self.reconcile.agreements {
            lines.push(format!(
                "reconcile         {agreement} at \"{}\" (China Standard Time), secret {}",
                settings.schedule,
                if settings.secret.is_some() {
                    "set (never shown)"
                } else {
                    "MISSING: not reconciled"
                }
            ));
        }
        lines.join("\n")
    }
}

impl std::fmt::Debug for NodeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeConfig")
            .field("county", &self.county)
            .field("listen", &self.listen)
            .field("database_url", &redact_url(&self.database_url))
            .field(
                "database_urls",
                &self
                    .database_urls
                    .iter()
                    .map(|url| redact_url(url))
                    .collect::<Vec<_>>(),
            )
            .field("tls", &self.tls)
            .field("agreements_dir", &self.agreements_dir)
            .field("require_signatures", &self.require_signatures)
            .field("operator", &self.operator)
            .field("metrics", &self.metrics)
            .field("web", &self.web)
            .field("peers", &self.peers)
            .field("limits", &self.limits)
            .field("reconcile", &self.reconcile)
            .field("warnings", &self.warnings)
            .finish()
    }
}

/// Replaces the password of a `postgres://user:password@host/db` URL with `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((credentials, host)) = rest.rsplit_once('@') else {
        return url.to_string();
    };
    match credentials.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests;
