//! Nothing personal leaves in a refusal, on every RPC there is.
//!
//! The list of RPCs and of their string fields comes from the compiled descriptors, so an RPC
//! or a field added later is covered without editing this test. Every string field of every
//! exchange and operator request (nested messages, repeated fields and map keys and values
//! included) gets an ID-shaped value, one field at a time and all at once; the requests go over
//! the real listeners (the exchange with a county's certificate over mutual TLS, the operator
//! API on loopback), raw, as any gRPC client of any language would send them. No status
//! message, error detail, response, audit row, personal column or log line (at debug level) may
//! then contain the value.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BufMut};
use common::*;
use prost::Message;
use prost_types::field_descriptor_proto::Type;
use prost_types::{DescriptorProto, FileDescriptorSet};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{Request, Status};

/// ID-shaped values that fail validation: a birth date of 30 February, and a wrong check
/// character; and one that passes, which must not be echoed either where it does not belong.
const VALUES: [&str; 3] = ["431322198902300042", "11010519491231002X", "110105194912310021"];

/// How deep nested messages are filled (the exchange's deepest request is three levels).
const MAX_DEPTH: usize = 5;

// --- a codec of raw bytes, as a client without generated code would send ---

#[derive(Clone, Copy, Default)]
struct RawCodec;

struct RawEncoder;
struct RawDecoder;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let mut out = Vec::with_capacity(src.remaining());
        while src.has_remaining() {
            let chunk = src.chunk();
            out.extend_from_slice(chunk);
            let read = chunk.len();
            src.advance(read);
        }
        Ok(Some(out))
    }
}

// --- the descriptors: every RPC and every string field of its request ---

struct Rpc {
    /// `/hancha.exchange.v1.Exchange/SubmitInquiry`.
    path: String,
    /// The fully qualified request type, with its leading dot.
    input: String,
    exchange: bool,
}

struct Descriptors {
    messages: HashMap<String, DescriptorProto>,
    rpcs: Vec<Rpc>,
}

fn descriptors() -> Descriptors {
    let set = FileDescriptorSet::decode(hancha::proto::FILE_DESCRIPTOR_SET).expect("descriptors decode");
    let mut messages = HashMap::new();
    let mut rpcs = Vec::new();
    fn collect(prefix: &str, message: &DescriptorProto, into: &mut HashMap<String, DescriptorProto>) {
        let name = format!("{prefix}.{}", message.name());
        for nested in &message.nested_type {
            collect(&name, nested, into);
        }
        into.insert(name, message.clone());
    }
    for file in &set.file {
        let package = format!(".{}", file.package());
        for message in &file.message_type {
            collect(&package, message, &mut messages);
        }
        for service in &file.service {
            let exchange = match file.package() {
                "hancha.exchange.v1" => true,
                "hancha.operator.v1" => false,
                _ => continue,
            };
            for method in &service.method {
                rpcs.push(Rpc {
                    path: format!("/{}.{}/{}", file.package(), service.name(), method.name()),
                    input: method.input_type().to_owned(),
                    exchange,
                });
            }
        }
    }
    Descriptors { messages, rpcs }
}

/// Every string field reachable in `message`, as paths of field numbers.
fn string_paths(descriptors: &Descriptors, message: &str, depth: usize) -> Vec<Vec<i32>> {
    let mut paths = Vec::new();
    if depth > MAX_DEPTH {
        return paths;
    }
    for field in &descriptors.messages[message].field {
        match field.r#type() {
            Type::String => paths.push(vec![field.number()]),
            Type::Message => {
                for mut inner in string_paths(descriptors, field.type_name(), depth + 1) {
                    inner.insert(0, field.number());
                    paths.push(inner);
                }
            }
            _ => {}
        }
    }
    paths
}

/// The protobuf encoding of `message` with `value` in every string field whose path `chosen`
/// accepts (the path so far is `at`); `None` when nothing in it was chosen.
fn encode(
    descriptors: &Descriptors,
    message: &str,
    at: &[i32],
    chosen: &dyn Fn(&[i32]) -> bool,
    value: &str,
    depth: usize,
) -> Option<Vec<u8>> {
    if depth > MAX_DEPTH {
        return None;
    }
    let mut out = Vec::new();
    for field in &descriptors.messages[message].field {
        let path: Vec<i32> = at.iter().copied().chain([field.number()]).collect();
        let body = match field.r#type() {
            Type::String if chosen(&path) => value.as_bytes().to_vec(),
            Type::Message => match encode(descriptors, field.type_name(), &path, chosen, value, depth + 1) {
                Some(inner) => inner,
                None => continue,
            },
            _ => continue,
        };
        // one element of a repeated field is enough; a map entry is a message of key and value
        prost::encoding::encode_key(
            u32::try_from(field.number()).unwrap(),
            prost::encoding::WireType::LengthDelimited,
            &mut out,
        );
        prost::encoding::encode_varint(body.len() as u64, &mut out);
        out.extend_from_slice(&body);
    }
    (!out.is_empty()).then_some(out)
}

