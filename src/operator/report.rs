//! The four indicators (being written).

use tonic::Status;

use crate::node::Node;
use crate::proto::operator as pb;

/// Placeholder until the report lands.
#[derive(Debug)]
pub struct Indicators;
/// Placeholder until the report lands.
#[derive(Debug)]
pub struct ReportPeriod;

pub(super) async fn report(_node: &Node, _request: pb::ReportRequest) -> Result<pb::ReportResponse, Status> {
    Err(Status::unimplemented("the report is being written"))
}
