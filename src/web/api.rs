//! `POST /v1/<Method>`: every operator RPC as HTTP/JSON. A route reads the caller's identity
//! ([`super::tokens`]), reads the request message from the JSON body (the proto3 JSON mapping),
//! and calls the very [`Operator`] method of the [`OperatorService`] the gRPC listener serves, so
//! the gate, the one access decision, the lookup limit, the audit and the township scoping are
//! the same code. Refusals are the method's own `Status`, written as JSON ([`ApiError`]).

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::{Code, Status};
use tonic_types::StatusExt;
use tracing::Instrument;

use super::tokens::Identify;
use crate::domain::policy::{OperatorAction, RejectionCode};
use crate::domain::privacy::without_id_numbers;
use crate::operator::{OperatorService, WebIdentity};
use crate::proto::operator::operator_server::Operator;
use crate::status::code_name;

/// What the routes share.
#[derive(Clone, Debug)]
pub struct Api {
    /// The operator service behind [`crate::operator::Listener::Web`].
    pub service: OperatorService,
    /// Who is calling.
    pub identify: Identify,
    /// Largest request body read.
    pub max_body_bytes: usize,
    /// How long one call may take (`limits.rpc_timeout`, as on the gRPC listeners).
    pub rpc_timeout: std::time::Duration,
}

/// The error body of every refusal: the gRPC code's name, its message, and the field
/// violations of its `google.rpc.BadRequest` details.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiError {
    /// The gRPC code's canonical name, e.g. `INVALID_ARGUMENT`.
    pub code: &'static str,
    /// What went wrong, never quoting a resident ID number.
    pub message: String,
    /// The fields at fault (`items[3].residentId`), each with why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub field_violations: Vec<FieldViolation>,
}

/// One field at fault.
#[derive(Clone, Debug, Serialize)]
pub struct FieldViolation {
    /// The field's path in the request.
    pub field: String,
    /// Why it was refused.
    pub description: String,
}

