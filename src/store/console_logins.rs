//! The web console's accounts and sessions (migration 0019): each account's Argon2id password
//! hash, scope and lockout state, and each session by the SHA-256 of its secret (never the
//! secret). Login attempts are decided under the account's row lock with the database's clock
//! ([`crate::domain::policy::lockout::after_attempt`]), so replicas count the same attempts.

use chrono::{DateTime, TimeDelta, Utc};

use super::{Store, StoreError};
use crate::domain::policy::lockout::{Attempt, LockState, after_attempt};

/// One console account as stored (never its password hash: see [`Store::console_login_of`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsoleAccount {
    /// Its name, which audit records name as the principal.
    pub name: String,
    /// The township office it works for; `None`: the whole county.
    pub township: Option<String>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it was disabled, if it was.
    pub disabled_at: Option<DateTime<Utc>>,
    /// Its lockout state.
    pub lock: LockState,
}

/// What a login attempt needs of an account.
#[derive(Clone, Debug)]
pub struct StoredLogin {
    /// The account.
    pub account: ConsoleAccount,
    /// The Argon2id PHC string of its password.
    pub password_hash: String,
}

/// A session in force, found by its secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsoleSession {
    /// The account's name.
    pub account: String,
    /// The account's township.
    pub township: Option<String>,
    /// The token every form of the session carries.
    pub form_token: String,
}

type AccountRow = (
    String,
    Option<String>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    i32,
    Option<DateTime<Utc>>,
);

/// An [`AccountRow`] and the password hash.
type LoginRow = (
    String,
    Option<String>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    i32,
    Option<DateTime<Utc>>,
    String,
);

const ACCOUNT_COLUMNS: &str = "name, township, created_at, disabled_at, failed_attempts, locked_until";

fn account_of((name, township, created_at, disabled_at, failed, locked_until): AccountRow) -> ConsoleAccount {
    ConsoleAccount {
        name,
        township,
        created_at,
        disabled_at,
        lock: LockState {
            failed_attempts: u32::try_from(failed).unwrap_or(0),
            locked_until,
        },
    }
}

fn seconds(duration: TimeDelta) -> f64 {
    duration.as_seconds_f64()
}

impl Store {
    /// Stores a new account; [`StoreError::AlreadyExists`] when the name is taken (a disabled
    /// account's too: audit records keep naming it).
    pub async fn add_console_account(
        &self,
        name: &str,
        township: Option<&str>,
        password_hash: &str,
    ) -> Result<ConsoleAccount, StoreError> {
        let row: AccountRow = sqlx::query_as(&format!(
            "INSERT INTO console_accounts (name, role, township, password_hash)
             VALUES ($1, CASE WHEN $2::text IS NULL THEN 'county' ELSE 'township' END, $2, $3)
             RETURNING {ACCOUNT_COLUMNS}"
        ))
        .bind(name)
        .bind(township)
        .bind(password_hash)
        .fetch_one(self.pool())
        .await
        .map_err(StoreError::from_sqlx)?;
        Ok(account_of(row))
    }

