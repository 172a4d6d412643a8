//! Webhooks: events pushed to a county system's endpoint, one per request, signed as the
//! Standard Webhooks specification says (<https://www.standardwebhooks.com>), so that a receiver
//! can use any of its libraries (`standardwebhooks` in Python) to check them. Here: which URLs
//! may be registered, the signing secrets, the signature, and how long to wait before trying a
//! failed endpoint again. Pure: the delivery itself is `crate::workers::webhooks`.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The prefix of a signing secret (Standard Webhooks).
pub const SECRET_PREFIX: &str = "whsec_";

/// Random bytes in a secret made here (the specification asks for 24 to 64).
const SECRET_BYTES: usize = 32;

/// Fewest and most bytes accepted in a secret given by the operator.
const SECRET_BYTES_ACCEPTED: std::ops::RangeInclusive<usize> = 24..=64;

/// Longest URL accepted: URLs are shown in listings and stored per endpoint.
const MAX_URL_CHARS: usize = 2048;

/// An endpoint's URL, checked: `https://` anywhere, or `http://` to this machine only (a county
/// system on the node's own host, or a test); no user name or password in it.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookUrl {
    /// The URL as given (parsed, so its parts are known to be well formed).
    uri: http::Uri,
    /// Whether the request goes over TLS.
    tls: bool,
}

impl WebhookUrl {
    /// Checks `text`. The refusal says what is wrong, in words an operator acts on; the URL
    /// itself is not quoted back (it may hold a token).
    pub fn parse(text: &str) -> Result<WebhookUrl, String> {
        if text.is_empty() {
            return Err("a URL is required (https://host/path)".into());
        }
        if text.chars().count() > MAX_URL_CHARS {
            return Err(format!("longer than {MAX_URL_CHARS} characters"));
        }
        let uri: http::Uri = text
            .parse()
            .map_err(|_| "not a URL: write it as https://host[:port]/path".to_string())?;
        let authority = uri
            .authority()
            .ok_or_else(|| "not an absolute URL: write it as https://host[:port]/path".to_string())?;
        if authority.as_str().contains('@') {
            return Err("a user name or password in the URL is not accepted".into());
        }
        if authority.host().is_empty() {
            return Err("the URL names no host".into());
        }
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") if is_loopback(authority.host()) => false,
            Some("http") => {
                return Err(
                    "http:// is accepted only to this machine (127.0.0.0/8, ::1, localhost): use https:// \
                     so that events are not readable on the way"
                        .into(),
                );
            }
            _ => return Err("the URL must start with https://".into()),
        };
        Ok(WebhookUrl { uri, tls })
    }

    /// Whether requests go over TLS.
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// The host, without brackets for an IPv6 address: what the TLS server name is.
    pub fn host(&self) -> &str {
        let host = self.uri.host().unwrap_or_default();
        host.trim_start_matches('[').trim_end_matches(']')
    }

    /// The port, the scheme's default when not given.
    pub fn port(&self) -> u16 {
        self.uri.port_u16().unwrap_or(if self.tls { 443 } else { 80 })
    }

    /// The `Host` header's value.
    pub fn authority(&self) -> &str {
        self.uri.authority().map(|a| a.as_str()).unwrap_or_default()
    }

    /// The path and query requested (`/` when the URL has none).
    pub fn path_and_query(&self) -> &str {
        self.uri
            .path_and_query()
            .map(|p| p.as_str())
            .filter(|p| !p.is_empty())
            .unwrap_or("/")
    }

    /// The URL as text.
    pub fn as_string(&self) -> String {
        self.uri.to_string()
    }
}

impl fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // the path and query may carry a receiver's token: shown as the host only
        write!(f, "WebhookUrl({})", self.authority())
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|address| address.is_loopback())
}

/// A signing secret: `whsec_` and the base64 of its bytes. Never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret {
    /// The text form, as the receiver holds it.
    text: String,
    /// The bytes the HMAC is keyed with.
    key: Vec<u8>,
}

impl SigningSecret {
    /// A new secret of 32 random bytes.
    pub fn generate() -> SigningSecret {
        let key: [u8; SECRET_BYTES] = rand::random();
        SigningSecret {
            text: format!("{SECRET_PREFIX}{}", BASE64.encode(key)),
            key: key.to_vec(),
        }
    }

    /// Reads a secret in its text form (one the operator brings, or one stored). The refusal
    /// never quotes the secret.
    pub fn parse(text: &str) -> Result<SigningSecret, String> {
        let encoded = text
            .strip_prefix(SECRET_PREFIX)
            .ok_or_else(|| format!("a signing secret starts with {SECRET_PREFIX}"))?;
        let key = BASE64
            .decode(encoded)
            .map_err(|_| format!("a signing secret is {SECRET_PREFIX} and base64"))?;
        if !SECRET_BYTES_ACCEPTED.contains(&key.len()) {
            return Err(format!(
                "a signing secret holds {} to {} bytes (this one {})",
                SECRET_BYTES_ACCEPTED.start(),
                SECRET_BYTES_ACCEPTED.end(),
                key.len()
            ));
        }
        Ok(SigningSecret {
            text: text.to_string(),
            key,
        })
    }

