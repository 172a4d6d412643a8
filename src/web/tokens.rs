//! API tokens: how the county's systems authenticate to the HTTP/JSON API. A token is `hct_`
//! and 32 random bytes (base64url); the node stores only its SHA-256 (`crate::store::api_tokens`),
//! so it is shown once, when made. A request presents it as `Authorization: Bearer <token>` and
//! becomes a [`Principal`] of [`Role::Token`](crate::domain::policy::Role::Token), named and
//! scoped by the token, for the same gate as every other operator call. Tokens are never logged.

use std::sync::Arc;

use axum::http::{HeaderMap, header};
use base64::Engine;
use sha2::{Digest, Sha256};
use tonic::Status;

use crate::domain::policy::{Principal, Rejection, RejectionCode};
use crate::node::Node;
use crate::status::internal;

/// What every token starts with, so that secret scanners and people recognise one.
pub const PREFIX: &str = "hct_";

/// A new token: [`PREFIX`] and 32 bytes from the operating system's random source.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::Rng::fill(&mut rand::rng(), &mut bytes);
    format!(
        "{PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// What the store keeps of a token.
pub fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Finds out who calls the web listener.
#[derive(Clone, Debug)]
pub struct Identify {
    /// The node, for its county and its tokens.
    pub node: Arc<Node>,
    /// Whether a request without a token is refused (otherwise it is the loopback principal:
    /// only on a loopback listener, which the configuration enforces).
    pub login_required: bool,
}

impl Identify {
    /// Who `headers` say the caller is: `Ok(Err(_))` names why nobody (for the gate to refuse
    /// and audit), `Err` a failure of ours (the token store cannot be read).
    pub async fn identify(&self, headers: &HeaderMap) -> Result<Result<Principal, Rejection>, Status> {
        let unauthenticated = |reason: &str| Err(Rejection::new(RejectionCode::Unauthenticated, reason));
        let county = self.node.county();
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            if self.login_required {
                return Ok(unauthenticated(
                    "an API token is required: send Authorization: Bearer <token> (made with `hancha tokens add`)",
                ));
            }
            return Ok(Ok(Principal::loopback(county)));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|text| text.strip_prefix("Bearer "))
            .map(str::trim);
        let Some(token) = token.filter(|token| !token.is_empty()) else {
            return Ok(unauthenticated(
                "the Authorization header must be `Bearer <token>`",
            ));
        };
        let Some(stored) = self
            .node
            .store()
            .use_api_token(&digest(token))
            .await
            .map_err(internal)?
        else {
            return Ok(unauthenticated("unknown or revoked API token"));
        };
        Ok(Principal::token(&stored.name, county, stored.township.as_deref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_stored_by_digest_only() {
        let (one, two) = (new_token(), new_token());
        assert_ne!(one, two);
        assert!(one.starts_with(PREFIX));
        assert_eq!(one.len(), PREFIX.len() + 43);
        assert_ne!(digest(&one), digest(&two));
        assert_eq!(digest(&one), digest(&one.clone()));
    }
}
