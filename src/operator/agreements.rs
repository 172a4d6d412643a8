//! Operator calls about agreements: install a new version, retire one, list them (with where
//! each stands here and at the peer), show one.

use chrono::Utc;
use tonic::Status;

use super::access::Caller;
use super::{failed_precondition, internal, invalid, not_found};
use crate::domain::agreement::{self, Agreement, Problem, Stage};
use crate::domain::peer_status::ClockReading;
use crate::domain::policy::Rejection;
use crate::domain::time::china_date;
use crate::exchange::convert::timestamp_to_wire;
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
            refusal @ (InstallError::NotAParty { .. }
            | InstallError::NotAdmitted(_)
            | InstallError::Unsigned(_)) => failed_precondition(refusal.to_string()),
        })?;
    let (stored, new_version) = (installed.stored, installed.new_version);
    let info = info(node, &stored).await?;
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
    let peers = node.store().peer_statuses().await.map_err(internal)?;
    Ok(pb::ListAgreementsResponse {
        agreements: {
            let mut infos = Vec::with_capacity(installed.len());
            for stored in &installed {
                infos.push(info(node, stored).await?);
            }
            infos
        },
        peers: peers
            .into_iter()
            .map(|peer| pb::PeerStatusInfo {
                peer_county: peer.peer_county.to_string(),
                checked_at: Some(timestamp_to_wire(peer.checked_at)),
                software_version: peer.software_version,
                clock_offset_ms: peer.clock_offset_ms,
                clock_skewed: ClockReading {
                    offset_ms: peer.clock_offset_ms,
                    round_trip_ms: peer.round_trip_ms,
                }
                .skew_warning(node.limits().clock_skew_warning)
                .is_some(),
            })
            .collect(),
    })
}

/// Takes a version out of force, audited with the change; the peer hears of it at once.
pub(super) async fn retire(
    node: &Node,
    caller: &Caller,
    request: pb::RetireAgreementRequest,
) -> Result<pb::RetireAgreementResponse, Status> {
    if !agreement::well_formed_id(&request.id) {
        return Err(invalid("id", Problem::BadId.to_string()));
    }
    let access = crate::store::audit::OperatorAccess {
        reason: Some(format!("agreement {} version {}", request.id, request.version)),
        ..caller.access("retired")
    };
    let retired = node
        .retire_agreement(&request.id, request.version, &access)
        .await
        .map_err(internal)?
        .ok_or_else(|| {
            not_found(format!(
                "no version {} of an agreement with that id is installed",
                request.version
            ))
        })?;
    let installed = node.store().agreements().await.map_err(internal)?;
    let stored = installed
        .iter()
        .find(|a| a.agreement_id == request.id && a.version == i32::try_from(request.version).unwrap_or(-1))
        .ok_or_else(|| internal("the retired version is no longer stored"))?;
    let mut warnings = Vec::new();
    if node
        .agreements()
        .sending_with(retired.peer_county, Utc::now())
        .is_none()
    {
        warnings.push(format!(
            "no version of an agreement with {} is in force any more: nothing new can be sent to it or \
             taken from it until a new version is applied",
            retired.peer_county
        ));
    }
    Ok(pb::RetireAgreementResponse {
        agreement: Some(info(node, stored).await?),
        newly_retired: retired.newly,
        warnings,
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
        agreement: Some(info(node, stored).await?),
        text: stored.source_text.clone(),
    })
}

async fn info(node: &Node, stored: &StoredAgreement) -> Result<pb::AgreementInfo, Status> {
    let now = Utc::now();
    let parsed = Agreement::parse(&stored.source_text).ok();
    let state = node.agreement_signatures().applied(stored.state());
    let stage = parsed
        .as_ref()
        .map(|agreement| Stage::of(agreement, state, china_date(now)));
    let signatures = node
        .store()
        .agreement_signatures(&stored.agreement_id, &stored.hash)
        .await
        .map_err(internal)?
        .into_iter()
        .map(|signature| pb::AgreementSignatureInfo {
            county: signature.signer_county.to_string(),
            signed_at: Some(timestamp_to_wire(signature.signed_at)),
            cert_fingerprint: signature.cert_fingerprint,
            verified_at: Some(timestamp_to_wire(signature.verified_at)),
            outcome: signature.outcome,
        })
        .collect();
    let sending = node
        .agreements()
        .sending_with(stored.peer_county, now)
        .is_some_and(|agreement| agreement.canonical_hash().as_str() == stored.hash);
    Ok(pb::AgreementInfo {
        id: stored.agreement_id.clone(),
        version: u32::try_from(stored.version).unwrap_or(0),
        hash: stored.hash.clone(),
        peer_county: stored.peer_county.to_string(),
        valid_from: stored.valid_from.to_string(),
        valid_until: stored.valid_until.to_string(),
        in_force: stage == Some(Stage::InForce),
        summary: parsed.map(|a| a.summary()).unwrap_or_default(),
        stage: stage.map(Stage::as_str).unwrap_or("unreadable").to_string(),
        held_by_peer: match stored.held_by_peer {
            Some(true) => "yes",
            Some(false) => "no",
            None => "unknown",
        }
        .to_string(),
        sending,
        retired_at: stored.retired_at.map(timestamp_to_wire),
        signatures,
    })
}
