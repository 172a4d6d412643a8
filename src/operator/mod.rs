//! The operator edge (`hancha.operator.v1`): what the CLI, township systems and the county's
//! other systems call. Every call first passes the gate ([`access`]): who the caller is (a
//! [`Principal`](crate::domain::policy::Principal) from its operator certificate, or the
//! loopback principal), the one access decision
//! ([`authorize`](crate::domain::policy::authorize)), the limit on person lookups; refusals and
//! reads of a person's data are audited. Handlers then convert, call the [`Node`] within the
//! caller's scope, and convert back; each area lives in its own file. Refusals are
//! [`Rejection`]s, turned into statuses by [`crate::status`] like the exchange's.

mod access;
mod agreements;
pub mod audit;
mod events;
mod import;
mod inquiries;
mod limiter;
mod logins;
mod notice_effects;
mod notices;
mod reconcile;
mod reminders;
mod report;
mod webhooks;

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::domain::policy::{OperatorAction, Principal, Rejection, RejectionCode};
use crate::node::Node;
use crate::proto::operator as pb;
use crate::proto::operator::operator_server::Operator;
use crate::status::{internal, status_of};

pub use access::{Listener, WebIdentity};
pub use inquiries::MAX_SWEEP_LISTED;
pub use report::{Indicators, ReportPeriod};

use access::{Caller, Gate};

/// Serves the operator API on behalf of one node.
#[derive(Clone, Debug)]
pub struct OperatorService {
    /// The node operated.
    node: Arc<Node>,
    /// Who may call, and how often they may look a person up.
    gate: Arc<Gate>,
}

impl OperatorService {
    /// A service for `node` behind `listener`: on [`Listener::Loopback`] a caller without a
    /// certificate is the county-wide loopback principal; on
    /// [`Listener::OperatorCertificates`] every caller is who its certificate names.
    pub fn new(node: Arc<Node>, listener: Listener) -> OperatorService {
        let gate = Arc::new(Gate::new(listener, &node));
        OperatorService { node, gate }
    }

    /// The same service for the HTTP/JSON edge: the same node and rules, person lookups
    /// counted with this service's, callers identified by the edge ([`WebIdentity`]).
    pub fn for_web(&self) -> OperatorService {
        OperatorService {
            node: Arc::clone(&self.node),
            gate: Arc::new(self.gate.sharing_limits(Listener::Web)),
        }
    }

    /// Audits the refusal of a call whose request the HTTP edge could not read (not JSON of
    /// the request message, too large), under the name and scope of `principal` like every
    /// refused operator call. `reason` passes the no-echo rule.
    pub async fn refuse_unreadable(
        &self,
        principal: Principal,
        action: OperatorAction,
        code: RejectionCode,
        reason: &str,
    ) {
        let caller = Caller {
            scope: principal.scope(),
            principal,
            action,
        };
        let reason = crate::domain::privacy::without_id_numbers(reason);
        let _ = caller
            .refuse(&self.node, Rejection::new(code, reason.into_owned()), None)
            .await;
    }

    /// The node served.
    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    async fn admit<T>(&self, request: &Request<T>, action: OperatorAction) -> Result<Caller, Status> {
        self.gate.admit(&self.node, request, action).await
    }
}

#[tonic::async_trait]
impl Operator for OperatorService {
    async fn ask(&self, request: Request<pb::AskRequest>) -> Result<Response<pb::AskResponse>, Status> {
        let caller = self.admit(&request, OperatorAction::Ask).await?;
        let result = inquiries::ask(&self.node, &caller, request.into_inner()).await;
        caller.settle(&self.node, result).await.map(Response::new)
    }

    async fn sweep(&self, request: Request<pb::SweepRequest>) -> Result<Response<pb::SweepResponse>, Status> {
        let caller = self.admit(&request, OperatorAction::Sweep).await?;
        let result = inquiries::sweep(&self.node, &caller, request.into_inner()).await;
        caller.settle(&self.node, result).await.map(Response::new)
    }

    async fn sweep_status(
        &self,
        request: Request<pb::SweepStatusRequest>,
    ) -> Result<Response<pb::SweepStatusResponse>, Status> {
        let caller = self.admit(&request, OperatorAction::SweepStatus).await?;
        let result = inquiries::sweep_status(&self.node, &caller, request.into_inner()).await;
        caller.settle(&self.node, result).await.map(Response::new)
    }

