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
const VALUES: [&str; 3] = ["431322198902300042", VALID_ID, "110105194912310021"];

/// The one of [`VALUES`] that is a valid ID number.
const VALID_ID: &str = "11010519491231002X";

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

/// What goes into one string field: `fill(path, parent field name, field name)`, `None` to
/// leave it out. An enum field is filled with its first named value when `fill` gives it
/// anything (a valid request names its kind, its outcome, its set).
type Fill<'a> = dyn Fn(&[i32], &str, &str) -> Option<String> + 'a;

/// The protobuf encoding of `message` with every string field `fill` gives a value (the path
/// so far is `at`, reached through the field named `parent`); `None` when nothing in it was
/// filled.
fn encode(
    descriptors: &Descriptors,
    message: &str,
    at: &[i32],
    parent: &str,
    fill: &Fill<'_>,
    depth: usize,
) -> Option<Vec<u8>> {
    if depth > MAX_DEPTH {
        return None;
    }
    let mut out = Vec::new();
    for field in &descriptors.messages[message].field {
        let path: Vec<i32> = at.iter().copied().chain([field.number()]).collect();
        let body = match field.r#type() {
            Type::String => match fill(&path, parent, field.name()) {
                Some(text) => text.into_bytes(),
                None => continue,
            },
            Type::Message => match encode(
                descriptors,
                field.type_name(),
                &path,
                field.name(),
                fill,
                depth + 1,
            ) {
                Some(inner) => inner,
                None => continue,
            },
            Type::Enum if fill(&path, parent, ENUM).is_some() => {
                prost::encoding::encode_key(
                    u32::try_from(field.number()).unwrap(),
                    prost::encoding::WireType::Varint,
                    &mut out,
                );
                prost::encoding::encode_varint(1, &mut out);
                continue;
            }
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

/// The name [`encode`] asks `fill` about for an enum field.
const ENUM: &str = "<enum>";

/// Valid values for the string fields of the requests, by field name (and the name of the
/// field holding it), so that a request with one field overwritten gets past every other check
/// and reaches the one validating that field.
struct Valid {
    /// The peer county the requests name.
    peer: &'static str,
    /// An agreement both test nodes hold, and its hash.
    agreement: (String, String),
    /// An inquiry waiting at 新化县 for an operator's answer.
    pending: String,
    /// A valid ID number that is none of [`VALUES`].
    resident_id: String,
    /// A township of 新化县.
    township: String,
    /// The agreement's text.
    text: String,
}

impl Valid {
    fn value(&self, parent: &str, name: &str) -> Option<String> {
        let fresh = || uuid::Uuid::now_v7().to_string();
        Some(match (parent, name) {
            ("agreement", "id") => self.agreement.0.clone(),
            ("agreement", "hash") => self.agreement.1.clone(),
            ("fields", "key") => "marital_status".into(),
            ("fields", "value") => "married".into(),
            ("columns", "key") => "name".into(),
            ("columns", "value") => "测试".into(),
            // a certificate number is free text: a value there is valid, and stored
            (_, "certificate_number") => return None,
            (_, "to_county" | "with_county") => self.peer.into(),
            (_, "peer_county" | "author_county") => self.peer.into(),
            (_, "kind") => "certificate_verification".into(),
            (_, "resident_id") => self.resident_id.clone(),
            (_, "township") => self.township.clone(),
            (_, "period") => "2026Q4".into(),
            (_, "outcome") => "found".into(),
            (_, "sweep_key") => "no-echo-sweep".into(),
            (_, "text") => self.text.clone(),
            (_, "occurred_on") => "2026-11-01".into(),
            (_, "id") => self.agreement.0.clone(),
            // the operator API's message ids name an inquiry held here; the exchange's are new
            (_, ENUM) => "1".into(),
            ("", "message_id") => self.pending.clone(),
            (_, "message_id" | "inquiry_id" | "run_id" | "message_ids") => fresh(),
            _ => return None,
        })
    }
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
                    // the event stream never ends by itself: what it sent within a few quiet
                    // seconds is what it shows
                    let next = if path.ends_with("/Watch") {
                        match tokio::time::timeout(Duration::from_secs(3), stream.message()).await {
                            Ok(next) => next,
                            Err(_) => break,
                        }
                    } else {
                        stream.message().await
                    };
                    match next {
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

/// The process's log at debug level, captured once for every test of this file.
fn capture_the_log() -> &'static Captured {
    static LOG: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    LOG.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .init();
        captured
    })
}

/// Sends every RPC of `rpcs` every [`VALUES`] value in every string field — alone, in an
/// otherwise valid request, and everywhere at once — over a channel from `connect` (given
/// whether the RPC is the exchange's), and asserts that nothing the caller sees holds it.
/// Returns the calls made and the string fields found.
async fn send_everywhere<F, Fut>(
    descriptors: &Descriptors,
    rpcs: &[&Rpc],
    valid: &Valid,
    connect: F,
) -> (usize, usize)
where
    F: Fn(bool) -> Fut,
    Fut: std::future::Future<Output = Channel>,
{
    let mut calls = 0;
    let mut fields = 0;
    for rpc in rpcs {
        let paths = string_paths(descriptors, &rpc.input, 0);
        fields += paths.len();
        for value in VALUES {
            let mut requests: Vec<Vec<u8>> = Vec::new();
            for path in &paths {
                let alone = |at: &[i32], _: &str, _: &str| (at == path.as_slice()).then(|| value.to_owned());
                requests.extend(encode(descriptors, &rpc.input, &[], "", &alone, 0));
                // a valid value where it is valid is stored: only refused values are checked
                if value != VALID_ID {
                    let in_a_valid_request = |at: &[i32], parent: &str, name: &str| {
                        // in a free-text field the value is valid, and kept
                        if at == path.as_slice() && name != "certificate_number" {
                            Some(value.to_owned())
                        } else {
                            valid.value(parent, name)
                        }
                    };
                    requests.extend(encode(descriptors, &rpc.input, &[], "", &in_a_valid_request, 0));
                }
            }
            let everywhere = |_: &[i32], _: &str, _: &str| Some(value.to_owned());
            requests.extend(encode(descriptors, &rpc.input, &[], "", &everywhere, 0));
            for request in requests {
                let seen = call(connect(rpc.exchange).await, &rpc.path, request).await;
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
    (calls, fields)
}

/// Asserts that no audit row, no personal column of `store`'s database and no log line holds
/// any of [`VALUES`].
async fn assert_nothing_kept(store: &hancha::store::Store) {
    let database = common::database(store).await;
    for value in VALUES {
        let pattern = format!("%{value}%");
        let in_audit: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log a WHERE a::text LIKE $1")
            .bind(&pattern)
            .fetch_one(&database)
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
                .fetch_one(&database)
                .await
                .unwrap();
            assert_eq!(stored, 0, "{}.{} holds {value}", listed.table, listed.column);
        }
    }
    let logged = String::from_utf8_lossy(&capture_the_log().0.lock().unwrap()).into_owned();
    assert!(
        logged.contains("DEBUG") || logged.contains("INFO"),
        "the log was captured"
    );
    for value in VALUES {
        let line = logged.lines().find(|line| line.contains(value));
        assert!(line.is_none(), "a log line holds {value}: {line:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_value_is_echoed_by_any_rpc_in_any_string_field() {
    capture_the_log();
    let agreement = answered_by_hand(DINGCHENG, XINHUA, XINHUA);
    let cluster = Cluster::start(&[DINGCHENG, XINHUA], std::slice::from_ref(&agreement)).await;
    let descriptors = descriptors();
    let agreement_id = format!("{DINGCHENG}-{XINHUA}");
    let asked = cluster
        .node(DINGCHENG)
        .ask(
            hancha::domain::division::CountyCode::parse(XINHUA).unwrap(),
            hancha::node::InquiryDraft {
                kind: hancha::domain::vocabulary::InquiryKind::CertificateVerification,
                priority: hancha::domain::vocabulary::Priority::Normal,
                subject: hancha::domain::message::Subject {
                    resident_id: synthetic_id(XINHUA, 5),
                    certificate_number: None,
                },
                message_id: None,
            },
            Duration::from_secs(2),
        )
        .await
        .expect("asked");
    let valid = Valid {
        peer: DINGCHENG,
        agreement: (
            agreement_id.clone(),
            cluster.agreement_hash(DINGCHENG, &agreement_id),
        ),
        pending: asked.message_id.to_string(),
        resident_id: synthetic_id(XINHUA, 6).as_str().to_owned(),
        township: hancha::domain::division::townships_of(
            hancha::domain::division::CountyCode::parse(XINHUA).unwrap(),
        )[0]
        .to_string(),
        text: agreement.clone(),
    };
    assert!(
        descriptors.rpcs.iter().filter(|rpc| rpc.exchange).count() >= 5
            && descriptors.rpcs.iter().filter(|rpc| !rpc.exchange).count() >= 10,
        "the descriptors list the exchange and the operator API"
    );
    let every_rpc: Vec<&Rpc> = descriptors.rpcs.iter().collect();
    let (calls, fields) = send_everywhere(&descriptors, &every_rpc, &valid, |exchange| {
        let cluster = &cluster;
        async move {
            if exchange {
                cluster.channel(DINGCHENG, XINHUA).await
            } else {
                Channel::from_shared(format!("http://{}", cluster.operator_address(XINHUA)))
                    .unwrap()
                    .connect()
                    .await
                    .expect("connect to the operator API")
            }
        }
    })
    .await;
    assert!(fields >= 30, "only {fields} string fields found");
    eprintln!(
        "{calls} calls over {} RPCs and {fields} string fields",
        descriptors.rpcs.len()
    );
    assert_nothing_kept(cluster.node(XINHUA).store()).await;
}

/// The same for a township office's clerk over the operator API's mutual TLS: the refusals of
/// its scope (county-wide work, another township) echo nothing either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_township_office_is_refused_without_any_echo_too() {
    capture_the_log();
    let offices = TownshipOffices::start().await;
    let descriptors = descriptors();
    let agreement_id = format!("{DINGCHENG}-{XINHUA}");
    let valid = Valid {
        peer: XINHUA,
        agreement: (
            agreement_id.clone(),
            offices.cluster.agreement_hash(DINGCHENG, &agreement_id),
        ),
        pending: offices.inquiry_a.to_string(),
        resident_id: synthetic_id(XINHUA, 6).as_str().to_owned(),
        township: offices.township_a.to_string(),
        text: answered_by_hand(DINGCHENG, XINHUA, DINGCHENG),
    };
    let clerk = offices.township_operator("no-echo-clerk", &[&offices.township_a.to_string()]);
    let operator_rpcs: Vec<&Rpc> = descriptors.rpcs.iter().filter(|rpc| !rpc.exchange).collect();
    let (calls, _) = send_everywhere(&descriptors, &operator_rpcs, &valid, |_| offices.channel(&clerk)).await;
    eprintln!("{calls} calls as a township office");
    assert_nothing_kept(offices.cluster.node(DINGCHENG).store()).await;
}
