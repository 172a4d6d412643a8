//! The generated gRPC code: the only module that holds prost/tonic types from `proto/`.
//! Conversions to and from the domain live in the edges that use them.

#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// `hancha.exchange.v1`: the peer exchange between county nodes.
pub mod exchange {
    tonic::include_proto!("hancha.exchange.v1");
}

/// `hancha.operator.v1`: the operator API of one node.
pub mod operator {
    tonic::include_proto!("hancha.operator.v1");
    include!(concat!(env!("OUT_DIR"), "/hancha.operator.v1.serde.rs"));
}

/// The encoded file descriptor set of every hancha API (tests walk it to reach every RPC).
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("hancha_descriptor");

/// The descriptors of the peer exchange alone: what reflection on the peer listener shows.
pub const EXCHANGE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("exchange_descriptor");

/// The descriptors of the operator API alone: what reflection on the operator listener shows.
pub const OPERATOR_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("operator_descriptor");
