//! Who is calling the operator API and whether they may: the [`Principal`] read from the
//! verified client certificate (or the loopback listener), the one decision
//! ([`authorize`]), the per-principal limit on person lookups, and the audit record of every
//! refusal and of every action that reads or changes a person's data.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tonic::{Request, Status};
use tracing::{debug, error, info};
use uuid::Uuid;

use super::limiter::LookupLimiter;
use crate::domain::policy::{OperatorAction, Principal, Rejection, RejectionCode, Scope, authorize};
use crate::domain::privacy::without_id_numbers;
use crate::node::Node;
use crate::status::{code_name, internal, status_of};
use crate::store::audit::OperatorAccess;
use crate::tls::operator_from_certificate;

/// Refusals of unidentified callers audited per minute, node-wide.
const UNIDENTIFIED_AUDITS_PER_MINUTE: u32 = 60;

/// How callers reach the operator listener, which decides who a caller without a certificate
/// is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    /// Plaintext on loopback: whoever is on the node's machine, county-wide.
    Loopback,
    /// Mutual TLS with operator certificates: a caller is who its certificate names.
    OperatorCertificates,
    /// The HTTP/JSON edge (`crate::web`): a caller is who the edge found it to be (an API
    /// token, or the loopback principal on a loopback web listener without `require_login`),
    /// handed over as a [`WebIdentity`].
    Web,
}

/// Who the HTTP/JSON edge found a request to come from, or why it found nobody. The edge puts
/// it into the `tonic::Request`'s extensions, which nothing on the wire can set (gRPC metadata
/// are headers, not extensions), and only a gate of [`Listener::Web`] reads it: a gRPC caller
/// cannot claim a token's identity.
#[derive(Clone, Debug)]
pub struct WebIdentity(Result<Principal, Rejection>);

impl WebIdentity {
    /// For the HTTP edge only.
    pub(crate) fn new(identity: Result<Principal, Rejection>) -> WebIdentity {
        WebIdentity(identity)
    }
}

/// The gate every operator call passes first.
#[derive(Debug)]
pub(super) struct Gate {
    /// How callers reach the listener.
    listener: Listener,
    /// Person lookups per principal, shared by the node's operator gates (gRPC and HTTP).
    lookups: Arc<LookupLimiter>,
    /// Audit records of callers nobody could identify, shared by the gates: anyone who reaches
    /// a listener can be refused, but not fill the append-only audit log; past the limit a
    /// refusal is only logged.
    unidentified: Arc<LookupLimiter>,
}

/// A caller that passed the gate: who it is, what it asked to do and within which scope.
#[derive(Clone, Debug)]
pub(super) struct Caller {
    /// Who.
    pub principal: Principal,
    /// What its work covers for this action (from [`authorize`]).
    pub scope: Scope,
    /// The action it was admitted for.
    pub action: OperatorAction,
}

impl Gate {
    /// A gate for `listener`, limiting person lookups as the node's `[limits]` say.
    pub(super) fn new(listener: Listener, node: &Node) -> Gate {
        let limits = node.limits();
        Gate {
            listener,
            lookups: Arc::new(LookupLimiter::new(
                limits.lookups_per_principal,
                limits.lookup_window,
            )),
            unidentified: Arc::new(LookupLimiter::new(
                UNIDENTIFIED_AUDITS_PER_MINUTE,
                Duration::from_secs(60),
            )),
        }
    }

    /// A gate for `listener` counting person lookups with this one: a principal reaching the
    /// node by both gRPC and HTTP has one limit.
    pub(super) fn sharing_limits(&self, listener: Listener) -> Gate {
        Gate {
            listener,
            lookups: Arc::clone(&self.lookups),
            unidentified: Arc::clone(&self.unidentified),
        }
    }