    /// The text form, to store and to show once when it is made.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// What listings show instead of the secret: the first 8 hex digits of its SHA-256, which
    /// tells two secrets apart and says nothing of either.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.text.as_bytes());
        format!("sha256:{}", hex::encode(&digest[..4]))
    }

    /// `v1,` and the base64 HMAC-SHA256 of `{id}.{timestamp}.{body}` under this secret.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes a key of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningSecret({})", self.fingerprint())
    }
}

/// The `webhook-signature` header: one `v1,…` per secret in force, separated by spaces (during
/// a rotation the old and the new secret both sign, so a receiver holding either accepts).
pub fn signature_header(secrets: &[SigningSecret], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|secret| secret.sign(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// How long to wait after the `attempts`-th failed attempt at an event: doubling from `first`,
/// at most `max`, and with "equal jitter" (half fixed, half `jitter` ∈ [0, 1) of it) so that
/// endpoints failing together do not retry together.
pub fn retry_delay(attempts: u32, first: Duration, max: Duration, jitter: f64) -> Duration {
    let doublings = attempts.saturating_sub(1).min(30);
    let full = first.saturating_mul(1u32 << doublings).min(max);
    let half = full / 2;
    half + half.mul_f64(jitter.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_anywhere_and_http_only_to_this_machine() {
        for good in [
            "https://county.example.cn/hooks/hancha?token=x",
            "https://10.1.2.3:8443/",
            "http://127.0.0.1:9000/hook",
            "http://127.8.0.1/hook",
            "http://[::1]:9000/hook",
            "http://localhost:9000",
        ] {
            let url = WebhookUrl::parse(good).unwrap_or_else(|e| panic!("{good}: {e}"));
            assert_eq!(url.tls(), good.starts_with("https"));
        }
        let refused = |text: &str| WebhookUrl::parse(text).expect_err(text);
        assert!(refused("http://county.example.cn/hook").contains("https://"));
        assert!(refused("http://10.0.0.1/hook").contains("only to this machine"));
        assert!(refused("ftp://example.cn/").contains("https://"));
        assert!(refused("https://user:pw@example.cn/").contains("password"));
        assert!(refused("/relative").contains("absolute"));
        assert!(refused("").contains("required"));
    }

    #[test]
    fn url_parts_for_the_request() {
        let url = WebhookUrl::parse("http://[::1]:9000/a/b?c=d").unwrap();
        assert_eq!((url.host(), url.port()), ("::1", 9000));
        assert_eq!(url.path_and_query(), "/a/b?c=d");
        assert_eq!(WebhookUrl::parse("https://x.cn").unwrap().path_and_query(), "/");
        assert_eq!(WebhookUrl::parse("https://x.cn").unwrap().port(), 443);
        assert!(!format!("{url:?}").contains("c=d"));
    }

    #[test]
    fn the_signature_is_the_standard_webhooks_one() {
        // the example of the Standard Webhooks specification and its reference libraries
        let secret = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn secrets_are_made_random_read_back_and_never_printed() {
        let secret = SigningSecret::generate();
        assert!(secret.expose().starts_with("whsec_"));
        assert_eq!(SigningSecret::parse(secret.expose()).unwrap(), secret);
        assert_ne!(SigningSecret::generate(), secret);
        assert!(!format!("{secret:?}").contains(secret.expose()));
        assert!(
            SigningSecret::parse("whsec_c2hvcnQ=")
                .unwrap_err()
                .contains("24 to 64")
        );
        assert!(SigningSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
    }

    #[test]
    fn during_an_overlap_every_secret_signs() {
        let (old, new) = (SigningSecret::generate(), SigningSecret::generate());
        let header = signature_header(&[old.clone(), new.clone()], "evt_1", 5, b"{}");
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts, [old.sign("evt_1", 5, b"{}"), new.sign("evt_1", 5, b"{}")]);
    }

    #[test]
    fn retries_double_to_the_cap_with_jitter() {
        let (first, max) = (Duration::from_secs(1), Duration::from_secs(600));
        assert_eq!(retry_delay(1, first, max, 0.0), Duration::from_millis(500));
        assert_eq!(retry_delay(1, first, max, 0.999_999).as_millis(), 999);
        assert_eq!(retry_delay(4, first, max, 1.0), Duration::from_secs(8));
        assert_eq!(retry_delay(40, first, max, 1.0), max);
        assert_eq!(retry_delay(40, first, max, 0.0), max / 2);
    }
}
