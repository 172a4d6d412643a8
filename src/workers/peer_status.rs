//! The peer-status worker: one per peer county, telling the peer which agreement versions this
//! node holds and learning which it holds ([`Node::record_peer_status`]), with both clocks. It
//! runs on start (connect), every `limits.peer_status_interval`, and at once when the versions
//! we hold change or a peer held one of our messages for a version mismatch.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tracing::{debug, instrument};

use super::Step;
use crate::domain::delivery::CallFailure;
use crate::domain::division::CountyCode;
use crate::domain::peer_status::ClockReading;
use crate::node::Node;
use crate::peer::PeerLink;
use crate::store::StoreError;

/// Exchanges status with one peer.
#[derive(Debug)]
pub struct PeerStatusWorker {
    /// The node speaking.
    node: Arc<Node>,
    /// The peer it speaks to.
    peer: CountyCode,
    /// How the peer is reached (the link the delivery worker uses).
    link: Arc<dyn PeerLink>,
}

impl PeerStatusWorker {
    /// A worker for `peer` over `link`.
    pub fn new(node: Arc<Node>, peer: CountyCode, link: Arc<dyn PeerLink>) -> PeerStatusWorker {
        PeerStatusWorker { node, peer, link }
    }

    /// One exchange: our status out, the peer's recorded. A peer that cannot be reached is not
    /// an error of this node; it is returned as the failure.
    #[instrument(skip_all, fields(peer = %self.peer))]
    pub async fn run_once(&self) -> Result<Result<ClockReading, CallFailure>, StoreError> {
        if self.node.agreements().with_peer(self.peer).next().is_none() {
            // nothing to tell a county we hold no agreement with, and it would refuse us
            return Ok(Err(CallFailure::Failed(format!(
                "no agreement with {}",
                self.peer
            ))));
        }
        let ours = self.node.status_for(self.peer).await?;
        let sent = Utc::now();
        let theirs = match self.link.peer_status(&ours).await {
            Ok(theirs) => theirs,
            Err(failure) => {
                debug!(error = %failure.describe(), "peer status not exchanged");
                return Ok(Err(failure));
            }
        };
        let clock = ClockReading::round_trip(sent, Utc::now(), theirs.clock);
        self.node.record_peer_status(self.peer, &theirs, clock).await?;
        // the peer answers: should its circuit be open, it closes without waiting for the probe
        self.node.peer_reached(self.peer).await?;
        Ok(Ok(clock))
    }

    /// [`run_once`](Self::run_once) as a loop step: the next exchange after the interval, or
    /// sooner (the longest retry delay at most) while the peer cannot be reached.
    pub async fn step(&self) -> Result<Step, StoreError> {
        let limits = self.node.limits();
        let pause = match self.run_once().await? {
            Ok(_) => limits.peer_status_interval,
            Err(_) => limits
                .peer_status_interval
                .min(limits.retry_max)
                .min(RETRY_UNREACHABLE),
        };
        Ok(Step::Idle(pause))
    }
}

/// How soon a peer that could not be reached is asked again for its status.
const RETRY_UNREACHABLE: Duration = Duration::from_secs(10);
