//! The OpenAPI 3 document of the HTTP/JSON API, made from one source: the compiled proto
//! descriptors of `hancha.operator.v1` (with their comments, which become descriptions). Schemas
//! follow the proto3 JSON mapping the routes speak (pbjson): lowerCamelCase names, 64-bit
//! integers as strings, Timestamps as RFC 3339 date-time strings, enums by name, repeated fields
//! as arrays, maps as objects. `hancha openapi` prints it; the node serves it at
//! `/openapi.json`; `docs/openapi.json` is the committed copy (a test keeps it current).

use std::collections::BTreeMap;

use anyhow::Context;
use prost::Message;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FieldDescriptorProto, FileDescriptorProto, FileDescriptorSet};
use serde_json::{Map, Value, json};

use super::api::{METHODS, STREAMING};

/// The operator API's package.
const PACKAGE: &str = "hancha.operator.v1";

/// The HTTP statuses an operation may refuse with, and when.
const ERRORS: [(&str, &str); 9] = [
    (
        "400",
        "INVALID_ARGUMENT (field violations name the fields), FAILED_PRECONDITION or OUT_OF_RANGE; or a body that is not JSON of the request message",
    ),
    (
        "401",
        "UNAUTHENTICATED: no API token, or an unknown or revoked one",
    ),
    (
        "403",
        "PERMISSION_DENIED: outside the token's scope (a township token and another township's data)",
    ),
    ("404", "NOT_FOUND"),
    ("409", "ALREADY_EXISTS or ABORTED"),
    ("413", "the request body is too large"),
    (
        "429",
        "RESOURCE_EXHAUSTED: too many person lookups; try again later",
    ),
    ("500", "INTERNAL: a failure of the node (the cause is in its log)"),
    (
        "503",
        "UNAVAILABLE: the node or its peer cannot take the call now",
    ),
];

/// The document as pretty JSON with a final newline, as `hancha openapi` prints it.
pub fn document() -> anyhow::Result<String> {
    let mut text = serde_json::to_string_pretty(&document_value()?)?;
    text.push('\n');
    Ok(text)
}

/// The document.
pub fn document_value() -> anyhow::Result<Value> {
    let set = FileDescriptorSet::decode(crate::proto::FILE_DESCRIPTOR_SET)
        .context("decoding the compiled proto descriptors")?;
    let file = set
        .file
        .iter()
        .find(|file| file.package() == PACKAGE)
        .context("the operator API's descriptors are missing")?;
    let comments = Comments::of(file);
    let service = file.service.first().context("the operator service is missing")?;

    let mut schemas = Map::new();
    for (index, message) in file.message_type.iter().enumerate() {
        add_message(&mut schemas, message, "", &[4, index as i32], &comments, file);
    }
    schemas.insert("Error".into(), error_schema());

    let mut paths = Map::new();
    for (index, method) in service.method.iter().enumerate() {
        let name = method.name();
        if !METHODS.contains(&name) {
            // an RPC without an HTTP route yet (the test below names it)
            continue;
        }
        let described = comments.get(&[6, 0, 2, index as i32]);
        let summary = summary_of(&described, name);
        let streaming = STREAMING.contains(&name) || method.server_streaming();
        let (media, answer) = if streaming {
            (
                "application/x-ndjson",
                "one JSON message a line (NDJSON), each a progress report; a failure after the start is a last line {\"error\": Error}",
            )
        } else {
            ("application/json", "the response message")
        };
        let mut responses = Map::new();
        responses.insert(
            "200".into(),
            json!({
                "description": answer,
                "content": { media: { "schema": reference(local_name(method.output_type())) } },
            }),
        );
        for (status, _) in ERRORS {
            responses.insert(
                status.into(),
                json!({ "$ref": format!("#/components/responses/E{status}") }),
            );
        }
        paths.insert(
            format!("/v1/{name}"),
            json!({
                "post": {
                    "operationId": name,
                    "summary": summary,
                    "description": described,
                    "tags": ["operator"],
                    "requestBody": {
                        "required": true,
                        "content": {
                            "application/json": { "schema": reference(local_name(method.input_type())) }
                        }
                    },
                    "responses": responses,
                }
            }),
        );
    }
    let mut error_responses = Map::new();
    for (status, when) in ERRORS {
        error_responses.insert(
            format!("E{status}"),
            json!({
                "description": when,
                "content": { "application/json": { "schema": reference("Error") } },
            }),
        );
    }
    Ok(json!({
        "openapi": "3.0.3",
        "info": {
            "title": "hancha operator API (HTTP/JSON)",
            "version": env!("CARGO_PKG_VERSION"),
            "description": format!(
                "{}\n\nEvery operator RPC of `{PACKAGE}.Operator` as `POST /v1/<Method>` with the request message as JSON (the proto3 JSON mapping: lowerCamelCase names, 64-bit integers as strings, Timestamps as RFC 3339 strings; fields left out take their default). Authenticate with `Authorization: Bearer <token>` (`hancha tokens add`). Refusals answer the Error object with the HTTP status of the gRPC code.",
                comments.get(&[6, 0])
            ),
        },
        "tags": [{ "name": "operator", "description": "the operator API of one county's node" }],
        "security": [{ "bearerAuth": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "hct_ and 43 base64url characters",
                    "description": "An API token made with `hancha tokens add NAME --role county|township`. On a loopback web listener without require_login, a request without a token acts as the county-wide loopback principal.",
                }
            },
            "responses": error_responses,
            "schemas": schemas,
        },
    }))
}

