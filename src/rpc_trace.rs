//! One span per call on every gRPC listener, so that every log line inside a call says which
//! call it belongs to: the method, the calling county (or operator) from its verified
//! certificate, and, recorded by the handlers of calls about one message, its id and agreement
//! (a batch's spans within say how many messages it carried); the outcome (the gRPC status) is
//! recorded as the call returns.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::codegen::http;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tower::{Layer, Service};
use tracing::field::Empty;

use crate::tls::{county_from_certificate, operator_from_certificate};

/// The span of one call (for `Server::trace_fn`).
pub fn span_of(request: &http::Request<()>) -> tracing::Span {
    let caller = request
        .extensions()
        .get::<TlsConnectInfo<TcpConnectInfo>>()
        .and_then(|info| info.peer_certs())
        .and_then(|chain| {
            let leaf = chain.first()?;
            county_from_certificate(leaf)
                .map(|county| county.to_string())
                .or_else(|_| operator_from_certificate(leaf).map(|operator| operator.name))
                .ok()
        });
    tracing::info_span!(
        "rpc",
        method = %request.uri().path(),
        caller = %caller.as_deref().unwrap_or("loopback"),
        message_id = Empty,
        agreement = Empty,
        outcome = Empty,
    )
}

/// Records the call's outcome on its span (see [`span_of`]) as the response starts: the gRPC
/// status of a refusal, `OK` otherwise (a stream's later end is its own).
#[derive(Clone, Copy, Debug, Default)]
pub struct RecordOutcome;

impl<S> Layer<S> for RecordOutcome {
    type Service = Recorded<S>;

    fn layer(&self, inner: S) -> Recorded<S> {
        Recorded { inner }
    }
}

/// A service whose calls record their outcome.
#[derive(Clone, Debug)]
pub struct Recorded<S> {
    inner: S,
}

impl<S, B, R> Service<http::Request<B>> for Recorded<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let call = self.inner.call(request);
        Box::pin(async move {
            let response = call.await;
            let outcome = match &response {
                Ok(response) => response
                    .headers()
                    .get("grpc-status")
                    .and_then(|value| value.to_str().ok())
                    .and_then(|code| code.parse::<i32>().ok())
                    .map_or("OK", |code| crate::status::code_name(tonic::Code::from(code))),
                Err(_) => "failed",
            };
            tracing::Span::current().record("outcome", tracing::field::display(outcome));
            if outcome == "OK" {
                tracing::debug!("call answered");
            } else {
                tracing::info!("call refused");
            }
            response
        })
    }
}

/// Records on the current call's span the message it is about (a parsed id: never anything a
/// caller typed in its place).
pub fn record_message(message_id: &uuid::Uuid, agreement: Option<&str>) {
    let span = tracing::Span::current();
    span.record("message_id", tracing::field::display(message_id));
    if let Some(agreement) = agreement {
        span.record("agreement", tracing::field::display(agreement));
    }
}