// --- what came back ---

/// Everything a call let the caller see: the status message and details, the trailers, and
/// every response message.
async fn call(channel: Channel, path: &str, request: Vec<u8>) -> Vec<u8> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("the channel is ready");
    let route = PathAndQuery::try_from(path.to_owned()).unwrap();
    let requests = futures::stream::iter([request]);
    let mut seen = Vec::new();
    let record_status = |status: &Status, seen: &mut Vec<u8>| {
        seen.extend_from_slice(status.message().as_bytes());
        seen.extend_from_slice(status.details());
        for entry in status.metadata().iter() {
            if let tonic::metadata::KeyAndValueRef::Ascii(_, value) = entry {
                seen.extend_from_slice(value.as_encoded_bytes());
            }
        }
    };
    let outcome = tokio::time::timeout(Duration::from_secs(20), async {
        match grpc.streaming(Request::new(requests), route, RawCodec).await {
            Err(status) => record_status(&status, &mut seen),
            Ok(response) => {
                let mut stream = response.into_inner();
                loop {
                    match stream.message().await {
                        Ok(Some(message)) => seen.extend_from_slice(&message),
                        Ok(None) => break,
                        Err(status) => {
                            record_status(&status, &mut seen);
                            break;
                        }
                    }
                }
            }
        }
    })
    .await;
    assert!(outcome.is_ok(), "{path:?} did not answer within 20 s");
    seen
}

// --- the log, captured at debug level ---

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_the_log() -> Captured {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    captured
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_value_is_echoed_by_any_rpc_in_any_string_field() {
    let log = capture_the_log();
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], &[open_agreement(DINGCHENG, XINHUA)]).await;
    let descriptors = descriptors();
    assert!(
        descriptors.rpcs.iter().filter(|rpc| rpc.exchange).count() >= 5
            && descriptors.rpcs.iter().filter(|rpc| !rpc.exchange).count() >= 10,
        "the descriptors list the exchange and the operator API"
    );

    let mut calls = 0;
    let mut fields = 0;
    for rpc in &descriptors.rpcs {
        let paths = string_paths(&descriptors, &rpc.input, 0);
        fields += paths.len();
        for value in VALUES {
            let mut requests: Vec<Vec<u8>> = paths
                .iter()
                .filter_map(|path| {
                    encode(
                        &descriptors,
                        &rpc.input,
                        &[],
                        &|at| at == path.as_slice(),
                        value,
                        0,
                    )
                })
                .collect();
            if let Some(all) = encode(&descriptors, &rpc.input, &[], &|_| true, value, 0) {
                requests.push(all);
            }
            for request in requests {
                let channel = if rpc.exchange {
                    cluster.channel(DINGCHENG, XINHUA).await
                } else {
                    Channel::from_shared(format!("http://{}", cluster.operator_address(XINHUA)))
                        .unwrap()
                        .connect()
                        .await
                        .expect("connect to the operator API")
                };
                let seen = call(channel, &rpc.path, request).await;
                calls += 1;
                assert!(
                    !String::from_utf8_lossy(&seen).contains(value),
                    "{} echoed a request value: {}",
                    rpc.path,
                    String::from_utf8_lossy(&seen)
                );
            }
        }
    }
    assert!(fields >= 30, "only {fields} string fields found");
    eprintln!(
        "{calls} calls over {} RPCs and {fields} string fields",
        descriptors.rpcs.len()
    );

    let responder = common::database(cluster.node(XINHUA).store()).await;
    for value in VALUES {
        let pattern = format!("%{value}%");
        let in_audit: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log a WHERE a::text LIKE $1")
            .bind(&pattern)
            .fetch_one(&responder)
            .await
            .unwrap();
        assert_eq!(in_audit, 0, "an audit row holds {value}");
        for listed in hancha::store::personal::PERSONAL_COLUMNS {
            let sql = format!(
                "SELECT count(*) FROM {} WHERE {}::text LIKE $1",
                listed.table, listed.column
            );
            let stored: i64 = sqlx::query_scalar(&sql)
                .bind(&pattern)
                .fetch_one(&responder)
                .await
                .unwrap();
            assert_eq!(stored, 0, "{}.{} holds {value}", listed.table, listed.column);
        }
    }
    let logged = String::from_utf8_lossy(&log.0.lock().unwrap()).into_owned();
    assert!(
        logged.contains("DEBUG") || logged.contains("INFO"),
        "the log was captured"
    );
    for value in VALUES {
        let line = logged.lines().find(|line| line.contains(value));
        assert!(line.is_none(), "a log line holds {value}: {line:?}");
    }
}
