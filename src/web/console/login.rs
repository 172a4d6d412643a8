//! 登录 — logging in to the console and out: `GET /login` (the form), `POST /login`, `POST
//! /logout`. The login form has its own CSRF token before there is a session (a double-submit
//! cookie, `hancha_login_form`); a session's cookie (`hancha_session`) is HttpOnly,
//! SameSite=Strict, Path=/, and Secure when the listener serves HTTPS. What a login is and how
//! long it lasts is [`crate::web::logins`]'s business.

use axum::Form;
use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;
use tonic::Status;

use super::Console;
use super::layout::Section;
use crate::domain::policy::lockout::{LOCKED_FOR, MAX_FAILED_ATTEMPTS};
use crate::web::logins::{SESSION_COOKIE, cookie, new_form_token};

/// The cookie holding the login form's token until there is a session.
const LOGIN_FORM_COOKIE: &str = "hancha_login_form";

/// The path and query a console page was asked for, put among the request's headers by
/// [`remember_path`] (any such header a client sends is dropped), so that
/// [`Console::visitor`](super::Console::visitor), which pages call with their headers, can
/// send a visitor who must log in back there afterwards.
pub(super) const PATH_HEADER: HeaderName = HeaderName::from_static("x-hancha-console-path");

/// The routes of logging in and out.
pub(super) fn routes() -> Router<Console> {
    Router::new()
        .route("/login", get(login_form).post(log_in))
        .route("/logout", post(log_out))
}

/// Middleware on every console route: see [`PATH_HEADER`]. Only a `GET` is remembered (after
/// the login the browser goes there with a `GET`).
pub(super) async fn remember_path(mut request: Request, next: Next) -> Response {
    request.headers_mut().remove(&PATH_HEADER);
    if request.method() == Method::GET {
        let asked = request
            .uri()
            .path_and_query()
            .map(|path| path.as_str().to_string());
        if let Some(value) = asked.and_then(|path| HeaderValue::from_str(&path).ok()) {
            request.headers_mut().insert(PATH_HEADER, value);
        }
    }
    next.run(request).await
}

/// The answer to a visitor who must log in first: to the login page, with the page asked for
/// as `next`.
pub(super) fn to_login(headers: &HeaderMap) -> Response {
    let next = headers
        .get(&PATH_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(local_path);
    match next {
        Some(next) => Redirect::to(&format!("/login?next={}", urlencoding::encode(next))).into_response(),
        None => Redirect::to("/login").into_response(),
    }
}

/// A failure of ours while finding the visitor (the store cannot be read).
pub(super) fn failure(status: &Status) -> Response {
    (
        crate::web::api::http_status_of(status.code()),
        status.message().to_string(),
    )
        .into_response()
}

/// `next` if it is a path on this site (not `//host`, not a URL elsewhere, not the login page).
fn local_path(next: &str) -> Option<&str> {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.starts_with("/login")
        && next.len() <= 2048
        && !next.chars().any(|c| c.is_control() || c == '\\');
    local.then_some(next)
}

/// The query of `GET /login`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LoginQuery {
    next: String,
}

/// The login form as posted.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LoginForm {
    name: String,
    password: String,
    next: String,
    #[serde(rename = "_csrf")]
    csrf: String,
}

/// The logout form as posted.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LogoutForm {
    #[serde(rename = "_csrf")]
    csrf: String,
}

/// `GET /login`.
async fn login_form(State(console): State<Console>, Query(query): Query<LoginQuery>) -> Response {
    form_page(&console, StatusCode::OK, &query.next, "", None)
}

/// `POST /login`.
async fn log_in(State(console): State<Console>, headers: HeaderMap, Form(form): Form<LoginForm>) -> Response {
    let expected = cookie(&headers, LOGIN_FORM_COOKIE).unwrap_or_default();
    if !same_token(expected, &form.csrf) {
        let why = "表单已过期或不是本站的：请重新登录。The form expired or is not this site's: log in again.";
        return form_page(&console, StatusCode::FORBIDDEN, &form.next, &form.name, Some(why));
    }
    let session = match console.logins.log_in(form.name.trim(), &form.password).await {
        Ok(session) => session,
        Err(status) => return failure(&status),
    };
    let Some(session) = session else {
        let why = format!(
            "用户名或密码不正确，或账户已锁定（连续 {MAX_FAILED_ATTEMPTS} 次错误锁定 {} 分钟）。\
             Wrong name or password, or the account is locked ({MAX_FAILED_ATTEMPTS} wrong passwords in a row lock it for {} minutes).",
            LOCKED_FOR.num_minutes(),
            LOCKED_FOR.num_minutes()
        );
        return form_page(
            &console,
            StatusCode::UNAUTHORIZED,
            &form.next,
            &form.name,
            Some(&why),
        );
    };
    let to = local_path(&form.next).unwrap_or("/queue");
    let session_cookie = console.cookie(SESSION_COOKIE, &session.secret, "/", None);
    let form_cookie = console.cookie(LOGIN_FORM_COOKIE, "", "/login", Some(0));
    (
        AppendHeaders([
            (header::SET_COOKIE, session_cookie),
            (header::SET_COOKIE, form_cookie),
        ]),
        Redirect::to(to),
    )
        .into_response()
}

