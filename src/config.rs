//! Node configuration: one TOML file per node, every setting overridable by a `HANCHA_…`
//! environment variable. Secrets (the database password, key files' contents) are never printed:
//! `Debug` and [`NodeConfig::describe`] redact them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::domain::division::CountyCode;

mod limits;

pub use limits::Limits;
use limits::{
    DEPRECATED_MILLISECOND_VARIABLES, DURATION_KEYS, check_durations, parse_milliseconds,
    translate_deprecated_limits,
};

/// Everything a node needs to run. See `examples/node-430703.toml` for a documented example.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// The county this node speaks for; must match the county in its certificate.
    pub county: CountyCode,
    /// Where the peer (exchange) listener binds, e.g. `0.0.0.0:7443`; port 0 picks a free port.
    pub listen: SocketAddr,
    /// PostgreSQL URL of this county's database (may carry a password: never printed).
    pub database_url: String,
    /// Maximum database connections this node opens.
    #[serde(default = "default_pool_size")]
    pub database_pool_size: u32,
    /// The node's certificate, key and the trust anchors for peers.
    pub tls: TlsFiles,
    /// Directory of agreement documents (`*.toml`) this node holds.
    pub agreements_dir: PathBuf,
    /// The operator API listener (CLI, township systems).
    #[serde(default)]
    pub operator: OperatorListener,
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

fn default_pool_size() -> u32 {
    10
}