    async fn list_pending(
        &self,
        request: Request<pb::ListPendingRequest>,
    ) -> Result<Response<pb::ListPendingResponse>, Status> {
        let caller = self.admit(&request, OperatorAction::ListPending).await?;
        let result = inquiries::list_pending(&self.node, &caller, request.into_inner()).await;
        caller.settle(&self.node, result).await.map(Response::new)
    }

    async fn notify(
        &self,
        request: Request<pb::NotifyRequest>,
    ) -> Result<Response<pb::NotifyResponse>, Status> {
        let caller = self.admit(&request, OperatorAction::Notify).await?;
        let result = notices::notify(&self.node, &caller, request.into_inner()).await;
        caller.settle(&self.node, result).await.map(Response::new)
    }

    async fn feedback(
        &self,
        request: Request<pb::FeedbackRequest>,
    ) -> Result<Response<pb::FeedbackResponse>, Status> {
        let caller = self.admit(&request, OperatorAction::Feedback).await?;
        let result = notices::feedback(&self.node, &caller, request.into_inner()).await;
        caller.settle(&self.node, result).await.map(Response::new)
    }

    async fn show_notice(
        &self,
        request: Request<pb::ShowNoticeRequest>,
    ) -> Result<Response<pb::ShowNoticeResponse>, Status> {
        let caller = self.admit(&request, OperatorAction::ShowNotice).await?;
        if let Ok(id) = uuid::Uuid::parse_str(&request.get_ref().message_id) {
            crate::rpc_trace::record_message(&id, None);
        }
        let result = notices::show(&self.node, &caller, request.into_inner()).await;
        caller.settle(&self.node, result).await.map(Response::new)
    }

    async fn show_inquiry(
        &self,
        request: Request<pb::ShowInquiryRequest>,
    ) -> Result<Response<pb::ShowInquiryResponse>, Status> {
        let caller = self.admit(&request, OperatorAction::ShowInquiry).await?;
        if let Ok(id) = uuid::Uuid::parse_str(&request.get_ref().message_id) {
            crate::rpc_trace::record_message(&id, None);
        }
        let result = inquiries::show(&self.node, &caller, request.into_inner()).await;
        caller.settle(&self.node, result).await.map(Response::new)
    }

    async fn withdraw(
        &self,
        request: Request<pb::WithdrawRequest>,
    ) -> Result<Response<pb::WithdrawResponse>, Status> {
        let caller = self.admit(&request, OperatorAction::Withdraw).await?;
        if let Ok(id) = uuid::Uuid::parse_str(&request.get_ref().message_id) {
            crate::rpc_trace::record_message(&id, None);
        }
        let result = inquiries::withdraw(&self.node, &caller, request.into_inner()).await;
        caller.settle(&self.node, result).await.map(Response::new)
    }

    async fn answer(
        &self,
        request: Request<pb::AnswerRequest>,
    ) -> Result<Response<pb::AnswerResponse>, Status> {
        let caller = self.admit(&request, OperatorAction::Answer).await?;
        if let Ok(id) = uuid::Uuid::parse_str(&request.get_ref().message_id) {
            crate::rpc_trace::record_message(&id, None);
        }
        let result = inquiries::answer(&self.node, &caller, request.into_inner()).await;
        caller.settle(&self.node, result).await.map(Response::new)
    }

    async fn import_persons(
        &self,
        request: Request<pb::ImportPersonsRequest>,
    ) -> Result<Response<pb::ImportPersonsResponse>, Status> {
        let caller = self.admit(&request, OperatorAction::ImportPersons).await?;
        let result = import::import_persons(&self.node, &caller, request.into_inner()).await;
        caller.settle(&self.node, result).await.map(Response::new)
    }

    async fn registry_history(
        &self,
        request: Request<pb::RegistryHistoryRequest>,
    ) -> Result<Response<pb::RegistryHistoryResponse>, Status> {
        let caller = self.admit(&request, OperatorAction::RegistryHistory).await?;
        let result = notice_effects::history(&self.node, &caller, request.into_inner()).await;
        caller.settle(&self.node, result).await.map(Response::new)
    }

    async fn list_notices(
        &self,
        request: Request<pb::ListNoticesRequest>,
    ) -> Result<Response<pb::ListNoticesResponse>, Status> {
        let caller = self.admit(&request, OperatorAction::ListNotices).await?;
        let result = notice_effects::list(&self.node, &caller, request.into_inner()).await;
        caller.settle(&self.node, result).await.map(Response::new)
    }

