//! Settings from the process environment: `HANCHA_…` variables, each overriding one key of the
//! file (`HANCHA_PEER_<COUNTY>` and `HANCHA_RECONCILE_SECRET_<ID>` name theirs), the deprecated
//! millisecond variables read with a warning.

use anyhow::Context;

use super::limits::{DEPRECATED_MILLISECOND_VARIABLES, DURATION_KEYS, parse_milliseconds};

/// The environment variables that override file settings, and the key each one sets. Durations
/// are written the human way (`HANCHA_MAX_WAIT=2s`).
pub const ENVIRONMENT_OVERRIDES: &[(&str, &str)] = &[
    ("HANCHA_COUNTY", "county"),
    ("HANCHA_LISTEN", "listen"),
    ("HANCHA_DATABASE_URL", "database_url"),
    // comma-separated (a comma inside a password is written %2C)
    ("HANCHA_DATABASE_URLS", "database_urls"),
    ("HANCHA_DATABASE_POOL_SIZE", "database_pool_size"),
    ("HANCHA_TLS_CERTIFICATE", "tls.certificate"),
    ("HANCHA_TLS_PRIVATE_KEY", "tls.private_key"),
    ("HANCHA_TLS_TRUST_ANCHORS", "tls.trust_anchors"),
    ("HANCHA_AGREEMENTS_DIR", "agreements_dir"),
    ("HANCHA_OPERATOR_LISTEN", "operator.listen"),
    ("HANCHA_OPERATOR_TRUST_ANCHORS", "operator.trust_anchors"),
    ("HANCHA_METRICS_LISTEN", "metrics.listen"),
    ("HANCHA_WEB_LISTEN", "web.listen"),
    ("HANCHA_MAX_WAIT", "limits.max_wait"),
    ("HANCHA_BATCH_SIZE", "limits.batch_size"),
    ("HANCHA_RETRY_INITIAL", "limits.retry_initial"),
    ("HANCHA_RETRY_MAX", "limits.retry_max"),
    ("HANCHA_POLL_INTERVAL", "limits.poll_interval"),
    ("HANCHA_LOOKUPS_PER_PRINCIPAL", "limits.lookups_per_principal"),
    ("HANCHA_LOOKUP_WINDOW", "limits.lookup_window"),
    // Deprecated: whole milliseconds, read with a warning naming the variable above.
    ("HANCHA_MAX_WAIT_MS", "limits.max_wait"),
    ("HANCHA_RETRY_INITIAL_MS", "limits.retry_initial"),
    ("HANCHA_RETRY_MAX_MS", "limits.retry_max"),
];

/// Writes the overrides among `environment` into `document`, adding a warning for each
/// deprecated variable used.
pub(super) fn apply_environment(
    document: &mut toml::Table,
    environment: &[(String, String)],
    warnings: &mut Vec<String>,
) -> anyhow::Result<()> {
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
                    set_dotted(document, key, &duration);
                }
                None => set_dotted(document, key, value),
            }
        } else if let Some(county) = variable.strip_prefix("HANCHA_PEER_") {
            set_dotted(document, &format!("peers.{county}"), value);
        } else if let Some(agreement) = variable.strip_prefix("HANCHA_RECONCILE_SECRET_") {
            let agreement = agreement.replace('_', "-");
            set_dotted(
                document,
                &format!("reconcile.agreements.{agreement}.secret"),
                value,
            );
        }
    }
    Ok(())
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
    // the variable names the database's addresses, whichever way the file wrote them
    match key {
        "database_url" => drop(table.remove("database_urls")),
        "database_urls" => drop(table.remove("database_url")),
        _ => {}
    }
    if key == "database_urls" {
        let urls = value
            .split(',')
            .map(|url| toml::Value::String(url.trim().to_string()))
            .collect();
        table.insert(last.to_string(), toml::Value::Array(urls));
        return;
    }
    let typed = match value.parse::<i64>() {
        Ok(number) if numeric => toml::Value::Integer(number),
        _ => toml::Value::String(value.to_string()),
    };
    table.insert(last.to_string(), typed);
}
