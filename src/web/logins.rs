//! Console logins: how a member of staff becomes a [`Principal`] of
//! [`Role::Staff`](crate::domain::policy::Role::Staff) on the web console. Accounts are made with
//! `hancha users add`; passwords are kept as Argon2id hashes (the `argon2` crate's defaults, the
//! OWASP parameters), hashed and checked on the blocking pool. A login opens a session: 32 random
//! bytes in the `hancha_session` cookie, of which the store keeps only the SHA-256 (like an API
//! token, [`super::tokens`]). Wrong passwords lock the account
//! ([`lockout`](crate::domain::policy::lockout)); every login, refusal and logout is audited
//! under the account's name. Passwords and secrets are never logged.

use std::sync::Arc;

use argon2::password_hash::SaltString;
use argon2::password_hash::rand_core::OsRng;
use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use axum::http::{HeaderMap, header};
use base64::Engine;
use tokio::sync::{OnceCell, Semaphore};
use tonic::Status;
use tracing::warn;

use super::tokens::digest;
use crate::domain::policy::lockout::{Attempt, MAX_FAILED_ATTEMPTS, SESSION_IDLE, SESSION_LIFETIME};
use crate::domain::policy::{OperatorAction, Principal, Rejection, RejectionCode};
use crate::domain::time::china_time;
use crate::operator::OperatorService;
use crate::status::{internal, status_of};
use crate::store::StoreError;

/// The session cookie.
pub const SESSION_COOKIE: &str = "hancha_session";

/// Shortest password `hancha users` accepts.
pub const MIN_PASSWORD_CHARS: usize = 10;

/// Longest password accepted, in bytes (hashing is deliberately slow; a huge one is no password).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Password checks (Argon2id) running at once on a node.
const PASSWORD_CHECKS_AT_ONCE: usize = 4;

/// How long a login waits for a password check to be free before it is told to come back: a
/// flood of logins (unknown names lock nothing) cannot hold a clerk's login for ever.
const PASSWORD_CHECK_QUEUE: std::time::Duration = std::time::Duration::from_secs(3);

/// Whether `password` may be an account's password; why not otherwise.
pub fn check_new_password(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!(
            "a password needs at least {MIN_PASSWORD_CHARS} characters"
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!("a password may have at most {MAX_PASSWORD_BYTES} bytes"));
    }
    if password.chars().any(char::is_control) {
        return Err("a password may not hold control characters".into());
    }
    Ok(())
}

/// The Argon2id PHC string of `password`, with a fresh salt. Slow by design: call it on the
/// blocking pool ([`tokio::task::spawn_blocking`]).
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| anyhow::anyhow!("cannot hash the password: {error}"))
}

