//! The county systems' webhook endpoints: register, list, rotate the signing secret, remove.
//! A secret is returned once, when it is made, and otherwise shown only by fingerprint; audit
//! records name the endpoint's id and host, never its path (it may hold the receiver's token)
//! nor a secret.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use tonic::Status;

use super::access::Caller;
use super::{internal, invalid, not_found};
use crate::domain::division::TownshipCode;
use crate::domain::event::parse_types;
use crate::domain::webhook::{SigningSecret, WebhookUrl};
use crate::exchange::convert::timestamp_to_wire;
use crate::node::Node;
use crate::proto::operator as pb;
use crate::store::StoreError;
use crate::store::audit::OperatorAccess;
use crate::store::webhooks::{NewWebhook, WebhookEndpoint};

/// How long the old secrets sign on after a rotation, unless the operator says otherwise.
pub const DEFAULT_OVERLAP: Duration = Duration::from_secs(24 * 60 * 60);

/// The longest overlap accepted: a secret being replaced should not outlive a month.
const MAX_OVERLAP: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// Attempts shown per endpoint in a listing.
const ATTEMPTS_SHOWN: i64 = 5;

/// Registers an endpoint; its delivery starts at the event stream's head.
pub(super) async fn add(
    node: &Node,
    caller: &Caller,
    request: pb::AddWebhookRequest,
) -> Result<pb::AddWebhookResponse, Status> {
    let url = WebhookUrl::parse(request.url.trim()).map_err(|reason| invalid("url", reason))?;
    let event_types = match request.event_types.is_empty() {
        true => Vec::new(),
        false => parse_types(&request.event_types)
            .map_err(|error| invalid("event_types", error.to_string()))?
            .into_iter()
            .map(|kind| kind.as_str().to_string())
            .collect(),
    };
    let township = match request.township.trim() {
        "" => None,
        text => Some(
            TownshipCode::parse_within(text, node.county())
                .map_err(|error| invalid("township", error.to_string()))?,
        ),
    };
    let secret = secret_of(&request.secret)?;
    let cursor = node.store().event_head().await.map_err(internal)?;
    let id = node
        .store()
        .add_webhook(&NewWebhook {
            url: url.as_string(),
            event_types: event_types.clone(),
            township: township.map(|t| t.as_str().to_string()),
            created_by: caller.principal.name().to_string(),
            secret: secret.expose().to_string(),
            cursor,
        })
        .await
        .map_err(internal)?;
    let access = OperatorAccess {
        reason: Some(format!(
            "webhook {id} to {}, events {}, {}, from position {cursor}, secret {}",
            url.authority(),
            if event_types.is_empty() {
                "all".to_string()
            } else {
                event_types.join(",")
            },
            township.map_or_else(|| "county".to_string(), |t| format!("township {t}")),
            secret.fingerprint()
        )),
        ..caller.access("added")
    };
    caller.audit(node, access).await?;
    Ok(pb::AddWebhookResponse {
        webhook: Some(one(node, id).await?),
        secret: secret.expose().to_string(),
    })
}

/// The endpoints with their delivery state.
pub(super) async fn list(node: &Node) -> Result<pb::ListWebhooksResponse, Status> {
    let head = node.store().event_head().await.map_err(internal)?;
    let mut webhooks = Vec::new();
    for endpoint in node.store().list_webhooks().await.map_err(internal)? {
        webhooks.push(wire(node, endpoint).await?);
    }
    Ok(pb::ListWebhooksResponse {
        webhooks,
        head: u64::try_from(head).unwrap_or_default(),
    })
}

/// A new secret for an endpoint; the old ones sign on until the overlap ends.
pub(super) async fn rotate(
    node: &Node,
    caller: &Caller,
    request: pb::RotateWebhookSecretRequest,
) -> Result<pb::RotateWebhookSecretResponse, Status> {
    let id = id_of(request.id)?;
    let overlap = match request.overlap_seconds {
        0 => DEFAULT_OVERLAP,
        seconds if Duration::from_secs(seconds) <= MAX_OVERLAP => Duration::from_secs(seconds),
        _ => {
            return Err(invalid(
                "overlap_seconds",
                format!(
                    "at most {}: a secret being replaced should not outlive a month",
                    humantime::format_duration(MAX_OVERLAP)
                ),
            ));
        }
    };
    let secret = secret_of(&request.secret)?;
    let until = Utc::now() + TimeDelta::from_std(overlap).unwrap_or(TimeDelta::MAX);
    match node
        .store()
        .rotate_webhook_secret(id, secret.expose(), until)
        .await
    {
        Ok(()) => {}
        Err(StoreError::NotFound) => return Err(not_found(no_webhook(id))),
        Err(other) => return Err(internal(other)),
    }
    let access = OperatorAccess {
        reason: Some(format!(
            "webhook {id}: new secret {}, the old ones sign until {}",
            secret.fingerprint(),
            until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )),
        ..caller.access("rotated")
    };
    caller.audit(node, access).await?;
    Ok(pb::RotateWebhookSecretResponse {
        webhook: Some(one(node, id).await?),
        secret: secret.expose().to_string(),
        old_secrets_expire_at: Some(timestamp_to_wire(until)),
    })
}