/// The first sentence of a method's comment (its name if it has none).
fn summary_of(described: &str, name: &str) -> String {
    let flat = described.split_whitespace().collect::<Vec<_>>().join(" ");
    let first = match flat.find(". ") {
        Some(end) => &flat[..end],
        None => flat.trim_end_matches('.'),
    };
    if first.is_empty() {
        name.to_string()
    } else {
        first.to_string()
    }
}

/// `#/components/schemas/<name>`.
fn reference(name: impl AsRef<str>) -> Value {
    json!({ "$ref": format!("#/components/schemas/{}", name.as_ref()) })
}

/// The schema name of a message type named in a descriptor (`.hancha.operator.v1.A.B` → `A.B`).
fn local_name(type_name: &str) -> String {
    type_name
        .strip_prefix(&format!(".{PACKAGE}."))
        .unwrap_or(type_name)
        .to_string()
}

/// The error body (`crate::web::api::ApiError`).
fn error_schema() -> Value {
    json!({
        "type": "object",
        "description": "A refusal: the gRPC code's name, what went wrong (never quoting a resident ID number), and the fields at fault.",
        "required": ["code", "message"],
        "properties": {
            "code": { "type": "string", "enum": crate::status::refusal_code_names().collect::<Vec<_>>() },
            "message": { "type": "string" },
            "fieldViolations": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["field", "description"],
                    "properties": {
                        "field": { "type": "string", "description": "the field's path, e.g. items[3].residentId" },
                        "description": { "type": "string" },
                    },
                },
            },
        },
    })
}