/// The environment variables that override file settings, and the key each one sets. Durations
/// are written the human way (`HANCHA_MAX_WAIT=2s`).
pub const ENVIRONMENT_OVERRIDES: &[(&str, &str)] = &[
    ("HANCHA_COUNTY", "county"),
    ("HANCHA_LISTEN", "listen"),
    ("HANCHA_DATABASE_URL", "database_url"),
    ("HANCHA_DATABASE_POOL_SIZE", "database_pool_size"),
    ("HANCHA_TLS_CERTIFICATE", "tls.certificate"),
    ("HANCHA_TLS_PRIVATE_KEY", "tls.private_key"),
    ("HANCHA_TLS_TRUST_ANCHORS", "tls.trust_anchors"),
    ("HANCHA_AGREEMENTS_DIR", "agreements_dir"),
    ("HANCHA_OPERATOR_LISTEN", "operator.listen"),
    ("HANCHA_OPERATOR_TRUST_ANCHORS", "operator.trust_anchors"),
    ("HANCHA_MAX_WAIT", "limits.max_wait"),
    ("HANCHA_BATCH_SIZE", "limits.batch_size"),
    ("HANCHA_RETRY_INITIAL", "limits.retry_initial"),
    ("HANCHA_RETRY_MAX", "limits.retry_max"),
    ("HANCHA_POLL_INTERVAL", "limits.poll_interval"),
    // Deprecated: whole milliseconds, read with a warning naming the variable above.
    ("HANCHA_MAX_WAIT_MS", "limits.max_wait"),
    ("HANCHA_RETRY_INITIAL_MS", "limits.retry_initial"),
    ("HANCHA_RETRY_MAX_MS", "limits.retry_max"),
];

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
        // Deprecated variables first, so that the variable replacing one wins when both are set.
        let (deprecated, current): (Vec<_>, Vec<_>) = environment.iter().partition(|(variable, _)| {
            DEPRECATED_MILLISECOND_VARIABLES
                .iter()
                .any(|(name, _)| name == variable)
        });
        for (variable, value) in deprecated.into_iter().chain(current) {
            if let Some(key) = ENVIRONMENT_OVERRIDES
                .iter()
                .find(|(name, _)| name == variable)
                .map(|(_, key)| *key)
            {
                match DEPRECATED_MILLISECOND_VARIABLES
                    .iter()
                    .find(|(name, _)| name == variable)
                {
                    Some((_, replacement)) => {
                        let duration = parse_milliseconds(value).with_context(|| variable.clone())?;
                        warnings.push(format!(
                            "{variable} is deprecated: set {replacement}=\"{duration}\" instead"
                        ));
                        set_dotted(&mut document, key, &duration);
                    }
                    None => set_dotted(&mut document, key, value),
                }
            } else if let Some(county) = variable.strip_prefix("HANCHA_PEER_") {
                set_dotted(&mut document, &format!("peers.{county}"), value);
            } else if let Some(agreement) = variable.strip_prefix("HANCHA_RECONCILE_SECRET_") {
                let agreement = agreement.replace('_', "-");
                set_dotted(
                    &mut document,
                    &format!("reconcile.agreements.{agreement}.secret"),
                    value,
                );
            }
        }
        check_durations(&document)?;
        let mut config: NodeConfig = document.try_into().context("invalid node configuration")?;
        if let Some(path) = config.operator.trust_anchors.as_mut().filter(|p| p.is_relative()) {
            *path = base.join(&*path);
        }
        if !config.operator.listen.ip().is_loopback() && config.operator.trust_anchors.is_none() {
            bail!(
                "operator.listen {} is not a loopback address: set operator.trust_anchors to the operator CA",
                config.operator.listen
            );
        }
        for path in [
            &mut config.tls.certificate,
            &mut config.tls.private_key,
            &mut config.tls.trust_anchors,
            &mut config.agreements_dir,
        ] {
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
        config.limits.validate()?;
        config.warnings = warnings;
        Ok(config)
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
            format!("database          {}", redact_url(&self.database_url)),
            format!("certificate       {}", self.tls.certificate.display()),
            format!(
                "private key       {} (contents never shown)",
                self.tls.private_key.display()
            ),
            format!("trust anchors     {}", self.tls.trust_anchors.display()),
            format!("agreements        {}", self.agreements_dir.display()),
            format!(
                "operator api      {}{}",
                self.operator.listen,
                match &self.operator.trust_anchors {
                    Some(path) => format!(" (operator certificates from {})", path.display()),
                    None => " (loopback, no certificates)".to_string(),
                }
            ),
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
            .field("tls", &self.tls)
            .field("agreements_dir", &self.agreements_dir)
            .field("operator", &self.operator)
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

fn set_dotted(document: &mut toml::Table, key: &str, value: &str) {
    let mut table = document;
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts.pop().unwrap_or(key);
    for part in parts {
        let entry = table
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        table = entry.as_table_mut().expect("just made a table");
    }
    // Numeric settings stay numbers so that `HANCHA_BATCH_SIZE=200` fills an integer field;
    // everything else (durations and county codes included) stays a string.
    let numeric = key == "database_pool_size"
        || key
            .strip_prefix("limits.")
            .is_some_and(|limit| !DURATION_KEYS.contains(&limit));
    let typed = match value.parse::<i64>() {
        Ok(number) if numeric => toml::Value::Integer(number),
        _ => toml::Value::String(value.to_string()),
    };
    table.insert(last.to_string(), typed);
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const EXAMPLE: &str = r#"
county = "430703"
listen = "127.0.0.1:7443"
database_url = "postgres://hancha:s3cret@localhost/hancha_430703"
agreements_dir = "agreements"
[tls]
certificate = "certs/430703.pem"
private_key = "certs/430703-key.pem"
trust_anchors = "certs/ca.pem"
[peers]
431322 = "127.0.0.1:7444"
"#;

    #[test]
    fn environment_overrides_file_settings_and_adds_peers() {
        let environment = vec![
            ("HANCHA_LISTEN".to_string(), "127.0.0.1:9000".to_string()),
            ("HANCHA_MAX_WAIT".to_string(), "1500ms".to_string()),
            ("HANCHA_PEER_430582".to_string(), "127.0.0.1:9001".to_string()),
        ];
        let config = NodeConfig::from_toml(EXAMPLE, &environment, Path::new("/etc/hancha")).unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.limits.max_wait, Duration::from_millis(1500));
        assert_eq!(
            config.peers.get("430582").map(String::as_str),
            Some("127.0.0.1:9001")
        );
        assert_eq!(config.tls.certificate, Path::new("/etc/hancha/certs/430703.pem"));
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    }

    fn with_limits(limits: &str) -> String {
        format!("{EXAMPLE}\n[limits]\n{limits}\n")
    }

    fn error_of(text: &str, environment: &[(&str, &str)]) -> String {
        let environment: Vec<(String, String)> = environment
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        let error = NodeConfig::from_toml(text, &environment, Path::new(".")).unwrap_err();
        format!("{error:#}")
    }

    #[test]
    fn limits_default_to_todays_timings() {
        let config = NodeConfig::from_toml(EXAMPLE, &[], Path::new(".")).unwrap();
        let limits = &config.limits;
        assert_eq!(limits.max_wait, Duration::from_secs(5));
        assert_eq!(limits.retry_initial, Duration::from_millis(500));
        assert_eq!(limits.retry_max, Duration::from_secs(300));
        assert_eq!(limits.poll_interval, Duration::from_secs(1));
        assert_eq!(limits.lease, Duration::from_secs(10));
        assert_eq!(limits.lease_renewal, Duration::from_secs(3));
        assert_eq!(limits.call_timeout, Duration::from_secs(60));
        assert_eq!(limits.in_flight, 4);
        assert_eq!(limits.reconcile_max_retry, Duration::from_secs(3600));
        assert!(config.warnings.is_empty());
    }

    #[test]
    fn durations_are_written_the_human_way() {
        let text = with_limits(
            "max_wait = \"2s\"\nretry_initial = \"250ms\"\nretry_max = \"10m\"\n\
             poll_interval = \"1s 500ms\"\nlease = \"1h\"\nlease_renewal = \"20m\"\n\
             handshake_timeout = \"3s\"\ndatabase_acquire_timeout = \"45s\"",
        );
        let config = NodeConfig::from_toml(&text, &[], Path::new(".")).unwrap();
        let limits = &config.limits;
        assert_eq!(limits.max_wait, Duration::from_secs(2));
        assert_eq!(limits.retry_initial, Duration::from_millis(250));
        assert_eq!(limits.retry_max, Duration::from_secs(600));
        assert_eq!(limits.poll_interval, Duration::from_millis(1500));
        assert_eq!(limits.lease, Duration::from_secs(3600));
        assert_eq!(limits.lease_renewal, Duration::from_secs(1200));
        assert_eq!(limits.handshake_timeout, Duration::from_secs(3));
        assert_eq!(limits.database_acquire_timeout, Duration::from_secs(45));
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    }

    #[test]
    fn a_bad_duration_is_refused_naming_its_key() {
        let error = error_of(&with_limits("retry_max = \"5 parsecs\""), &[]);
        assert!(error.contains("limits.retry_max"), "{error}");
        assert!(error.contains("5 parsecs"), "{error}");
        assert!(error.contains("\"5m\""), "{error}");

        let error = error_of(&with_limits("lease = 10"), &[]);
        assert!(error.contains("limits.lease"), "{error}");
        assert!(error.contains("unit"), "{error}");

        let error = error_of(EXAMPLE, &[("HANCHA_MAX_WAIT", "1500")]);
        assert!(error.contains("limits.max_wait"), "{error}");
    }

    #[test]
    fn deprecated_millisecond_keys_still_work_and_warn_naming_the_new_key() {
        let text = with_limits(
            "max_wait_ms = 1500\nretry_initial_ms = 100\nretry_max_ms = 60000\npoll_interval_ms = 250",
        );
        let config = NodeConfig::from_toml(&text, &[], Path::new(".")).unwrap();
        assert_eq!(config.limits.max_wait, Duration::from_millis(1500));
        assert_eq!(config.limits.retry_initial, Duration::from_millis(100));
        assert_eq!(config.limits.retry_max, Duration::from_secs(60));
        assert_eq!(config.limits.poll_interval, Duration::from_millis(250));
        assert_eq!(config.warnings.len(), 4, "{:?}", config.warnings);
        let first = &config.warnings[0];
        assert!(first.contains("limits.max_wait_ms is deprecated"), "{first}");
        assert!(first.contains("limits.max_wait = \"1s 500ms\""), "{first}");
        assert!(format!("{config:?}").contains("deprecated"));

        let both = with_limits("max_wait_ms = 1500\nmax_wait = \"2s\"");
        let error = error_of(&both, &[]);
        assert!(
            error.contains("limits.max_wait_ms and limits.max_wait"),
            "{error}"
        );

        let negative = error_of(&with_limits("retry_max_ms = -1"), &[]);
        assert!(negative.contains("limits.retry_max_ms"), "{negative}");
    }

    #[test]
    fn deprecated_millisecond_variables_still_work_and_warn_naming_the_new_variable() {
        let environment = vec![
            ("HANCHA_MAX_WAIT_MS".to_string(), "2500".to_string()),
            ("HANCHA_RETRY_INITIAL_MS".to_string(), "50".to_string()),
            ("HANCHA_RETRY_MAX_MS".to_string(), "30000".to_string()),
        ];
        let config = NodeConfig::from_toml(EXAMPLE, &environment, Path::new(".")).unwrap();
        assert_eq!(config.limits.max_wait, Duration::from_millis(2500));
        assert_eq!(config.limits.retry_initial, Duration::from_millis(50));
        assert_eq!(config.limits.retry_max, Duration::from_secs(30));
        assert_eq!(config.warnings.len(), 3, "{:?}", config.warnings);
        assert!(
            config
                .warnings
                .iter()
                .any(|w| w.contains("HANCHA_MAX_WAIT_MS is deprecated")
                    && w.contains("HANCHA_MAX_WAIT=\"2s 500ms\"")),
            "{:?}",
            config.warnings
        );

        let error = error_of(EXAMPLE, &[("HANCHA_RETRY_MAX_MS", "5m")]);
        assert!(error.contains("HANCHA_RETRY_MAX_MS"), "{error}");
        assert!(error.contains("milliseconds"), "{error}");
    }

    #[test]
    fn new_variables_take_human_durations_and_win_over_deprecated_ones() {
        let environment = vec![
            ("HANCHA_MAX_WAIT".to_string(), "3s".to_string()),
            ("HANCHA_MAX_WAIT_MS".to_string(), "1000".to_string()),
            ("HANCHA_RETRY_INITIAL".to_string(), "1s".to_string()),
            ("HANCHA_RETRY_MAX".to_string(), "2m".to_string()),
            ("HANCHA_POLL_INTERVAL".to_string(), "200ms".to_string()),
        ];
        let text = with_limits("max_wait = \"4s\"\npoll_interval = \"5s\"");
        let config = NodeConfig::from_toml(&text, &environment, Path::new(".")).unwrap();
        assert_eq!(config.limits.max_wait, Duration::from_secs(3));
        assert_eq!(config.limits.retry_initial, Duration::from_secs(1));
        assert_eq!(config.limits.retry_max, Duration::from_secs(120));
        assert_eq!(config.limits.poll_interval, Duration::from_millis(200));
        assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
    }

    #[test]
    fn limits_that_contradict_each_other_are_refused() {
        let error = error_of(&with_limits("lease = \"2s\"\nlease_renewal = \"2s\""), &[]);
        assert!(
            error.contains("limits.lease_renewal (2s) must be shorter than limits.lease (2s)"),
            "{error}"
        );
        let error = error_of(&with_limits("call_timeout = \"0s\""), &[]);
        assert!(
            error.contains("limits.call_timeout must be longer than zero"),
            "{error}"
        );
        let error = error_of(&with_limits("in_flight = 0"), &[]);
        assert!(error.contains("limits.in_flight must be at least 1"), "{error}");
        let error = error_of(&with_limits("retry_initial = \"1m\"\nretry_max = \"10s\""), &[]);
        assert!(error.contains("limits.retry_max (10s)"), "{error}");
    }

    #[test]
    fn database_password_is_never_printed() {
        let config = NodeConfig::from_toml(EXAMPLE, &[], Path::new(".")).unwrap();
        assert!(!format!("{config:?}").contains("s3cret"));
        assert!(!config.describe().contains("s3cret"));
        assert!(config.describe().contains("hancha:***@localhost"));
    }

    #[test]
    fn reconcile_secrets_come_from_file_or_environment_and_are_never_printed() {
        let text = format!(
            "{EXAMPLE}\n[reconcile.agreements.430703-431322]\nsecret = \"file secret that is long enough, 32+\"\n"
        );
        let environment = vec![(
            "HANCHA_RECONCILE_SECRET_430703_430582".to_string(),
            "environment secret, also long enough!".to_string(),
        )];
        let config = NodeConfig::from_toml(&text, &environment, Path::new(".")).unwrap();
        let from_env = &config.reconcile.agreements["430703-430582"];
        assert_eq!(
            from_env.secret.as_deref(),
            Some("environment secret, also long enough!")
        );
        assert_eq!(from_env.schedule, "0 2 * * *");
        for shown in [format!("{config:?}"), config.describe()] {
            assert!(!shown.contains("file secret"), "{shown}");
            assert!(!shown.contains("environment secret"), "{shown}");
        }
        let short = format!("{EXAMPLE}\n[reconcile.agreements.430703-431322]\nsecret = \"short\"\n");
        let error = NodeConfig::from_toml(&short, &[], Path::new(".")).unwrap_err();
        assert!(format!("{error:#}").contains("at least 32 bytes"), "{error:#}");
        assert!(!format!("{error:#}").contains("short\""), "{error:#}");
    }

    #[test]
    fn rejects_unknown_settings_and_bad_peer_codes() {
        let unknown = format!("{EXAMPLE}\ncolour = \"blue\"\n");
        assert!(NodeConfig::from_toml(&unknown, &[], Path::new(".")).is_err());
        let environment = vec![("HANCHA_PEER_999999".to_string(), "x:1".to_string())];
        let error = NodeConfig::from_toml(EXAMPLE, &environment, Path::new(".")).unwrap_err();
        assert!(format!("{error:#}").contains("999999"), "{error:#}");
    }
}