/// Stops delivery to an endpoint.
pub(super) async fn remove(
    node: &Node,
    caller: &Caller,
    request: pb::RemoveWebhookRequest,
) -> Result<pb::RemoveWebhookResponse, Status> {
    let id = id_of(request.id)?;
    let url = match node.store().remove_webhook(id).await {
        Ok(url) => url,
        Err(StoreError::NotFound) => return Err(not_found(no_webhook(id))),
        Err(other) => return Err(internal(other)),
    };
    let host = WebhookUrl::parse(&url).map_or_else(|_| "?".to_string(), |url| url.authority().to_string());
    let access = OperatorAccess {
        reason: Some(format!("webhook {id} to {host}")),
        ..caller.access("removed")
    };
    caller.audit(node, access).await?;
    Ok(pb::RemoveWebhookResponse { url })
}

fn id_of(id: u64) -> Result<i64, Status> {
    match i64::try_from(id) {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(invalid("id", "a webhook id, as `hancha webhooks list` shows it")),
    }
}

fn no_webhook(id: i64) -> String {
    format!("no webhook {id} (see `hancha webhooks list`)")
}

/// The secret given, checked, or a new one.
fn secret_of(given: &str) -> Result<SigningSecret, Status> {
    match given.trim() {
        "" => Ok(SigningSecret::generate()),
        text => SigningSecret::parse(text).map_err(|reason| invalid("secret", reason)),
    }
}

async fn one(node: &Node, id: i64) -> Result<pb::Webhook, Status> {
    let endpoint = node
        .store()
        .list_webhooks()
        .await
        .map_err(internal)?
        .into_iter()
        .find(|endpoint| endpoint.id == id)
        .ok_or_else(|| not_found(no_webhook(id)))?;
    wire(node, endpoint).await
}

async fn wire(node: &Node, endpoint: WebhookEndpoint) -> Result<pb::Webhook, Status> {
    let secrets = node
        .store()
        .webhook_secrets(endpoint.id)
        .await
        .map_err(internal)?
        .into_iter()
        .map(|stored| pb::WebhookSecret {
            fingerprint: SigningSecret::parse(&stored.secret)
                .map_or_else(|_| "unreadable".to_string(), |secret| secret.fingerprint()),
            created_at: Some(timestamp_to_wire(stored.created_at)),
            expires_at: stored.expires_at.map(timestamp_to_wire),
        })
        .collect();
    let recent_attempts = node
        .store()
        .webhook_attempts(endpoint.id, ATTEMPTS_SHOWN)
        .await
        .map_err(internal)?
        .into_iter()
        .map(|attempt| pb::WebhookAttempt {
            position: u64::try_from(attempt.position).unwrap_or_default(),
            at: Some(timestamp_to_wire(attempt.at)),
            result: attempt.result,
            status: attempt
                .status
                .and_then(|s| u32::try_from(s).ok())
                .unwrap_or_default(),
            error: attempt.error.unwrap_or_default(),
            elapsed_ms: u32::try_from(attempt.elapsed_ms).unwrap_or_default(),
        })
        .collect();
    Ok(pb::Webhook {
        id: u64::try_from(endpoint.id).unwrap_or_default(),
        url: endpoint.url,
        event_types: endpoint.event_types,
        township: endpoint.township.unwrap_or_default(),
        created_at: Some(timestamp_to_wire(endpoint.created_at)),
        created_by: endpoint.created_by,
        cursor: u64::try_from(endpoint.cursor).unwrap_or_default(),
        delivered: u64::try_from(endpoint.delivered).unwrap_or_default(),
        attempts: u32::try_from(endpoint.attempts).unwrap_or_default(),
        next_attempt_at: Some(timestamp_to_wire(endpoint.next_attempt_at)),
        failing_since: endpoint.failing_since.map(timestamp_to_wire),
        last_status: endpoint
            .last_status
            .and_then(|s| u32::try_from(s).ok())
            .unwrap_or_default(),
        last_error: endpoint.last_error.unwrap_or_default(),
        last_success_at: endpoint.last_success_at.map(timestamp_to_wire),
        secrets,
        recent_attempts,
    })
}
