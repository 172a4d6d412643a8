//! The operator edge (`hancha.operator.v1`): what the CLI, township systems and the county's
//! other systems call. Handlers convert, call the [`Node`], and convert back; each area lives in
//! its own file. Refusals are [`Rejection`]s, turned into statuses by [`crate::status`] like the
//! exchange's.

mod agreements;
mod import;
mod inquiries;
mod reconcile;
mod report;

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::domain::policy::{Rejection, RejectionCode};
use crate::node::Node;
use crate::proto::operator as pb;
use crate::proto::operator::operator_server::Operator;
use crate::status::{internal, status_of};

pub use report::{Indicators, ReportPeriod};

/// Serves the operator API on behalf of one node.
#[derive(Clone, Debug)]
pub struct OperatorService {
    /// The node operated.
    node: Arc<Node>,
}

impl OperatorService {
    /// A service for `node`.
    pub fn new(node: Arc<Node>) -> OperatorService {
        OperatorService { node }
    }
}

#[tonic::async_trait]
impl Operator for OperatorService {
    async fn ask(&self, request: Request<pb::AskRequest>) -> Result<Response<pb::AskResponse>, Status> {
        inquiries::ask(&self.node, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn sweep(&self, request: Request<pb::SweepRequest>) -> Result<Response<pb::SweepResponse>, Status> {
        inquiries::sweep(&self.node, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn sweep_status(
        &self,
        request: Request<pb::SweepStatusRequest>,
    ) -> Result<Response<pb::SweepStatusResponse>, Status> {
        inquiries::sweep_status(&self.node, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn list_pending(
        &self,
        request: Request<pb::ListPendingRequest>,
    ) -> Result<Response<pb::ListPendingResponse>, Status> {
        inquiries::list_pending(&self.node, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn show_inquiry(
        &self,
        request: Request<pb::ShowInquiryRequest>,
    ) -> Result<Response<pb::ShowInquiryResponse>, Status> {
        inquiries::show(&self.node, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn answer(
        &self,
        request: Request<pb::AnswerRequest>,
    ) -> Result<Response<pb::AnswerResponse>, Status> {
        inquiries::answer(&self.node, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn import_persons(
        &self,
        request: Request<pb::ImportPersonsRequest>,
    ) -> Result<Response<pb::ImportPersonsResponse>, Status> {
        import::import_persons(&self.node, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn apply_agreement(
        &self,
        request: Request<pb::ApplyAgreementRequest>,
    ) -> Result<Response<pb::ApplyAgreementResponse>, Status> {
        agreements::apply(&self.node, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn list_agreements(
        &self,
        _request: Request<pb::ListAgreementsRequest>,
    ) -> Result<Response<pb::ListAgreementsResponse>, Status> {
        agreements::list(&self.node).await.map(Response::new)
    }

    async fn show_agreement(
        &self,
        request: Request<pb::ShowAgreementRequest>,
    ) -> Result<Response<pb::ShowAgreementResponse>, Status> {
        agreements::show(&self.node, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn report(
        &self,
        request: Request<pb::ReportRequest>,
    ) -> Result<Response<pb::ReportResponse>, Status> {
        report::report(&self.node, request.into_inner())
            .await
            .map(Response::new)
    }

    type ReconcileStream =
        std::pin::Pin<Box<dyn futures::Stream<Item = Result<pb::ReconcileProgress, Status>> + Send>>;

    async fn reconcile(
        &self,
        request: Request<pb::ReconcileRequest>,
    ) -> Result<Response<Self::ReconcileStream>, Status> {
        let receiver = reconcile::reconcile(&self.node, request.into_inner())?;
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::UnboundedReceiverStream::new(receiver),
        )))
    }

    async fn list_reconcile_runs(
        &self,
        request: Request<pb::ListReconcileRunsRequest>,
    ) -> Result<Response<pb::ListReconcileRunsResponse>, Status> {
        reconcile::list_runs(&self.node, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn list_reconcile_differences(
        &self,
        request: Request<pb::ListReconcileDifferencesRequest>,
    ) -> Result<Response<pb::ListReconcileDifferencesResponse>, Status> {
        reconcile::list_differences(&self.node, request.into_inner())
            .await
            .map(Response::new)
    }
}

/// `INVALID_ARGUMENT` with one field violation.
fn invalid(field: &str, description: impl Into<String>) -> Status {
    status_of(&Rejection::invalid_field(field, description))
}

/// `NOT_FOUND`: the request names something this node does not hold.
fn not_found(reason: impl Into<String>) -> Status {
    status_of(&Rejection::new(RejectionCode::NotFound, reason))
}

/// `FAILED_PRECONDITION`: the request cannot be carried out in the node's present state.
fn failed_precondition(reason: impl Into<String>) -> Status {
    status_of(&Rejection::new(RejectionCode::FailedPrecondition, reason))
}