    /// Identifies the caller of `request`, decides whether it may do `action`, and counts a
    /// person lookup against its limit. Every refusal is audited.
    pub(super) async fn admit<T>(
        &self,
        node: &Node,
        request: &Request<T>,
        action: OperatorAction,
    ) -> Result<Caller, Status> {
        let principal = match self.principal_of(node, request) {
            Ok(principal) => principal,
            Err(rejection) => return Err(self.refuse_unidentified(node, action, &rejection).await),
        };
        let scope = match authorize(&principal, action) {
            Ok(scope) => scope,
            Err(rejection) => {
                let caller = Caller {
                    scope: principal.scope(),
                    principal,
                    action,
                };
                return Err(caller.refuse(node, rejection, None).await);
            }
        };
        let caller = Caller {
            principal,
            scope,
            action,
        };
        if action.is_person_lookup() {
            let key = format!("{}:{}", caller.principal.role().as_str(), caller.principal.name());
            if let Err(over) = self.lookups.take(&key, Instant::now()) {
                let rejection = Rejection::new(
                    RejectionCode::ResourceExhausted,
                    format!(
                        "too many person lookups: {} {} may make {}; try again in {}",
                        caller.principal.role().as_str(),
                        caller.principal.name(),
                        self.lookups.describe(),
                        humantime::format_duration(std::time::Duration::from_secs(
                            over.retry_after.as_secs_f64().ceil() as u64
                        ))
                    ),
                );
                return Err(caller.refuse(node, rejection, None).await);
            }
        }
        Ok(caller)
    }

    /// Refuses a caller nobody could identify (`principal` `unidentified`), audited up to
    /// [`UNIDENTIFIED_AUDITS_PER_MINUTE`] node-wide and only logged past that.
    pub(super) async fn refuse_unidentified(
        &self,
        node: &Node,
        action: OperatorAction,
        rejection: &Rejection,
    ) -> Status {
        let access = OperatorAccess {
            principal: "unidentified".into(),
            scope: "none".into(),
            action: action.as_str().into(),
            outcome: "refused".into(),
            reason: Some(rejection.audit_reason()),
            ..OperatorAccess::default()
        };
        if self.unidentified.take("unidentified", Instant::now()).is_err() {
            debug!(action = %access.action, "unidentified operator call refused (not audited: over the limit)");
            return status_of(rejection);
        }
        refuse(node, access, rejection).await
    }

    /// The principal a request comes from: the operator its verified certificate names, the
    /// loopback principal for a caller of the loopback listener, or on the web listener whom
    /// the HTTP edge identified (and nobody else: a gate of another listener never reads a
    /// [`WebIdentity`]).
    fn principal_of<T>(&self, node: &Node, request: &Request<T>) -> Result<Principal, Rejection> {
        let unauthenticated = |reason: String| Rejection::new(RejectionCode::Unauthenticated, reason);
        if self.listener == Listener::Web {
            return match request.extensions().get::<WebIdentity>() {
                Some(WebIdentity(identity)) => identity.clone(),
                None => Err(unauthenticated("no API token".into())),
            };
        }
        let leaf = request.peer_certs().and_then(|chain| chain.first().cloned());
        match (leaf, self.listener) {
            (Some(leaf), _) => {
                let identity =
                    operator_from_certificate(&leaf).map_err(|error| unauthenticated(error.to_string()))?;
                Principal::operator(&identity.name, node.county(), identity.township.as_deref())
            }
            (None, Listener::Loopback) => Ok(Principal::loopback(node.county())),
            (None, Listener::OperatorCertificates | Listener::Web) => {
                Err(unauthenticated("no verified operator certificate".into()))
            }
        }
    }
}

impl Caller {
    /// An audit record of this caller's action with `outcome`; add the message, the peer and
    /// counts with struct update syntax.
    pub(super) fn access(&self, outcome: &str) -> OperatorAccess {
        OperatorAccess {
            principal: self.principal.name().to_string(),
            scope: self.scope.to_string(),
            action: self.action.as_str().to_string(),
            outcome: outcome.to_string(),
            ..OperatorAccess::default()
        }
    }

