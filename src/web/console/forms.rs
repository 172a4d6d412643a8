//! What the console's forms share: the answer to a POST without the visitor's form token.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::html;

use super::Visitor;
use super::layout::{Section, page};

/// A POST without the visitor's form token (`_csrf`): 403, and nothing was done.
pub(super) fn forbidden(visitor: &Visitor, section: Section, title: &str) -> Response {
    let body = html! {
        div.refusal #csrf-refused role="alert" {
            strong { "未办理 refused" } " 表单已过期或来自别处，未做任何处理；请重新打开本页再提交。 "
            "The form is stale or came from elsewhere: nothing was done. Open the page again and resubmit."
        }
    };
    (StatusCode::FORBIDDEN, page(visitor, section, title, body)).into_response()
}