/// Adds `message` (and its nested messages, map entries aside) to `schemas`.
fn add_message(
    schemas: &mut Map<String, Value>,
    message: &DescriptorProto,
    outer: &str,
    path: &[i32],
    comments: &Comments,
    file: &FileDescriptorProto,
) {
    let name = format!("{outer}{}", message.name());
    let mut properties = Map::new();
    for (index, field) in message.field.iter().enumerate() {
        let mut schema = field_schema(field, file);
        let mut field_path = path.to_vec();
        field_path.extend([2, index as i32]);
        let described = comments.get(&field_path);
        if !described.is_empty()
            && let Some(object) = schema.as_object_mut()
        {
            if object.contains_key("$ref") {
                // a $ref takes no siblings in OpenAPI 3.0
                schema = json!({ "allOf": [schema], "description": described });
            } else {
                object.insert("description".into(), Value::String(described));
            }
        }
        properties.insert(json_name(field), schema);
    }
    let mut schema = json!({
        "type": "object",
        "additionalProperties": false,
        "properties": properties,
    });
    let described = comments.get(path);
    if !described.is_empty() {
        schema["description"] = Value::String(described);
    }
    schemas.insert(name.clone(), schema);
    for (index, nested) in message.nested_type.iter().enumerate() {
        if nested.options.as_ref().is_some_and(|options| options.map_entry()) {
            continue;
        }
        let mut nested_path = path.to_vec();
        nested_path.extend([3, index as i32]);
        add_message(schemas, nested, &format!("{name}."), &nested_path, comments, file);
    }
}

/// The JSON name of a field (protox fills `json_name`; lowerCamelCase otherwise).
fn json_name(field: &FieldDescriptorProto) -> String {
    if let Some(name) = &field.json_name {
        return name.clone();
    }
    let mut out = String::new();
    let mut upper = false;
    for c in field.name().chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The schema of one field's JSON value.
fn field_schema(field: &FieldDescriptorProto, file: &FileDescriptorProto) -> Value {
    if field.label() == Label::Repeated {
        if let Some(entry) = map_entry(field.type_name(), file) {
            let value = entry.field.get(1).map(|value| single_schema(value, file));
            return json!({ "type": "object", "additionalProperties": value.unwrap_or(json!({})) });
        }
        return json!({ "type": "array", "items": single_schema(field, file) });
    }
    single_schema(field, file)
}

/// The schema of one value of a field's type.
fn single_schema(field: &FieldDescriptorProto, file: &FileDescriptorProto) -> Value {
    match field.r#type() {
        Type::String => json!({ "type": "string" }),
        Type::Bool => json!({ "type": "boolean" }),
        Type::Int32 | Type::Sint32 | Type::Sfixed32 => json!({ "type": "integer", "format": "int32" }),
        Type::Uint32 | Type::Fixed32 => {
            json!({ "type": "integer", "format": "int64", "minimum": 0, "maximum": u32::MAX })
        }
        Type::Int64 | Type::Sint64 | Type::Sfixed64 => {
            json!({ "type": "string", "format": "int64", "pattern": "^-?[0-9]{1,19}$" })
        }
        Type::Uint64 | Type::Fixed64 => {
            json!({ "type": "string", "format": "uint64", "pattern": "^[0-9]{1,20}$" })
        }
        Type::Double => json!({ "type": "number", "format": "double" }),
        Type::Float => json!({ "type": "number", "format": "float" }),
        Type::Bytes => json!({ "type": "string", "format": "byte" }),
        Type::Enum => {
            let values: Vec<String> = file
                .enum_type
                .iter()
                .find(|candidate| local_name(field.type_name()) == candidate.name())
                .map(|found| found.value.iter().map(|value| value.name().to_string()).collect())
                .unwrap_or_default();
            json!({ "type": "string", "enum": values })
        }
        Type::Message | Type::Group => match field.type_name() {
            ".google.protobuf.Timestamp" => json!({ "type": "string", "format": "date-time" }),
            name => reference(local_name(name)),
        },
    }
}

/// The map entry type a repeated message field names, if it is one.
fn map_entry<'a>(type_name: &str, file: &'a FileDescriptorProto) -> Option<&'a DescriptorProto> {
    let local = local_name(type_name);
    let (outer, entry) = local.rsplit_once('.')?;
    let mut messages = &file.message_type;
    let mut found = None;
    for part in outer.split('.') {
        let message = messages.iter().find(|message| message.name() == part)?;
        messages = &message.nested_type;
        found = Some(message);
    }
    found?
        .nested_type
        .iter()
        .find(|nested| nested.name() == entry && nested.options.as_ref().is_some_and(|o| o.map_entry()))
}