/// `POST /logout`: revokes the session, audited, and forgets the cookie.
async fn log_out(
    State(console): State<Console>,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Response {
    let visitor = match console.visitor(&headers).await {
        Ok(visitor) => visitor,
        Err(response) => return response,
    };
    if !visitor.logged_in {
        return Redirect::to("/login").into_response();
    }
    if !console.form_token_ok(&visitor, &form.csrf) {
        return super::forms::forbidden(&visitor, Section::Queue, "退出 Log out");
    }
    if let Err(status) = console.logins.log_out(&headers, &visitor.principal).await {
        return failure(&status);
    }
    let forget = console.cookie(SESSION_COOKIE, "", "/", Some(0));
    (
        AppendHeaders([(header::SET_COOKIE, forget)]),
        Redirect::to("/login"),
    )
        .into_response()
}

/// The login page with a fresh form token (set as the form cookie too), `refused` above the
/// form when a login was refused.
fn form_page(
    console: &Console,
    status: StatusCode,
    next: &str,
    name: &str,
    refused: Option<&str>,
) -> Response {
    let token = new_form_token();
    let form_cookie = console.cookie(LOGIN_FORM_COOKIE, &token, "/login", None);
    let next = local_path(next).unwrap_or("");
    let county = console.node.county();
    let body: Markup = html! {
        (DOCTYPE)
        html lang="zh-CN" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "登录 Log in · 函查 hancha " (county.as_str()) }
                link rel="stylesheet" href="/console.css";
            }
            body {
                header.top {
                    span.brand { "函查 " span.en { "hancha" } }
                    span.county { "县 " (county.as_str()) " " (county.name()) }
                }
                main.login {
                    h1 { "登录 Log in" }
                    @if let Some(refused) = refused {
                        div.refusal #login-refused role="alert" { (refused) }
                    }
                    @if !console.login_required {
                        p.hint #login-optional {
                            "本机访问无需登录，默认为全县权限。On loopback the console is open county-wide without a login; log in to act under your own account."
                        }
                    }
                    form #login method="post" action="/login" {
                        input type="hidden" name="_csrf" value=(token);
                        input type="hidden" name="next" value=(next);
                        label { "用户名 name"
                            input #login-name name="name" value=(name) autocomplete="username" required autofocus; }
                        label { "密码 password"
                            input #login-password type="password" name="password" autocomplete="current-password" required; }
                        button #login-submit type="submit" { "登录 log in" }
                    }
                    p.hint {
                        "账户由县里用 " code { "hancha users add" } " 开设。Accounts are made by the county office with "
                        code { "hancha users add" } "."
                    }
                }
            }
        }
    };
    (
        status,
        AppendHeaders([
            (header::SET_COOKIE, form_cookie),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ]),
        body,
    )
        .into_response()
}

/// Whether a posted token matches the expected one (both present), in constant time.
fn same_token(expected: &str, posted: &str) -> bool {
    use subtle::ConstantTimeEq;
    !expected.is_empty() && !posted.is_empty() && bool::from(posted.as_bytes().ct_eq(expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_the_login_a_visitor_goes_only_to_a_page_of_this_site() {
        assert_eq!(local_path("/inquiries/1?view=x"), Some("/inquiries/1?view=x"));
        for elsewhere in [
            "https://example.org/",
            "//example.org/",
            "/\\example.org",
            "queue",
            "",
            "/login?next=/queue",
            "/queue\r\nSet-Cookie: x=1",
        ] {
            assert_eq!(local_path(elsewhere), None, "{elsewhere}");
        }
    }

    #[test]
    fn a_form_token_must_be_present_and_match() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abc", "abd"));
        assert!(!same_token("", ""));
        assert!(!same_token("abc", ""));
    }
}
