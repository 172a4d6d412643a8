//! Operator calls about agreements: install a new version, list them, show one.

use chrono::Utc;
use tonic::Status;

use super::internal;
use crate::domain::agreement::Agreement;
use crate::node::Node;
use crate::proto::operator as pb;
use crate::store::agreements::StoredAgreement;

pub(super) async fn apply(
    node: &Node,
    request: pb::ApplyAgreementRequest,
) -> Result<pb::ApplyAgreementResponse, Status> {
    let agreement = Agreement::parse(&request.text).map_err(|errors| {
        let violations = errors
            .iter()
            .map(|e| crate::domain::message::FieldViolation::new(format!("text.{}", e.path), e.to_string()))
            .collect();
        let mut rejection = crate::domain::policy::Rejection::invalid(violations);
        rejection.reason = format!("not a valid agreement:\n{errors}");
        crate::exchange::status::status_of(&rejection)
    })?;
    let me = node.county();
    let Some(peer) = agreement.peer_of(me) else {
        return Err(Status::failed_precondition(format!(
            "agreement {} is between {} and {}; this node is {me}",
            agreement.id(),
            agreement.parties()[0],
            agreement.parties()[1]
        )));
    };
    let store = node.store();
    let installed = store.agreements().await.map_err(internal)?;
    if let Some(clash) = installed.iter().find(|a| {
        a.agreement_id == agreement.id()
            && a.version == agreement.version() as i32
            && a.hash != agreement.canonical_hash().as_str()
    }) {
        return Err(Status::failed_precondition(format!(
            "agreement {} version {} is already installed with hash {}; an amendment needs a higher version",
            clash.agreement_id,
            clash.version,
            &clash.hash[..12]
        )));
    }
    let new_version = store
        .install_agreement(&crate::node::stored_agreement(&agreement, peer))
        .await
        .map_err(internal)?;
    reload(node).await?;
    let info = info(node, &crate::node::stored_agreement(&agreement, peer));
    Ok(pb::ApplyAgreementResponse {
        agreement: Some(info),
        new_version,
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
        .ok_or_else(|| Status::not_found(format!("no agreement {}", request.id)))?;
    Ok(pb::ShowAgreementResponse {
        agreement: Some(info(node, stored)),
        text: stored.source_text.clone(),
    })
}

/// Puts the store's agreements in force on the node.
async fn reload(node: &Node) -> Result<(), Status> {
    let mut agreements = Vec::new();
    for stored in node.store().agreements().await.map_err(internal)? {
        if let Ok(agreement) = Agreement::parse(&stored.source_text) {
            agreements.push(agreement);
        }
    }
    node.replace_agreements(agreements);
    Ok(())
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