    /// Writes `access` before anything it describes reaches the caller: if the record cannot be
    /// written, the caller gets `INTERNAL` instead of the data.
    pub(super) async fn audit(&self, node: &Node, access: OperatorAccess) -> Result<(), Status> {
        node.store()
            .append_operator_access(&access)
            .await
            .map_err(internal)
    }

    /// Refuses with `rejection`, audited (naming `message_id` if the refusal concerns one).
    pub(super) async fn refuse(&self, node: &Node, rejection: Rejection, message_id: Option<Uuid>) -> Status {
        let access = OperatorAccess {
            message_id,
            reason: Some(rejection.audit_reason()),
            ..self.access("refused")
        };
        audited(refuse(node, access, &rejection).await)
    }

    /// The end of every admitted call: a refusal the handler returned is audited here, unless
    /// the handler already audited it with more to say ([`Caller::refuse`],
    /// [`Caller::not_yours`]). So every refused operator call is a record, whichever check
    /// refused it. A failure of ours (`INTERNAL`) is not a refusal: it is logged where it
    /// happened.
    pub(super) async fn settle<R>(&self, node: &Node, result: Result<R, Status>) -> Result<R, Status> {
        let Err(mut status) = result else {
            return result;
        };
        if status.metadata_mut().remove(AUDITED).is_some() || status.code() == tonic::Code::Internal {
            return Err(status);
        }
        let access = OperatorAccess {
            reason: Some(format!("{}: {}", code_name(status.code()), status.message())),
            ..self.access("refused")
        };
        if let Err(failure) = node.store().append_operator_access(&access).await {
            error!(%failure, "cannot audit a refused operator call");
        }
        Err(status)
    }

    /// The township a listing is narrowed to ([`Scope::narrow`]), given the one the request
    /// asked for; a township office asking for another is refused and audited.
    pub(super) async fn narrowed(
        &self,
        node: &Node,
        requested: Option<crate::domain::division::TownshipCode>,
    ) -> Result<Option<crate::domain::division::TownshipCode>, Status> {
        match self.scope.narrow(requested) {
            Ok(township) => Ok(township),
            Err(rejection) => Err(self.refuse(node, rejection, None).await),
        }
    }

    /// `NOT_FOUND` for an inquiry outside this caller's township, worded exactly like the one
    /// for an inquiry that does not exist (a township office is not told that it exists), and
    /// audited for what it is.
    pub(super) async fn not_yours(&self, node: &Node, message_id: Uuid) -> Status {
        let access = OperatorAccess {
            message_id: Some(message_id),
            reason: Some(format!(
                "{}: the inquiry's subject is not of this principal's township",
                RejectionCode::NotFound.as_str()
            )),
            ..self.access("refused")
        };
        let rejection = Rejection::new(RejectionCode::NotFound, no_inquiry(message_id));
        audited(refuse(node, access, &rejection).await)
    }
}

/// Marks a status whose refusal is already audited, for [`Caller::settle`] (which removes the
/// mark before the status leaves).
const AUDITED: &str = "x-hancha-audited";

fn audited(mut status: Status) -> Status {
    status
        .metadata_mut()
        .insert(AUDITED, tonic::metadata::MetadataValue::from_static("1"));
    status
}

/// What a caller is told about an inquiry it cannot see: the one wording for "no such inquiry".
pub(super) fn no_inquiry(message_id: Uuid) -> String {
    format!("no inquiry {message_id}")
}

/// Audits a refusal and returns its status; a refusal whose record cannot be written is still
/// refused (and the failure logged).
async fn refuse(node: &Node, access: OperatorAccess, rejection: &Rejection) -> Status {
    info!(
        principal = %access.principal,
        scope = %access.scope,
        action = %access.action,
        reason = %without_id_numbers(&rejection.reason),
        "operator call refused"
    );
    if let Err(failure) = node.store().append_operator_access(&access).await {
        error!(%failure, "cannot audit a refused operator call");
    }
    status_of(rejection)
}
