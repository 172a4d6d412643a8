//! API tokens of the HTTP/JSON operator API (migration 0018): only each token's SHA-256 is
//! stored, with its name and township; the token itself is never held.

use chrono::{DateTime, Utc};

use super::{Store, StoreError};

/// One API token as stored (never the token itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiToken {
    /// Its name, which audit records name as the principal.
    pub name: String,
    /// The township office it acts for; `None`: the whole county.
    pub township: Option<String>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
    /// When a request last presented it.
    pub last_used_at: Option<DateTime<Utc>>,
}

type Row = (
    String,
    Option<String>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
);

fn token_of((name, township, created_at, revoked_at, last_used_at): Row) -> ApiToken {
    ApiToken {
        name,
        township,
        created_at,
        revoked_at,
        last_used_at,
    }
}

impl Store {
    /// Stores a new token by the SHA-256 of its secret; [`StoreError::AlreadyExists`] when the
    /// name is taken (a revoked token's name too: audit records keep naming it).
    pub async fn add_api_token(
        &self,
        name: &str,
        township: Option<&str>,
        sha256: &[u8; 32],
    ) -> Result<ApiToken, StoreError> {
        let row: Row = sqlx::query_as(
            "INSERT INTO api_tokens (name, township, token_sha256) VALUES ($1, $2, $3)
             RETURNING name, township, created_at, revoked_at, last_used_at",
        )
        .bind(name)
        .bind(township)
        .bind(&sha256[..])
        .fetch_one(self.pool())
        .await
        .map_err(StoreError::from_sqlx)?;
        Ok(token_of(row))
    }

    /// Every token, revoked ones too, by name.
    pub async fn api_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT name, township, created_at, revoked_at, last_used_at FROM api_tokens ORDER BY name",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(token_of).collect())
    }

    /// Revokes the token `name`: `Ok(true)` if it was in force, `Ok(false)` if it was revoked
    /// already, [`StoreError::NotFound`] if there is none.
    pub async fn revoke_api_token(&self, name: &str) -> Result<bool, StoreError> {
        let row: Option<(bool,)> = sqlx::query_as(
            "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE name = $1
             RETURNING revoked_at = now()",
        )
        .bind(name)
        .fetch_optional(self.pool())
        .await?;
        row.map(|(newly,)| newly).ok_or(StoreError::NotFound)
    }

    /// The token in force whose secret has this SHA-256, noting that it was used now; `None`
    /// for an unknown or revoked token.
    pub async fn use_api_token(&self, sha256: &[u8; 32]) -> Result<Option<ApiToken>, StoreError> {
        let row: Option<Row> = sqlx::query_as(
            "UPDATE api_tokens SET last_used_at = now()
             WHERE token_sha256 = $1 AND revoked_at IS NULL
             RETURNING name, township, created_at, revoked_at, last_used_at",
        )
        .bind(&sha256[..])
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(token_of))
    }
}