impl ApiError {
    /// The error body of `status`, as the operator method returned it.
    pub fn of(status: &Status) -> ApiError {
        let field_violations = status
            .get_error_details()
            .bad_request()
            .map(|bad| {
                bad.field_violations
                    .iter()
                    .map(|violation| FieldViolation {
                        field: without_id_numbers(&violation.field).into_owned(),
                        description: without_id_numbers(&violation.description).into_owned(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        ApiError {
            code: code_name(status.code()),
            message: without_id_numbers(status.message()).into_owned(),
            field_violations,
        }
    }

    /// The HTTP status for this error's gRPC code.
    fn http_status(&self, code: Code) -> StatusCode {
        http_status_of(code)
    }
}

/// The HTTP status for a gRPC code, by Google's standard mapping (google.rpc.Code).
pub fn http_status_of(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// `status` as an HTTP response with the JSON error body; a 401 says how to authenticate.
pub fn error_response(status: &Status) -> Response {
    let error = ApiError::of(status);
    let mut response = json_response(error.http_status(status.code()), &error);
    if status.code() == Code::Unauthenticated {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"hancha\""),
        );
    }
    response
}

/// A body the edge cannot read as the request message: audited under the caller's name (as
/// every refused operator call is) and answered in the same JSON shape.
#[derive(Debug)]
struct Unreadable {
    http: StatusCode,
    code: RejectionCode,
    message: String,
    field: Option<String>,
}

impl Unreadable {
    fn response(self) -> Response {
        let code = crate::status::code_of(self.code);
        edge_error(self.http, code, self.message, self.field)
    }
}

/// A refusal of the HTTP edge itself, in the same JSON shape as the methods' refusals.
fn edge_error(http: StatusCode, code: Code, message: String, field: Option<String>) -> Response {
    let error = ApiError {
        code: code_name(code),
        message,
        field_violations: field
            .map(|field| {
                vec![FieldViolation {
                    field,
                    description: "not valid here (see the message)".into(),
                }]
            })
            .unwrap_or_default(),
    };
    json_response(http, &error)
}

/// `value` as a JSON response with status `http`.
fn json_response(http: StatusCode, value: &impl Serialize) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (http, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(error) => {
            tracing::error!(%error, "cannot write a response as JSON");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Every route of the operator API, under `/v1/`.
pub fn routes(api: Api) -> Router {
    macro_rules! unary {
        ($router:expr, $( $name:literal => $method:ident / $action:ident ),* $(,)?) => {
            $router $(
                .route(
                    concat!("/v1/", $name),
                    post(|State(api): State<Api>, headers: HeaderMap, body: Body| async move {
                        let call = (concat!("/v1/", $name), OperatorAction::$action);
                        api.unary(call, headers, body, |service, request| async move {
                            service.$method(request).await
                        })
                        .await
                    }),
                )
            )*
        };
    }
    let router = unary!(Router::new(),
        "Ask" => ask / Ask,
        "Sweep" => sweep / Sweep,
        "SweepStatus" => sweep_status / SweepStatus,
        "ListPending" => list_pending / ListPending,
        "Notify" => notify / Notify,
        "Feedback" => feedback / Feedback,
        "ShowNotice" => show_notice / ShowNotice,
        "ShowInquiry" => show_inquiry / ShowInquiry,
        "Withdraw" => withdraw / Withdraw,
        "Answer" => answer / Answer,
        "ImportPersons" => import_persons / ImportPersons,
        "RegistryHistory" => registry_history / RegistryHistory,
        "ListNotices" => list_notices / ListNotices,
        "ApplyNotice" => apply_notice / ApplyNotice,
        "DismissNotice" => dismiss_notice / DismissNotice,
        "ApplyAgreement" => apply_agreement / ApplyAgreement,
        "RetireAgreement" => retire_agreement / RetireAgreement,
        "ListAgreements" => list_agreements / ListAgreements,
        "ShowAgreement" => show_agreement / ShowAgreement,
        "Report" => report / Report,
        "IssueReminders" => issue_reminders / IssueReminders,
        "ListReconcileRuns" => list_reconcile_runs / ListReconcileRuns,
        "ListReconcileDifferences" => list_reconcile_differences / ListReconcileDifferences,
        "VerifyAudit" => verify_audit / VerifyAudit,
        "AuditPeers" => audit_peers / AuditPeers,
        "AddWebhook" => add_webhook / AddWebhook,
        "ListWebhooks" => list_webhooks / ListWebhooks,
        "RotateWebhookSecret" => rotate_webhook_secret / RotateWebhookSecret,
        "RemoveWebhook" => remove_webhook / RemoveWebhook,
    );
    router
        .route("/v1/Reconcile", post(reconcile))
        .route("/v1/Watch", post(watch))
        .route("/v1/{*rest}", axum::routing::any(no_such_operation))
        .with_state(api)
}

/// Every operator RPC served under `/v1/`, by name: what the OpenAPI document lists.
pub const METHODS: &[&str] = &[
    "Ask",
    "Sweep",
    "SweepStatus",
    "ListPending",
    "Notify",
    "Feedback",
    "ShowNotice",
    "ShowInquiry",
    "Withdraw",
    "Answer",
    "ImportPersons",
    "RegistryHistory",
    "ListNotices",
    "ApplyNotice",
    "DismissNotice",
    "ApplyAgreement",
    "RetireAgreement",
    "ListAgreements",
    "ShowAgreement",
    "Report",
    "IssueReminders",
    "Reconcile",
    "ListReconcileRuns",
    "ListReconcileDifferences",
    "VerifyAudit",
    "AuditPeers",
    "Watch",
    "AddWebhook",
    "ListWebhooks",
    "RotateWebhookSecret",
    "RemoveWebhook",
];

/// Anything else under `/v1/`: a JSON 404 pointing at the document.
async fn no_such_operation() -> Response {
    edge_error(
        StatusCode::NOT_FOUND,
        Code::NotFound,
        "no such operation: the API is POST /v1/<Method> as /openapi.json lists them".into(),
        None,
    )
}

/// The server-streaming RPCs, served as NDJSON (one message a line); every other operator RPC
/// answers one JSON message.
pub const STREAMING: &[&str] = &["Reconcile", "Watch"];

/// How long an HTTP `Watch` waits without an event before it ends, unless the request says
/// (long polling: a plain HTTP request never hangs on for ever behind a proxy).
pub const WATCH_IDLE_DEFAULT: u32 = 30;

/// The longest wait an HTTP `Watch` may ask for.
pub const WATCH_IDLE_MAX: u32 = 300;

impl Api {
    /// Identifies the caller, reads the request and calls `method`; the answer as JSON.
    async fn unary<Req, Resp, F, Fut>(
        &self,
        call: (&'static str, OperatorAction),
        headers: HeaderMap,
        body: Body,
        method: F,
    ) -> Response
    where
        Req: DeserializeOwned + Default + Send + 'static,
        Resp: Serialize,
        F: FnOnce(OperatorService, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Resp>, Status>>,
    {
        match self.request(call, &headers, body, method).await {
            Ok(response) => json_response(StatusCode::OK, &response.into_inner()),
            Err(response) => response,
        }
    }

    /// The common part of every route: identity, body, the method's call.
    async fn request<Req, Resp, F, Fut>(
        &self,
        (path, action): (&'static str, OperatorAction),
        headers: &HeaderMap,
        body: Body,
        method: F,
    ) -> Result<tonic::Response<Resp>, Response>
    where
        Req: DeserializeOwned + Default + Send + 'static,
        F: FnOnce(OperatorService, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Resp>, Status>>,
    {
        let identity = self
            .identify
            .identify(headers)
            .await
            .map_err(|status| error_response(&status))?;
        let service = self.service.clone();
        let message = match &identity {
            // Nobody identified: the method's gate refuses (and audits) before it looks at the
            // message, so the body is not even read for a caller without a valid token.
            Err(_) => Req::default(),
            Ok(principal) => match self.message(headers, body).await {
                Ok(message) => message,
                Err(unreadable) => {
                    let reason = match &unreadable.field {
                        Some(field) => format!("{} ({field})", unreadable.message),
                        None => unreadable.message.clone(),
                    };
                    self.service
                        .refuse_unreadable(principal.clone(), action, unreadable.code, &reason)
                        .await;
                    return Err(unreadable.response());
                }
            },
        };
        // the span every gRPC call has (crate::rpc_trace), so that log lines inside the call
        // say which call they belong to; the caller by name, never by token
        let span = tracing::info_span!(
            "rpc",
            method = path,
            caller = identity
                .as_ref()
                .map(|principal| principal.name())
                .unwrap_or("unidentified"),
            message_id = tracing::field::Empty,
            agreement = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        let mut request = tonic::Request::new(message);
        request.extensions_mut().insert(WebIdentity::new(identity));
        let answer = tokio::time::timeout(self.rpc_timeout, method(service, request))
            .instrument(span.clone())
            .await
            .unwrap_or_else(|_| Err(crate::status::timed_out("the call")));
        span.record(
            "outcome",
            match &answer {
                Ok(_) => "OK",
                Err(status) => code_name(status.code()),
            },
        );
        answer.map_err(|status| error_response(&status))
    }

    /// The request message from a JSON body (an empty body is the empty message).
    async fn message<Req: DeserializeOwned + Default>(
        &self,
        headers: &HeaderMap,
        body: Body,
    ) -> Result<Req, Unreadable> {
        let too_large = || Unreadable {
            http: StatusCode::PAYLOAD_TOO_LARGE,
            code: RejectionCode::ResourceExhausted,
            message: format!(
                "the request body is over {} bytes: send fewer items per call",
                self.max_body_bytes
            ),
            field: None,
        };
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        if declared.is_some_and(|length| length > self.max_body_bytes as u64) {
            return Err(too_large());
        }
        let bytes: Bytes = axum::body::to_bytes(body, self.max_body_bytes)
            .await
            .map_err(|_| too_large())?;
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return Err(Unreadable {
                http: StatusCode::BAD_REQUEST,
                code: RejectionCode::InvalidArgument,
                message: "the request body must be JSON: send Content-Type: application/json".into(),
                field: None,
            });
        }
        // an empty body is the empty message; the content type is asked for all the same, so that
        // no browser page can make a call without a CORS preflight (a "simple" request)
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Req::default());
        }
        parse(&bytes).map_err(|(message, field)| Unreadable {
            http: StatusCode::BAD_REQUEST,
            code: RejectionCode::InvalidArgument,
            message,
            field,
        })
    }
}

/// Reads a message from JSON: on failure, what is wrong and where (a field path when serde
/// gives one), never quoting a value of the input.
pub fn parse<Req: DeserializeOwned>(bytes: &[u8]) -> Result<Req, (String, Option<String>)> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|error| (error.path().to_string(), error.into_inner()))
        .and_then(|message| {
            deserializer.end().map_err(|error| (String::new(), error))?;
            Ok(message)
        });
    parsed.map_err(|(path, inner)| {
        let what = match inner.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                format!(
                    "the request body is not valid JSON (line {}, column {})",
                    inner.line(),
                    inner.column()
                )
            }
            serde_json::error::Category::Data | serde_json::error::Category::Io => {
                format!(
                    "the request does not fit the message: {}",
                    without_values(&inner.to_string())
                )
            }
        };
        let field = (!path.is_empty() && path != ".").then(|| schema_path(&path));
        let message = match &field {
            Some(field) => format!("{field}: {what}"),
            None => what,
        };
        (without_id_numbers(&message).into_owned(), field)
    })
}

/// A serde message with every quoted value taken out (`invalid type: string "…"`), and
/// what is left passed through the no-echo rule: serde quotes what it could not take.
fn without_values(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    // the quote that opened the span being left out: serde quotes strings with `"` and other
    // values (numbers, unknown field names) with backticks
    let mut open: Option<char> = None;
    for c in text.chars() {
        match (c, open) {
            ('"' | '`', None) => {
                open = Some(c);
                out.push(c);
                out.push('…');
            }
            (c, Some(quote)) if c == quote => {
                open = None;
                out.push(c);
            }
            (_, Some(_)) => {}
            (c, None) => out.push(c),
        }
    }
    // and the position serde appends refers to the body, which is fine to name
    without_id_numbers(&out).into_owned()
}

/// A path serde gives, as far as it names fields of the message: a key of the request that is
/// no field name (an unknown field, a map key: the caller's text) is left out as `…`.
fn schema_path(path: &str) -> String {
    path.split('.')
        .map(|segment| {
            let name = segment.split('[').next().unwrap_or_default();
            let indices = &segment[name.len()..];
            let is_name = !name.is_empty()
                && name.len() <= 64
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit());
            let is_index = indices.split_inclusive(']').all(|index| {
                index.starts_with('[')
                    && index.ends_with(']')
                    && index[1..index.len() - 1].chars().all(|c| c.is_ascii_digit())
            });
            if is_name && is_index {
                segment.to_string()
            } else {
                "…".to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// `POST /v1/Reconcile`: the server-streaming RPC as NDJSON, one progress message a line; a
/// failure after the start is a last line `{"error": {…}}`.
async fn reconcile(State(api): State<Api>, headers: HeaderMap, body: Body) -> Response {
    let call = ("/v1/Reconcile", OperatorAction::Reconcile);
    match api
        .request(call, &headers, body, |service, request| async move {
            service.reconcile(request).await
        })
        .await
    {
        Ok(response) => ndjson(response.into_inner()),
        Err(response) => response,
    }
}

/// `POST /v1/Watch`: the event stream as NDJSON, one event a line, ending after
/// `idleSeconds` without an event ([`WATCH_IDLE_DEFAULT`] when not given, at most
/// [`WATCH_IDLE_MAX`]) or after `maxEvents`; the client calls again with the last cursor.
async fn watch(State(api): State<Api>, headers: HeaderMap, body: Body) -> Response {
    let call = ("/v1/Watch", OperatorAction::Watch);
    match api
        .request(
            call,
            &headers,
            body,
            |service, mut request: tonic::Request<crate::proto::operator::WatchRequest>| async move {
                let idle = &mut request.get_mut().idle_seconds;
                *idle = match *idle {
                    0 => WATCH_IDLE_DEFAULT,
                    asked => asked.min(WATCH_IDLE_MAX),
                };
                service.watch(request).await
            },
        )
        .await
    {
        Ok(response) => ndjson(response.into_inner()),
        Err(response) => response,
    }
}

/// A server stream as NDJSON: one message a line; a failure after the start is a last line
/// `{"error": {…}}`.
fn ndjson<M, S>(stream: S) -> Response
where
    M: Serialize,
    S: futures::Stream<Item = Result<M, Status>> + Send + 'static,
{
    let lines = stream.map(|item| {
        let mut line = match item {
            Ok(message) => serde_json::to_vec(&message),
            Err(status) => serde_json::to_vec(&serde_json::json!({ "error": ApiError::of(&status) })),
        }
        .unwrap_or_else(|_| b"{}".to_vec());
        line.push(b'\n');
        Ok::<_, std::convert::Infallible>(Bytes::from(line))
    });
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(lines),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::operator as pb;

    #[test]
    fn a_value_the_parser_refuses_is_never_quoted() {
        let (message, field) =
            parse::<pb::SweepRequest>(br#"{"items": [{"line": "11010519491231002X"}]}"#).unwrap_err();
        assert!(!message.contains("11010519491231002X"), "{message}");
        assert_eq!(field.as_deref(), Some("items[0].line"));
        let (message, _) = parse::<pb::AskRequest>(br#"{"residentId": 11010519491231002}"#).unwrap_err();
        assert!(!message.contains("11010519491231002"), "{message}");
        let (message, field) = parse::<pb::AskRequest>(br#"{"110105194912310021": 1}"#).unwrap_err();
        assert!(!message.contains("110105194912310021"), "{message}");
        assert!(!field.unwrap_or_default().contains("110105194912310021"));
        let (message, _) = parse::<pb::AskRequest>(b"{\"residentId\": \"110105194912310021").unwrap_err();
        assert!(message.contains("not valid JSON"), "{message}");
        // values serde quotes with backticks: a number, an unknown field's name
        let (message, _) = parse::<pb::AskRequest>(br#"{"waitMs": 13800138000123}"#).unwrap_err();
        assert!(!message.contains("13800138000123"), "{message}");
        let (message, field) = parse::<pb::AskRequest>("{\"张三\": 1}".as_bytes()).unwrap_err();
        assert!(!message.contains("张三"), "{message}");
        assert!(!field.unwrap_or_default().contains("张三"));
    }

    #[test]
    fn grpc_codes_map_to_the_standard_http_statuses() {
        assert_eq!(http_status_of(Code::InvalidArgument), StatusCode::BAD_REQUEST);
        assert_eq!(http_status_of(Code::PermissionDenied), StatusCode::FORBIDDEN);
        assert_eq!(http_status_of(Code::Unauthenticated), StatusCode::UNAUTHORIZED);
        assert_eq!(
            http_status_of(Code::ResourceExhausted),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(http_status_of(Code::AlreadyExists), StatusCode::CONFLICT);
        assert_eq!(http_status_of(Code::Unavailable), StatusCode::SERVICE_UNAVAILABLE);
    }
}
