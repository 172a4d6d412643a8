//! 控制台 — the web console for county and township staff, on the web listener beside the
//! HTTP/JSON API. Server-rendered pages (maud), no front-end build step, nothing from a CDN: the
//! pages, the style sheet and the few lines of script are in the binary.
//!
//! An edge as thin as the API's: every page calls the very [`Operator`] methods of the
//! [`OperatorService`] the gRPC listener serves, under the visitor's [`Principal`] (a console
//! login, or the loopback principal on a loopback listener without `require_login`), so the
//! console can never show or do what the operator API would refuse that principal, and every
//! action is audited by that API under the principal's name.
//!
//! [`Operator`]: crate::proto::operator::operator_server::Operator

mod agreements;
mod answer;
mod chart;
mod forms;
mod indicators;
mod layout;
mod login;
mod queue;
mod reconcile;
mod sweep;
mod window;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::HeaderMap;
use axum::response::{Redirect, Response};
use axum::routing::get;
use tonic::Status;
use tracing::Instrument;

use crate::domain::policy::Principal;
use crate::node::Node;
use crate::operator::{OperatorService, WebIdentity};
use crate::status::code_name;
use crate::web::logins::Logins;

pub use layout::Section;

/// What the console's routes share.
#[derive(Clone, Debug)]
pub struct Console {
    /// The operator service behind [`crate::operator::Listener::Web`].
    pub service: OperatorService,
    /// The node, for its county and its console accounts.
    pub node: Arc<Node>,
    /// Whether a visitor must log in (otherwise the loopback principal; only on loopback).
    pub login_required: bool,
    /// The console's logins and sessions ([`crate::web::logins`]).
    pub logins: Logins,
    /// Whether the listener serves HTTPS, so that cookies are marked `Secure` (a browser then
    /// never sends them over plain HTTP).
    pub secure_cookies: bool,
    /// How long one call may take (`limits.rpc_timeout`).
    pub rpc_timeout: Duration,
    /// The form token of the loopback principal (random per process), for the forms of a
    /// console without logins: a page of another site cannot read it, so cannot post a form.
    pub loopback_form_token: Arc<str>,
    /// Sweep files checked and waiting for their confirmation, and the sweeps sent from here.
    pub uploads: sweep::Uploads,
}

/// Who is looking at a page.
#[derive(Clone, Debug)]
pub struct Visitor {
    /// The principal every call is made as.
    pub principal: Principal,
    /// The token every form of this visitor carries (`_csrf`), checked on every POST.
    pub form_token: String,
    /// Whether the visitor logged in (and can log out), rather than being the loopback principal.
    pub logged_in: bool,
}

/// A page's visitor, as an extractor: the handler runs only for someone [`Console::visitor`]
/// found (otherwise the answer is the login page).
impl axum::extract::FromRequestParts<Console> for Visitor {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        console: &Console,
    ) -> Result<Visitor, Response> {
        console.visitor(&parts.headers).await
    }
}

/// Every page of the console, at the root of the web listener.
pub fn routes(console: Console) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/queue") }))
        .merge(login::routes())
        .route("/console.css", get(layout::style_sheet))
        .route("/console.js", get(layout::script))
        .merge(queue::routes())
        .merge(indicators::routes())
        .merge(reconcile::routes())
        .merge(agreements::routes())
        .merge(answer::routes())
        .merge(window::routes())
        .merge(sweep::routes())
        .with_state(console)
        .layer(axum::middleware::from_fn(login::remember_path))
}

impl Console {
    /// A console for `service`; `secure_cookies` when the listener serves HTTPS.
    pub fn new(
        service: OperatorService,
        login_required: bool,
        rpc_timeout: Duration,
        secure_cookies: bool,
    ) -> Console {
        let mut bytes = [0u8; 32];
        rand::Rng::fill(&mut rand::rng(), &mut bytes);
        Console {
            node: Arc::clone(service.node()),
            logins: Logins::new(service.clone()),
            service,
            login_required,
            secure_cookies,
            rpc_timeout,
            loopback_form_token: hex::encode(bytes).into(),
            uploads: sweep::Uploads::default(),
        }
    }

    /// Who `headers` say the visitor is: the account of a session in force (its cookie), else
    /// the loopback principal where no login is required; `Err` is the answer to give instead
    /// of the page (to the login page, and back here afterwards).
    pub async fn visitor(&self, headers: &HeaderMap) -> Result<Visitor, Response> {
        match self.logins.session(headers).await {
            Ok(Some(session)) => {
                return Ok(Visitor {
                    principal: session.principal,
                    form_token: session.form_token,
                    logged_in: true,
                });
            }
            Ok(None) => {}
            Err(status) => return Err(login::failure(&status)),
        }
        if self.login_required {
            return Err(login::to_login(headers));
        }
        Ok(Visitor {
            principal: Principal::loopback(self.node.county()),
            form_token: self.loopback_form_token.to_string(),
            logged_in: false,
        })
    }

    /// A `Set-Cookie` value: HttpOnly, SameSite=Strict, Secure over HTTPS; `max_age` 0 forgets
    /// the cookie, `None` keeps it until the browser closes.
    pub fn cookie(&self, name: &str, value: &str, path: &str, max_age: Option<u32>) -> String {
        let mut cookie = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Strict");
        if let Some(seconds) = max_age {
            cookie.push_str(&format!("; Max-Age={seconds}"));
        }
        if self.secure_cookies {
            cookie.push_str("; Secure");
        }
        cookie
    }

    /// Whether a posted form carries `visitor`'s form token.
    pub fn form_token_ok(&self, visitor: &Visitor, posted: &str) -> bool {
        use subtle::ConstantTimeEq;
        !posted.is_empty() && bool::from(posted.as_bytes().ct_eq(visitor.form_token.as_bytes()))
    }

    /// Calls an operator method as `visitor`: the same gate, scoping and audit as the API's.
    pub async fn call<Req, Resp, F, Fut>(
        &self,
        visitor: &Visitor,
        message: Req,
        method: F,
    ) -> Result<Resp, Status>
    where
        F: FnOnce(OperatorService, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Resp>, Status>>,
    {
        let span = tracing::info_span!(
            "rpc",
            method = "console",
            caller = visitor.principal.name(),
            message_id = tracing::field::Empty,
            agreement = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        let mut request = tonic::Request::new(message);
        request
            .extensions_mut()
            .insert(WebIdentity::new(Ok(visitor.principal.clone())));
        let answer = tokio::time::timeout(self.rpc_timeout, method(self.service.clone(), request))
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
        answer.map(tonic::Response::into_inner)
    }
}