    /// Every account, disabled ones too, by name.
    pub async fn console_accounts(&self) -> Result<Vec<ConsoleAccount>, StoreError> {
        let rows: Vec<AccountRow> = sqlx::query_as(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM console_accounts ORDER BY name"
        ))
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(account_of).collect())
    }

    /// The account `name` with its password hash, for a login attempt.
    pub async fn console_login_of(&self, name: &str) -> Result<Option<StoredLogin>, StoreError> {
        let row: Option<LoginRow> = sqlx::query_as(&format!(
            "SELECT {ACCOUNT_COLUMNS}, password_hash FROM console_accounts WHERE name = $1"
        ))
        .bind(name)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(
            |(name, township, created_at, disabled_at, failed, locked_until, password_hash)| StoredLogin {
                account: account_of((name, township, created_at, disabled_at, failed, locked_until)),
                password_hash,
            },
        ))
    }

    /// Records a login attempt on `name` with the right password or not: the lockout rule
    /// applied under the row lock, at the database's time. [`StoreError::NotFound`] if there is
    /// no such account.
    pub async fn record_console_login(&self, name: &str, password_ok: bool) -> Result<Attempt, StoreError> {
        let mut transaction = self.pool().begin().await?;
        let row: Option<(i32, Option<DateTime<Utc>>, DateTime<Utc>)> = sqlx::query_as(
            "SELECT failed_attempts, locked_until, now() FROM console_accounts WHERE name = $1 FOR UPDATE",
        )
        .bind(name)
        .fetch_optional(&mut *transaction)
        .await?;
        let Some((failed, locked_until, now)) = row else {
            return Err(StoreError::NotFound);
        };
        let before = LockState {
            failed_attempts: u32::try_from(failed).unwrap_or(0),
            locked_until,
        };
        let (after, attempt) = after_attempt(before, password_ok, now);
        if after != before {
            sqlx::query(
                "UPDATE console_accounts SET failed_attempts = $2, locked_until = $3 WHERE name = $1",
            )
            .bind(name)
            .bind(i32::try_from(after.failed_attempts).unwrap_or(i32::MAX))
            .bind(after.locked_until)
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        Ok(attempt)
    }

    /// Disables `name` and revokes its sessions: `Ok(true)` if it was enabled, `Ok(false)` if
    /// it was disabled already, [`StoreError::NotFound`] if there is none.
    pub async fn disable_console_account(&self, name: &str) -> Result<bool, StoreError> {
        let mut transaction = self.pool().begin().await?;
        let row: Option<(bool,)> = sqlx::query_as(
            "UPDATE console_accounts SET disabled_at = coalesce(disabled_at, now()) WHERE name = $1
             RETURNING disabled_at = now()",
        )
        .bind(name)
        .fetch_optional(&mut *transaction)
        .await?;
        let Some((newly,)) = row else {
            return Err(StoreError::NotFound);
        };
        revoke_sessions_of(&mut transaction, name).await?;
        transaction.commit().await?;
        Ok(newly)
    }

    /// Ends a lock on `name` and clears its count of wrong passwords; [`StoreError::NotFound`]
    /// if there is no such account.
    pub async fn unlock_console_account(&self, name: &str) -> Result<(), StoreError> {
        let updated = sqlx::query(
            "UPDATE console_accounts SET failed_attempts = 0, locked_until = NULL WHERE name = $1",
        )
        .bind(name)
        .execute(self.pool())
        .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Gives `name` a new password hash: its sessions are revoked and a lock ends (whoever set
    /// the password gave it to the account's holder). [`StoreError::NotFound`] if there is none.
    pub async fn set_console_password(&self, name: &str, password_hash: &str) -> Result<(), StoreError> {
        let mut transaction = self.pool().begin().await?;
        let updated = sqlx::query(
            "UPDATE console_accounts
             SET password_hash = $2, password_set_at = now(), failed_attempts = 0, locked_until = NULL
             WHERE name = $1",
        )
        .bind(name)
        .bind(password_hash)
        .execute(&mut *transaction)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        revoke_sessions_of(&mut transaction, name).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Opens a session of `account` for the secret with this SHA-256, ending `lifetime` from
    /// now; sessions of the account that ended long ago are deleted on the way.
    pub async fn open_console_session(
        &self,
        account: &str,
        secret_sha256: &[u8; 32],
        form_token: &str,
        lifetime: TimeDelta,
    ) -> Result<(), StoreError> {
        let mut transaction = self.pool().begin().await?;
        sqlx::query(
            "DELETE FROM console_sessions WHERE account = $1 AND expires_at < now() - interval '30 days'",
        )
        .bind(account)
        .execute(&mut *transaction)
        .await?;
        sqlx::query(
            "INSERT INTO console_sessions (secret_sha256, account, form_token, expires_at)
             VALUES ($1, $2, $3, now() + make_interval(secs => $4))",
        )
        .bind(&secret_sha256[..])
        .bind(account)
        .bind(form_token)
        .bind(seconds(lifetime))
        .execute(&mut *transaction)
        .await
        .map_err(StoreError::from_sqlx)?;
        transaction.commit().await?;
        Ok(())
    }

    /// The session in force whose secret has this SHA-256, noting that it is used now: `None`
    /// when there is none, it was revoked, it is past its lifetime, unused for longer than
    /// `idle`, or its account is disabled.
    pub async fn use_console_session(
        &self,
        secret_sha256: &[u8; 32],
        idle: TimeDelta,
    ) -> Result<Option<ConsoleSession>, StoreError> {
        let row: Option<(String, Option<String>, String)> = sqlx::query_as(
            "UPDATE console_sessions AS session SET last_seen_at = now()
             FROM console_accounts AS account
             WHERE session.secret_sha256 = $1 AND session.account = account.name
               AND session.revoked_at IS NULL AND account.disabled_at IS NULL
               AND session.expires_at > now()
               AND session.last_seen_at > now() - make_interval(secs => $2)
             RETURNING account.name, account.township, session.form_token",
        )
        .bind(&secret_sha256[..])
        .bind(seconds(idle))
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|(account, township, form_token)| ConsoleSession {
            account,
            township,
            form_token,
        }))
    }

    /// Revokes the session whose secret has this SHA-256 (logging out): whether one in force
    /// was revoked.
    pub async fn revoke_console_session(&self, secret_sha256: &[u8; 32]) -> Result<bool, StoreError> {
        let revoked = sqlx::query(
            "UPDATE console_sessions SET revoked_at = now() WHERE secret_sha256 = $1 AND revoked_at IS NULL",
        )
        .bind(&secret_sha256[..])
        .execute(self.pool())
        .await?;
        Ok(revoked.rows_affected() > 0)
    }
}

async fn revoke_sessions_of(connection: &mut sqlx::PgConnection, account: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE console_sessions SET revoked_at = now() WHERE account = $1 AND revoked_at IS NULL")
        .bind(account)
        .execute(connection)
        .await?;
    Ok(())
}
