//! The peer client: how this node reaches a peer county, domain in, domain out. The node never
//! sees the wire; a test can stand in for the peer by implementing the traits here.

pub mod reconcile;
