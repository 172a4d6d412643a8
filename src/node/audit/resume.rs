//! Resuming the chain after a restore: the signed statement peers accept once.

use chrono::{SubsecRound, Utc};

use super::sign;
use crate::domain::audit_chain::{ResumeStatement, Signed};
use crate::domain::privacy::without_id_numbers;
use crate::store::{Store, StoreError};
use crate::tls::CountyKey;
use crate::tls::signing::{AUDIT_RESUME_PURPOSE, SignError};

/// Why a resume statement was not made.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    /// No checkpoint at the position asked for (or none at all).
    #[error("no checkpoint {0} in this database")]
    NoCheckpoint(String),
    /// The checkpoint does not match the chain: verify first.
    #[error("checkpoint {0} does not match the chain in this database; run `hancha audit verify`")]
    OffChain(u64),
    /// Signing failed.
    #[error(transparent)]
    Signing(#[from] SignError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// After a restore from backup (or a failover that lost the newest records): signs and stores
/// the statement that the chain continues from checkpoint `from` (the newest, when `None`),
/// with an audit record of it by `principal`. Peers accept the rewound history on the strength
/// of it, once.
pub async fn resume_chain(
    store: &Store,
    key: &CountyKey,
    from: Option<u64>,
    reason: &str,
    principal: &str,
) -> Result<Signed<ResumeStatement>, ResumeError> {
    let checkpoint = store
        .audit_checkpoint(from)
        .await?
        .filter(|checkpoint| from.is_none_or(|position| checkpoint.body.point.position == position))
        .ok_or_else(|| {
            ResumeError::NoCheckpoint(from.map_or("at all".into(), |p| format!("at position {p}")))
        })?;
    let point = checkpoint.body.point;
    if store.audit_head_at(point.position).await? != Some(point.head) {
        return Err(ResumeError::OffChain(point.position));
    }
    let statement = ResumeStatement {
        county: key.county().as_str().to_string(),
        from: point,
        signed_at: Utc::now().trunc_subsecs(0),
        reason: without_id_numbers(reason).into_owned(),
    };
    let signature = sign(
        key,
        AUDIT_RESUME_PURPOSE,
        &statement.county,
        &statement.signed_bytes(),
        statement.signed_at,
    )?;
    let resume = Signed {
        body: statement,
        signature,
    };
    store.add_audit_resume(&resume, principal).await?;
    Ok(resume)
}