    async fn apply_notice(
        &self,
        request: Request<pb::ApplyNoticeRequest>,
    ) -> Result<Response<pb::ApplyNoticeResponse>, Status> {
        let caller = self.admit(&request, OperatorAction::ApplyNotice).await?;
        if let Ok(id) = uuid::Uuid::parse_str(&request.get_ref().message_id) {
            crate::rpc_trace::record_message(&id, None);
        }
        let result = notice_effects::apply(&self.node, &caller, request.into_inner()).await;
        caller.settle(&self.node, result).await.map(Response::new)
    }

    async fn dismiss_notice(
        &self,
        request: Request<pb::DismissNoticeRequest>,
    ) -> Result<Response<pb::DismissNoticeResponse>, Status> {
        let caller = self.admit(&request, OperatorAction::DismissNotice).await?;
        if let Ok(id) = uuid::Uuid::parse_str(&request.get_ref().message_id) {
            crate::rpc_trace::record_message(&id, None);
        }
        let result = notice_effects::dismiss(&self.node, &caller, request.into_inner()).await;
        caller.settle(&self.node, result).await.map(Response::new)
    }

    async fn apply_agreement(
        &self,
        request: Request<pb::ApplyAgreementRequest>,
    ) -> Result<Response<pb::ApplyAgreementResponse>, Status> {
        let caller = self.admit(&request, OperatorAction::ApplyAgreement).await?;
        let result = agreements::apply(&self.node, &caller, request.into_inner()).await;
        caller.settle(&self.node, result).await.map(Response::new)
    }

    async fn retire_agreement(
        &self,
        request: Request<pb::RetireAgreementRequest>,
    ) -> Result<Response<pb::RetireAgreementResponse>, Status> {
        let caller = self.admit(&request, OperatorAction::RetireAgreement).await?;
        let result = agreements::retire(&self.node, &caller, request.into_inner()).await;
        caller.settle(&self.node, result).await.map(Response::new)
    }

    async fn list_agreements(
        &self,
        request: Request<pb::ListAgreementsRequest>,
    ) -> Result<Response<pb::ListAgreementsResponse>, Status> {
        let caller = self.admit(&request, OperatorAction::ListAgreements).await?;
        let result = agreements::list(&self.node).await;
        caller.settle(&self.node, result).await.map(Response::new)
    }

    async fn show_agreement(
        &self,
        request: Request<pb::ShowAgreementRequest>,
    ) -> Result<Response<pb::ShowAgreementResponse>, Status> {
        let caller = self.admit(&request, OperatorAction::ShowAgreement).await?;
        let result = agreements::show(&self.node, request.into_inner()).await;
        caller.settle(&self.node, result).await.map(Response::new)
    }

    async fn report(
        &self,
        request: Request<pb::ReportRequest>,
    ) -> Result<Response<pb::ReportResponse>, Status> {
        let caller = self.admit(&request, OperatorAction::Report).await?;
        let result = report::report(&self.node, &caller, request.into_inner()).await;
        caller.settle(&self.node, result).await.map(Response::new)
    }

    async fn issue_reminders(
        &self,
        request: Request<pb::IssueRemindersRequest>,
    ) -> Result<Response<pb::IssueRemindersResponse>, Status> {
        let caller = self.admit(&request, OperatorAction::IssueReminders).await?;
        let result = reminders::issue(&self.node, &caller, request.into_inner()).await;
        caller.settle(&self.node, result).await.map(Response::new)
    }

    type ReconcileStream =
        std::pin::Pin<Box<dyn futures::Stream<Item = Result<pb::ReconcileProgress, Status>> + Send>>;