/// The comments of a proto file, by descriptor path.
struct Comments(BTreeMap<Vec<i32>, String>);

impl Comments {
    fn of(file: &FileDescriptorProto) -> Comments {
        let mut comments = BTreeMap::new();
        for location in file.source_code_info.iter().flat_map(|info| &info.location) {
            let text: Vec<String> = [&location.leading_comments, &location.trailing_comments]
                .into_iter()
                .flatten()
                .map(|comment| {
                    comment
                        .lines()
                        .map(str::trim)
                        .collect::<Vec<_>>()
                        .join("\n")
                        .trim()
                        .to_string()
                })
                .filter(|comment| !comment.is_empty())
                .collect();
            if !text.is_empty() {
                comments.insert(location.path.clone(), text.join("\n"));
            }
        }
        Comments(comments)
    }

    fn get(&self, path: &[i32]) -> String {
        self.0.get(path).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `$ref` in `value`.
    fn references(value: &Value, found: &mut Vec<String>) {
        match value {
            Value::Object(object) => {
                for (key, inner) in object {
                    match (key.as_str(), inner) {
                        ("$ref", Value::String(target)) => found.push(target.clone()),
                        _ => references(inner, found),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| references(item, found)),
            _ => {}
        }
    }

    #[test]
    fn every_operator_rpc_has_its_http_route() {
        let set = FileDescriptorSet::decode(crate::proto::FILE_DESCRIPTOR_SET).unwrap();
        let file = set.file.iter().find(|file| file.package() == PACKAGE).unwrap();
        let rpcs: Vec<&str> = file.service[0].method.iter().map(|m| m.name()).collect();
        let missing: Vec<&&str> = rpcs.iter().filter(|rpc| !METHODS.contains(rpc)).collect();
        assert!(
            missing.is_empty(),
            "operator RPCs without an HTTP route: {missing:?} (add them in src/web/api.rs)"
        );
        let stale: Vec<&&str> = METHODS.iter().filter(|m| !rpcs.contains(m)).collect();
        assert!(stale.is_empty(), "routes of no RPC: {stale:?}");
    }

    #[test]
    fn every_reference_resolves_and_every_rpc_has_its_route() {
        let document = document_value().unwrap();
        let mut found = Vec::new();
        references(&document, &mut found);
        assert!(found.len() > 100, "{}", found.len());
        for target in found {
            let pointer = target.strip_prefix('#').expect("a local reference");
            assert!(document.pointer(pointer).is_some(), "{target} does not resolve");
        }
        for method in [
            "Ask",
            "Sweep",
            "ListPending",
            "ShowInquiry",
            "Reconcile",
            "AuditPeers",
        ] {
            assert!(
                document["paths"][format!("/v1/{method}")]["post"].is_object(),
                "{method}"
            );
        }
        assert_eq!(
            document["paths"]["/v1/Watch"]["post"]["responses"]["200"]["content"]
                .as_object()
                .map(|content| content.contains_key("application/x-ndjson")),
            Some(true),
            "the event stream is NDJSON"
        );
        let ask = &document["components"]["schemas"]["AskRequest"];
        assert_eq!(ask["properties"]["residentId"]["type"], "string");
        // proto comments become descriptions
        assert!(
            document["paths"]["/v1/Ask"]["post"]["description"]
                .as_str()
                .unwrap()
                .contains("wait_ms"),
        );
        // int64 as string, Timestamps as date-time, maps as objects
        let peer = &document["components"]["schemas"]["PeerStatusInfo"]["properties"];
        assert_eq!(peer["clockOffsetMs"]["type"], "string");
        assert_eq!(peer["checkedAt"]["format"], "date-time");
        let show = &document["components"]["schemas"]["ShowInquiryResponse"]["properties"];
        assert_eq!(show["answerFields"]["type"], "object");
        assert_eq!(show["history"]["type"], "array");
    }
}
