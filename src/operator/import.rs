//! Registry import (being written).

use tonic::Status;

use crate::node::Node;
use crate::proto::operator as pb;

pub(super) async fn import_persons(
    _node: &Node,
    _request: pb::ImportPersonsRequest,
) -> Result<pb::ImportPersonsResponse, Status> {
    Err(Status::unimplemented("registry import is being written"))
}
