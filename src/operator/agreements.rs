//! Operator calls about agreements: install a new version, list them, show one.

use chrono::Utc;
use tonic::Status;

use super::access::Caller;
use super::{failed_precondition, internal, not_found};
use crate::domain::agreement::Agreement;
use crate::domain::policy::Rejection;
use crate::node::{InstallError, Node};
use crate::proto::operator as pb;
use crate::status::status_of;
use crate::store::agreements::StoredAgreement;

pub(super) async fn apply(
    node: &Node,
    caller: &Caller,
    request: pb::ApplyAgreementRequest,
) -> Result<pb::ApplyAgreementResponse, Status> {
    let agreement = Agreement::parse(&request.text).map_err(|errors| {
        let violations = errors
            .iter()
            .map(|e| crate::domain::message::FieldViolation::new(format!("text.{}", e.path), e.to_string()))
            .collect();
        let mut rejection = Rejection::invalid(violations);
        rejection.reason = format!("not a valid agreement:\n{errors}");
        status_of(&rejection)
    })?;
    // recorded before the agreement is installed: no change without its record
    let requested = crate::store::audit::OperatorAccess {
        reason: Some(format!(
            "agreement {} version {} to install",
            agreement.id(),
            agreement.version()
        )),
        ..caller.access("requested")
    };
    caller.audit(node, requested).await?;
    let installed = node
        .install_agreement(&agreement)
        .await
        .map_err(|error| match error {
            InstallError::Store(store) => internal(store),
            refusal @ (InstallError::NotAParty { .. } | InstallError::NotAdmitted(_)) => {
                failed_precondition(refusal.to_string())
            }
        })?;
    let (stored, new_version) = (installed.stored, installed.new_version);
    let info = info(node, &stored);
    let access = crate::store::audit::OperatorAccess {
        peer_county: Some(stored.peer_county.to_string()),
        reason: Some(format!(
            "agreement {} version {}{}",
            stored.agreement_id,
            stored.version,
            if new_version { "" } else { " (already installed)" }
        )),
        ..caller.access("applied")
    };
    caller.audit(node, access).await?;
    Ok(pb::ApplyAgreementResponse {
        agreement: Some(info),
        new_version,
        warnings: installed.warnings,
    })
}

pub(super) async fn list(node: &Node) -> Result<pb::ListAgreementsResponse, Status> {
    let installed = node.store().agreements().await.map_err(internal)?;
    Ok(pb::ListAgreementsResponse {
        agreements: installed.iter().map(|a| info(node, a)).collect(),
    })
}

pub(super) async fn show(
    node: &Node,
    request: pb::ShowAgreementRequest,
) -> Result<pb::ShowAgreementResponse, Status> {
    let installed = node.store().agreements().await.map_err(internal)?;
    // Newest version first (the store orders by version descending), or an exact hash.
    let stored = installed
        .iter()
        .find(|a| a.agreement_id == request.id || a.hash == request.id)
        .ok_or_else(|| not_found("no agreement with that id or hash is installed"))?;
    Ok(pb::ShowAgreementResponse {
        agreement: Some(info(node, stored)),
        text: stored.source_text.clone(),
    })
}

fn info(node: &Node, stored: &StoredAgreement) -> pb::AgreementInfo {
    let book = node.agreements();
    let in_force = book
        .current_versions()
        .any(|a| a.canonical_hash().as_str() == stored.hash && a.is_valid_at(Utc::now()));
    let summary = Agreement::parse(&stored.source_text)
        .map(|a| a.summary())
        .unwrap_or_default();
    pb::AgreementInfo {
        id: stored.agreement_id.clone(),
        version: u32::try_from(stored.version).unwrap_or(0),
        hash: stored.hash.clone(),
        peer_county: stored.peer_county.to_string(),
        valid_from: stored.valid_from.to_string(),
        valid_until: stored.valid_until.to_string(),
        in_force,
        summary,
    }
}