    async fn reconcile(
        &self,
        request: Request<pb::ReconcileRequest>,
    ) -> Result<Response<Self::ReconcileStream>, Status> {
        let caller = self.admit(&request, OperatorAction::Reconcile).await?;
        let result = reconcile::reconcile(&self.node, &caller, request.into_inner()).await;
        let receiver = caller.settle(&self.node, result).await?;
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::UnboundedReceiverStream::new(receiver),
        )))
    }

    type WatchStream = std::pin::Pin<Box<dyn futures::Stream<Item = Result<pb::Event, Status>> + Send>>;

    async fn watch(&self, request: Request<pb::WatchRequest>) -> Result<Response<Self::WatchStream>, Status> {
        let caller = self.admit(&request, OperatorAction::Watch).await?;
        let result = events::watch(&self.node, &caller, request.into_inner()).await;
        let receiver = caller.settle(&self.node, result).await?;
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(receiver),
        )))
    }

    async fn list_reconcile_runs(
        &self,
        request: Request<pb::ListReconcileRunsRequest>,
    ) -> Result<Response<pb::ListReconcileRunsResponse>, Status> {
        let caller = self.admit(&request, OperatorAction::ListReconcileRuns).await?;
        let result = reconcile::list_runs(&self.node, request.into_inner()).await;
        caller.settle(&self.node, result).await.map(Response::new)
    }

    async fn list_reconcile_differences(
        &self,
        request: Request<pb::ListReconcileDifferencesRequest>,
    ) -> Result<Response<pb::ListReconcileDifferencesResponse>, Status> {
        let caller = self
            .admit(&request, OperatorAction::ListReconcileDifferences)
            .await?;
        let result = reconcile::list_differences(&self.node, &caller, request.into_inner()).await;
        caller.settle(&self.node, result).await.map(Response::new)
    }

    async fn verify_audit(
        &self,
        request: Request<pb::VerifyAuditRequest>,
    ) -> Result<Response<pb::VerifyAuditResponse>, Status> {
        let caller = self.admit(&request, OperatorAction::VerifyAudit).await?;
        let result = audit::verify(&self.node).await;
        caller.settle(&self.node, result).await.map(Response::new)
    }

    async fn audit_peers(
        &self,
        request: Request<pb::AuditPeersRequest>,
    ) -> Result<Response<pb::AuditPeersResponse>, Status> {
        let caller = self.admit(&request, OperatorAction::AuditPeers).await?;
        let result = audit::peers(&self.node).await;
        caller.settle(&self.node, result).await.map(Response::new)
    }

    async fn add_webhook(
        &self,
        request: Request<pb::AddWebhookRequest>,
    ) -> Result<Response<pb::AddWebhookResponse>, Status> {
        let caller = self.admit(&request, OperatorAction::AddWebhook).await?;
        let result = webhooks::add(&self.node, &caller, request.into_inner()).await;
        caller.settle(&self.node, result).await.map(Response::new)
    }

    async fn list_webhooks(
        &self,
        request: Request<pb::ListWebhooksRequest>,
    ) -> Result<Response<pb::ListWebhooksResponse>, Status> {
        let caller = self.admit(&request, OperatorAction::ListWebhooks).await?;
        let result = webhooks::list(&self.node).await;
        caller.settle(&self.node, result).await.map(Response::new)
    }

    async fn rotate_webhook_secret(
        &self,
        request: Request<pb::RotateWebhookSecretRequest>,
    ) -> Result<Response<pb::RotateWebhookSecretResponse>, Status> {
        let caller = self.admit(&request, OperatorAction::RotateWebhookSecret).await?;
        let result = webhooks::rotate(&self.node, &caller, request.into_inner()).await;
        caller.settle(&self.node, result).await.map(Response::new)
    }

    async fn remove_webhook(
        &self,
        request: Request<pb::RemoveWebhookRequest>,
    ) -> Result<Response<pb::RemoveWebhookResponse>, Status> {
        let caller = self.admit(&request, OperatorAction::RemoveWebhook).await?;
        let result = webhooks::remove(&self.node, &caller, request.into_inner()).await;
        caller.settle(&self.node, result).await.map(Response::new)
    }
}

/// `INVALID_ARGUMENT` with one field violation.
fn invalid(field: &str, description: impl Into<String>) -> Status {
    status_of(&Rejection::invalid_field(field, description))
}

/// A free-text field (a sweep key, an agreement id, a reason): 1 to `max_chars` characters, no
/// control characters but a line break. Checked before the text reaches the store, which cannot
/// hold a NUL and should not hold what a terminal would interpret.
fn free_text<'a>(field: &str, value: &'a str, max_chars: usize) -> Result<&'a str, Status> {
    let count = value.chars().count();
    if count == 0 || count > max_chars {
        return Err(invalid(field, format!("must be 1 to {max_chars} characters")));
    }
    if value.chars().any(|c| c.is_control() && c != '\n') {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(value)
}

/// A free-text field that names something (a sweep key): as [`free_text`], and on one line,
/// since it ends up in URLs, file names and HTTP headers.
fn one_line<'a>(field: &str, value: &'a str, max_chars: usize) -> Result<&'a str, Status> {
    let value = free_text(field, value, max_chars)?;
    if value.contains('\n') {
        return Err(invalid(field, "must be on one line (no line break)"));
    }
    Ok(value)
}

/// `NOT_FOUND`: the request names something this node does not hold.
fn not_found(reason: impl Into<String>) -> Status {
    status_of(&Rejection::new(RejectionCode::NotFound, reason))
}

/// `FAILED_PRECONDITION`: the request cannot be carried out in the node's present state.
fn failed_precondition(reason: impl Into<String>) -> Status {
    status_of(&Rejection::new(RejectionCode::FailedPrecondition, reason))
}
