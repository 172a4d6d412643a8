//! The configuration's unit tests: file and environment, durations old and new, secrets never shown.

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
    let error = error_of(&with_limits("webhook_timeout = \"0s\""), &[]);
    assert!(
        error.contains("limits.webhook_timeout must be longer than zero"),
        "{error}"
    );
    let error = error_of(
        &with_limits("webhook_connect_timeout = \"20s\"\nwebhook_timeout = \"10s\""),
        &[],
    );
    assert!(
        error.contains("limits.webhook_timeout (10s) must not be shorter"),
        "{error}"
    );
    let error = error_of(
        &with_limits("webhook_retry_first = \"1h\"\nwebhook_retry_max = \"10m\""),
        &[],
    );
    assert!(error.contains("limits.webhook_retry_max (10m)"), "{error}");
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

#[test]
fn metrics_listen_on_loopback_by_default_and_never_on_the_peer_port() {
    let config = NodeConfig::from_toml(EXAMPLE, &[], Path::new(".")).unwrap();
    assert_eq!(config.metrics.listen, SocketAddr::from(([127, 0, 0, 1], 7540)));
    let environment = vec![("HANCHA_METRICS_LISTEN".to_string(), "127.0.0.1:9100".to_string())];
    let config = NodeConfig::from_toml(EXAMPLE, &environment, Path::new(".")).unwrap();
    assert_eq!(config.metrics.listen.port(), 9100);
    let error = error_of(EXAMPLE, &[("HANCHA_METRICS_LISTEN", "127.0.0.1:7443")]);
    assert!(error.contains("metrics.listen"), "{error}");
}

#[test]
fn revocation_lists_and_the_tls_watch_are_read_with_their_defaults() {
    let config = NodeConfig::from_toml(EXAMPLE, &[], Path::new("/etc/hancha")).unwrap();
    assert!(config.tls.crls.is_empty());
    assert_eq!(config.tls.crl_grace, Duration::ZERO);
    assert_eq!(config.tls.watch_interval, Duration::from_secs(5));
    let text = EXAMPLE.replace(
        "trust_anchors = \"certs/ca.pem\"\n",
        "trust_anchors = \"certs/ca.pem\"\ncrls = [\"certs/ca.crl\", \"/srv/other.crl\"]\ncrl_grace = \"1d\"\nwatch_interval = \"0s\"\n",
    );
    let config = NodeConfig::from_toml(&text, &[], Path::new("/etc/hancha")).unwrap();
    assert_eq!(
        config.tls.crls,
        vec![
            Path::new("/etc/hancha/certs/ca.crl").to_path_buf(),
            Path::new("/srv/other.crl").to_path_buf()
        ]
    );
    assert_eq!(config.tls.crl_grace, Duration::from_secs(86_400));
    assert!(config.tls.watch_interval.is_zero());
    let described = config.describe();
    assert!(
        described.contains("revocation lists  /etc/hancha/certs/ca.crl, /srv/other.crl (grace 1day)"),
        "{described}"
    );
    assert!(described.contains("tls reload        on SIGHUP\n"), "{described}");
    let text = EXAMPLE.replace(
        "trust_anchors = \"certs/ca.pem\"\n",
        "trust_anchors = \"certs/ca.pem\"\ncrl_grace = \"soon\"\n",
    );
    assert!(
        error_of(&text, &[]).contains("crl_grace"),
        "{}",
        error_of(&text, &[])
    );
}