/// Whether `password` is the one hashed in `phc` (with the parameters the string names). Slow
/// by design, like [`hash_password`].
pub fn verify_password(phc: &str, password: &str) -> bool {
    PasswordHash::new(phc)
        .map(|hash| {
            Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A new session secret: 32 bytes from the operating system's random source, base64url.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::Rng::fill(&mut rand::rng(), &mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A new form token: 32 random bytes, hex.
pub fn new_form_token() -> String {
    let mut bytes = [0u8; 32];
    rand::Rng::fill(&mut rand::rng(), &mut bytes);
    hex::encode(bytes)
}

/// The value of the cookie `name` in `headers`, if sent.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

/// A session just opened.
#[derive(Clone, Debug)]
pub struct NewSession {
    /// Who logged in.
    pub principal: Principal,
    /// The secret for the cookie (shown to this browser only, stored as its SHA-256).
    pub secret: String,
}

/// A session in force.
#[derive(Clone, Debug)]
pub struct Session {
    /// Whose.
    pub principal: Principal,
    /// The token its forms carry.
    pub form_token: String,
}

/// Logs in, finds and ends sessions, on the operator service's node and audit path.
#[derive(Clone, Debug)]
pub struct Logins {
    /// The operator service: its node's store, its audit path.
    service: OperatorService,
    /// A hash checked when the name has no account, so that an unknown name takes as long as a
    /// wrong password (made on first use).
    decoy: Arc<OnceCell<String>>,
    /// Password checks running at once: each holds 19 MiB for tens of milliseconds, so a flood
    /// of logins waits here instead of filling the memory and the blocking pool.
    checks: Arc<Semaphore>,
}

impl Logins {
    /// Logins to the node of `service`.
    pub fn new(service: OperatorService) -> Logins {
        Logins {
            service,
            decoy: Arc::new(OnceCell::new()),
            checks: Arc::new(Semaphore::new(PASSWORD_CHECKS_AT_ONCE)),
        }
    }

    /// Tries `password` on the account `name`: `Ok(Some(_))` opens a session, `Ok(None)` is a
    /// refusal (audited; the caller says no more than "wrong name or password, or locked", so
    /// nobody learns whether the name exists), `Err` a failure of ours.
    pub async fn log_in(&self, name: &str, password: &str) -> Result<Option<NewSession>, Status> {
        let node = self.service.node();
        let store = node.store();
        let unauthenticated = |reason: String| Rejection::new(RejectionCode::Unauthenticated, reason);
        let plausible =
            !name.is_empty() && name.chars().count() <= 64 && password.len() <= MAX_PASSWORD_BYTES;
        let stored = if plausible {
            store.console_login_of(name).await.map_err(internal)?
        } else {
            None
        };
        let phc = match &stored {
            Some(stored) => stored.password_hash.clone(),
            None => self.decoy().await?,
        };
        let password_ok = {
            let _permit = tokio::time::timeout(PASSWORD_CHECK_QUEUE, self.checks.acquire())
                .await
                .map_err(|_| {
                    status_of(&Rejection::new(
                        RejectionCode::Unavailable,
                        "too many logins at once: try again in a moment",
                    ))
                })?
                .map_err(internal)?;
            verify_blocking(phc, password.to_string()).await?
        };
        let Some(stored) = stored else {
            self.service
                .refuse_unidentified_login(unauthenticated("no console account of the name given".into()))
                .await;
            return Ok(None);
        };
        let account = &stored.account;
        let principal = match Principal::staff(&account.name, node.county(), account.township.as_deref()) {
            Ok(principal) => principal,
            Err(rejection) => {
                self.service.refuse_unidentified_login(rejection).await;
                return Ok(None);
            }
        };
        if account.disabled_at.is_some() {
            let refusal = unauthenticated("the console account is disabled".into());
            self.service.refuse_console_login(&principal, refusal).await;
            return Ok(None);
        }
        let attempt = match store.record_console_login(&account.name, password_ok).await {
            Ok(attempt) => attempt,
            // removed meanwhile
            Err(StoreError::NotFound) => return Ok(None),
            Err(error) => return Err(internal(error)),
        };
        let reason = match attempt {
            Attempt::LoggedIn => None,
            Attempt::WrongPassword { left } => {
                Some(format!("wrong password ({left} more in a row lock the account)"))
            }
            Attempt::LockedNow { until } => Some(format!(
                "wrong password, {MAX_FAILED_ATTEMPTS} in a row: the account is locked until {}",
                china_time(until).format("%Y-%m-%d %H:%M")
            )),
            Attempt::Locked { until } => Some(format!(
                "the account is locked until {} (the password was not accepted, right or wrong)",
                china_time(until).format("%Y-%m-%d %H:%M")
            )),
        };
        if let Some(reason) = reason {
            self.service
                .refuse_console_login(&principal, unauthenticated(reason))
                .await;
            return Ok(None);
        }
        // the record first: a login that cannot be audited does not happen
        self.service
            .audit_console(&principal, OperatorAction::ConsoleLogin, "logged_in")
            .await?;
        let secret = new_secret();
        store
            .open_console_session(
                &account.name,
                &digest(&secret),
                &new_form_token(),
                SESSION_LIFETIME,
            )
            .await
            .map_err(internal)?;
        Ok(Some(NewSession { principal, secret }))
    }

    /// The session whose secret `headers` carry in the session cookie, if one is in force
    /// (noting its use, which restarts the idle timeout).
    pub async fn session(&self, headers: &HeaderMap) -> Result<Option<Session>, Status> {
        let Some(secret) = cookie(headers, SESSION_COOKIE) else {
            return Ok(None);
        };
        let node = self.service.node();
        let Some(found) = node
            .store()
            .use_console_session(&digest(secret), SESSION_IDLE)
            .await
            .map_err(internal)?
        else {
            return Ok(None);
        };
        match Principal::staff(&found.account, node.county(), found.township.as_deref()) {
            Ok(principal) => Ok(Some(Session {
                principal,
                form_token: found.form_token,
            })),
            Err(rejection) => {
                warn!(reason = %rejection.reason, "a console session's account is no principal of this node");
                Ok(None)
            }
        }
    }

    /// Ends the session whose secret `headers` carry (logging out `principal`), audited.
    pub async fn log_out(&self, headers: &HeaderMap, principal: &Principal) -> Result<(), Status> {
        let Some(secret) = cookie(headers, SESSION_COOKIE) else {
            return Ok(());
        };
        let revoked = self
            .service
            .node()
            .store()
            .revoke_console_session(&digest(secret))
            .await
            .map_err(internal)?;
        if revoked {
            self.service
                .audit_console(principal, OperatorAction::ConsoleLogout, "logged_out")
                .await?;
        }
        Ok(())
    }

    async fn decoy(&self) -> Result<String, Status> {
        self.decoy
            .get_or_try_init(|| async {
                tokio::task::spawn_blocking(|| hash_password(&new_secret()))
                    .await
                    .map_err(internal)?
                    .map_err(internal)
            })
            .await
            .cloned()
    }
}

async fn verify_blocking(phc: String, password: String) -> Result<bool, Status> {
    tokio::task::spawn_blocking(move || verify_password(&phc, &password))
        .await
        .map_err(internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_is_kept_as_an_argon2id_hash_that_only_it_matches() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(verify_password(&hash, "correct horse battery"));
        assert!(!verify_password(&hash, "correct horse battery "));
        assert!(!verify_password("not a hash", "correct horse battery"));
        assert_ne!(hash, hash_password("correct horse battery").unwrap(), "salted");
    }

    #[test]
    fn new_passwords_are_long_enough_and_plain_text() {
        assert!(check_new_password("short").is_err());
        assert!(check_new_password("ten chars!").is_ok());
        assert!(check_new_password("with\na newline").is_err());
        assert!(check_new_password(&"x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            "a=1; hancha_session=secret ; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("secret"));
        assert_eq!(cookie(&headers, "c"), None);
        headers.insert(header::COOKIE, "hancha_session=".parse().unwrap());
        assert_eq!(cookie(&headers, SESSION_COOKIE), None);
    }
}