#[test]
fn the_web_listener_is_off_unless_set_and_needs_https_and_tokens_off_loopback() {
    let config = NodeConfig::from_toml(EXAMPLE, &[], Path::new(".")).unwrap();
    assert_eq!(config.web.listen, None);
    assert!(config.describe().contains("web api           off"));
    // loopback: no token needed unless asked for
    let loopback = format!("{EXAMPLE}\n[web]\nlisten = \"127.0.0.1:7550\"\n");
    let config = NodeConfig::from_toml(&loopback, &[], Path::new(".")).unwrap();
    assert!(!config.web.login_required());
    let asked = format!("{EXAMPLE}\n[web]\nlisten = \"127.0.0.1:7550\"\nrequire_login = true\n");
    assert!(
        NodeConfig::from_toml(&asked, &[], Path::new("."))
            .unwrap()
            .web
            .login_required()
    );
    // off loopback: a certificate is required, and so are tokens
    let exposed = format!("{EXAMPLE}\n[web]\nlisten = \"0.0.0.0:8443\"\n");
    let error = error_of(&exposed, &[]);
    assert!(
        error.contains("web.listen 0.0.0.0:8443 is not a loopback address: set [web.tls]"),
        "{error}"
    );
    let with_tls = format!("{exposed}[web.tls]\ncert = \"certs/web.pem\"\nkey = \"certs/web-key.pem\"\n");
    let config = NodeConfig::from_toml(&with_tls, &[], Path::new("/etc/hancha")).unwrap();
    assert!(config.web.login_required());
    assert_eq!(
        config.web.tls.as_ref().unwrap().key,
        Path::new("/etc/hancha/certs/web-key.pem")
    );
    assert!(config.describe().contains(
        "https://0.0.0.0:8443/v1/ and the console (控制台) at / (API token or console login required"
    ));
    let open = format!(
        "{EXAMPLE}\n[web]\nlisten = \"0.0.0.0:8443\"\nrequire_login = false\n[web.tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n"
    );
    assert!(error_of(&open, &[]).contains("web.require_login cannot be false"));
    // never another listener's port
    let clash = format!("{EXAMPLE}\n[web]\nlisten = \"127.0.0.1:7540\"\n");
    assert!(error_of(&clash, &[]).contains("needs its own port"));
    let free = format!("{EXAMPLE}\n[operator]\nlisten = \"127.0.0.1:0\"\n[web]\nlisten = \"127.0.0.1:0\"\n");
    assert!(NodeConfig::from_toml(&free, &[], Path::new(".")).is_ok());
}

#[test]
fn several_database_addresses_from_file_or_environment_never_printing_passwords() {
    let several = EXAMPLE.replace(
        "database_url = \"postgres://hancha:s3cret@localhost/hancha_430703\"",
        "database_urls = [\"postgres://hancha:s3cret@db1/hancha_430703\", \"postgres://hancha:s3cret@db2/hancha_430703\"]",
    );
    let config = NodeConfig::from_toml(&several, &[], Path::new(".")).unwrap();
    assert_eq!(config.database_addresses().len(), 2);
    assert!(!format!("{config:?}").contains("s3cret"));
    assert!(!config.describe().contains("s3cret"));
    assert!(
        config
            .describe()
            .contains("hancha:***@db1/hancha_430703, postgres://hancha:***@db2")
    );

    // the variable replaces the file's addresses, however the file wrote them
    let environment = vec![(
        "HANCHA_DATABASE_URLS".to_string(),
        "postgres://a/x, postgres://b/x,postgres://c/x".to_string(),
    )];
    let config = NodeConfig::from_toml(EXAMPLE, &environment, Path::new(".")).unwrap();
    assert_eq!(
        config.database_addresses(),
        ["postgres://a/x", "postgres://b/x", "postgres://c/x"]
    );
    let environment = vec![("HANCHA_DATABASE_URL".to_string(), "postgres://d/x".to_string())];
    let config = NodeConfig::from_toml(&several, &environment, Path::new(".")).unwrap();
    assert_eq!(config.database_addresses(), ["postgres://d/x"]);

    let both = format!("database_urls = [\"postgres://a/x\"]\n{EXAMPLE}");
    assert!(
        error_of(&both, &[]).contains("set one"),
        "{}",
        error_of(&both, &[])
    );
    let neither = EXAMPLE.replace(
        "database_url = \"postgres://hancha:s3cret@localhost/hancha_430703\"",
        "",
    );
    assert!(error_of(&neither, &[]).contains("database_url"));
}
