//! 人工答复 — answering by hand, on the inquiry page: a form that offers only the fields the
//! agreement lets the asker see (as ShowInquiry lists them: choices as choices, dates with a
//! date picker), refusals beside their fields, and the inquiry as it now stands once answered.

use std::collections::{BTreeMap, HashMap};

use axum::Form;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use maud::{Markup, html};

use super::layout::{Refusal, Section, form_token, page, refused_page, term};
use super::queue::inquiry_body;
use super::window::field_label;
use super::{Console, Visitor, forms};
use crate::domain::vocabulary::AnswerOutcome;
use crate::proto::operator as pb;
use crate::proto::operator::operator_server::Operator;

const TITLE: &str = "函查 Inquiry";

/// The prefix of a status field's name in the form (`field.marital_status`).
const FIELD: &str = "field.";

/// The routes of this part.
pub(super) fn routes() -> Router<Console> {
    Router::new().route("/inquiries/{id}/answer", post(answer))
}

/// The form as posted: `_csrf`, `outcome`, and `field.<name>` for each value given.
#[derive(Clone, Debug, Default)]
pub(super) struct Posted {
    outcome: String,
    /// Status field name → value, as typed (empty values left out).
    fields: BTreeMap<String, String>,
}

/// `POST /inquiries/{id}/answer`.
async fn answer(
    State(console): State<Console>,
    visitor: Visitor,
    Path(id): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let token = form
        .iter()
        .find(|(name, _)| name == "_csrf")
        .map(|(_, value)| value.as_str());
    if !console.form_token_ok(&visitor, token.unwrap_or_default()) {
        return forms::forbidden(&visitor, Section::Queue, TITLE);
    }
    let mut posted = Posted::default();
    for (name, value) in form {
        if name == "outcome" {
            posted.outcome = value.trim().to_owned();
        } else if let Some(field) = name.strip_prefix(FIELD)
            && !value.trim().is_empty()
        {
            posted.fields.insert(field.to_owned(), value.trim().to_owned());
        }
    }
    let request = pb::AnswerRequest {
        message_id: id.clone(),
        outcome: posted.outcome.clone(),
        fields: posted.fields.clone().into_iter().collect::<HashMap<_, _>>(),
    };
    let answered = console
        .call(&visitor, request, |service, request| async move {
            service.answer(request).await
        })
        .await;
    let shown = console
        .call(
            &visitor,
            pb::ShowInquiryRequest { message_id: id },
            |service, request| async move { service.show_inquiry(request).await },
        )
        .await;
    let shown = match (shown, &answered) {
        (Ok(shown), _) => shown,
        // the answer went; only reading the inquiry again was refused (the lookup limit): say
        // it went, so that nobody answers twice
        (Err(status), Ok(given)) => {
            let body = html! {
                div.result.good #answer-given role="status" {
                    p.verdict { "已答复 answered" }
                    p { "答复已发出 the answer is on its way · 确认编号 confirmation " code { (given.confirmation_id) } }
                }
                (Refusal::of(&status).render())
            };
            return page(&visitor, Section::Queue, TITLE, body).into_response();
        }
        (Err(status), Err(_)) => return refused_page(&visitor, Section::Queue, TITLE, &status),
    };
    match answered {
        Ok(given) => {
            let notice = html! {
                div.result.good #answer-given role="status" {
                    p.verdict { "已答复 answered" }
                    p { "答复已发出 the answer is on its way · 确认编号 confirmation " code { (given.confirmation_id) } }
                }
            };
            let body = html! { (notice) (inquiry_body(&shown, answer_form(&visitor, &shown, &Posted::default(), None))) };
            page(&visitor, Section::Queue, TITLE, body).into_response()
        }
        Err(status) => {
            let refusal = Refusal::of(&status);
            let http = crate::web::api::http_status_of(status.code());
            let form = answer_form(&visitor, &shown, &posted, Some(&refusal));
            (
                http,
                page(&visitor, Section::Queue, TITLE, inquiry_body(&shown, form)),
            )
                .into_response()
        }
    }
}

/// The answer form for an inquiry that waits for our answer (nothing otherwise): the outcome,
/// then each field the agreement allows, as `posted` left them, with `refusal`'s reasons
/// beside their fields.
pub(super) fn answer_form(
    visitor: &Visitor,
    shown: &pb::ShowInquiryResponse,
    posted: &Posted,
    refusal: Option<&Refusal>,
) -> Markup {
    if shown.answerable_fields.is_empty() {
        return html! {};
    }
    let Some(inquiry) = &shown.inquiry else {
        return html! {};
    };
    let why = |field: &str| {
        refusal
            .and_then(|refusal| refusal.field(field))
            .map(str::to_owned)
    };
    // fields the posted answer carried that the agreement does not allow: not in the form, so
    // their reasons are listed where they would have been
    let offered: Vec<&str> = shown.answerable_fields.iter().map(|f| f.name.as_str()).collect();
    let refused_elsewhere: Vec<(String, String)> = refusal
        .map(|refusal| {
            let mut listed: Vec<(String, String)> = refusal
                .fields
                .iter()
                .filter_map(|(path, why)| {
                    let name = path.strip_prefix("fields.")?;
                    (!offered.contains(&name)).then(|| (name.to_owned(), why.clone()))
                })
                .collect();
            listed.sort();
            listed
        })
        .unwrap_or_default();
    html! {
        h2 #answer { "人工答复 Answer by hand" }
        @if let Some(refusal) = refusal { (refusal.render()) }
        form.panel #answer-form method="post" action={ "/inquiries/" (inquiry.message_id) "/answer" } {
            (form_token(visitor))
            p.hint { "只列出协议 " code { (inquiry.agreement_id) } " 允许向 " (inquiry.peer_county)
                " 答复的项目；不填的不发送。 Only the fields the agreement lets the asker see; empty ones are not sent." }
            label { "答复结果 outcome"
                select #answer-outcome name="outcome" required {
                    @for outcome in AnswerOutcome::ALL {
                        option value=(outcome.as_str()) selected[posted.outcome == outcome.as_str()] {
                            (term(outcome.as_str())) " " (outcome.as_str())
                        }
                    }
                }
            }
            @if let Some(why) = why("outcome") { span.field-error data-for="outcome" { (why) } }
            table #answer-fields {
                tbody {
                    @for field in &shown.answerable_fields {
                        @let value = posted.fields.get(&field.name).map(String::as_str).unwrap_or_default();
                        tr data-field=(field.name) {
                            th { label for={ "answer-field-" (field.name) } { (field.label_zh) " " code { (field.name) } } }
                            td { (input(field, value)) }
                            td {
                                @if let Some(why) = why(&field.name) {
                                    span.field-error #{ "answer-error-" (field.name) } data-for=(field.name) { (why) }
                                } @else {
                                    span.hint { (field.format) }
                                }
                            }
                        }
                    }
                    @for (name, why) in &refused_elsewhere {
                        tr data-field=(name) {
                            th { (field_label(name)) " " code { (name) } }
                            td { "不得答复 not allowed" }
                            td { span.field-error #{ "answer-error-" (name) } data-for=(name) { (why) } }
                        }
                    }
                }
            }
            button #answer-submit type="submit" { "发出答复 send the answer" }
        }
    }
}

/// The input for one field: what its type allows.
fn input(field: &pb::AnswerableField, value: &str) -> Markup {
    let id = format!("answer-field-{}", field.name);
    let name = format!("{FIELD}{}", field.name);
    match field.value_type.as_str() {
        "choice" => html! {
            select id=(id) name=(name) {
                option value="" { "— 不填 none" }
                @for allowed in &field.allowed_values {
                    option value=(allowed) selected[value == allowed] { (allowed) }
                }
            }
        },
        "yes_no" => html! {
            select id=(id) name=(name) {
                option value="" { "— 不填 none" }
                option value="true" selected[value == "true"] { "是 yes" }
                option value="false" selected[value == "false"] { "否 no" }
            }
        },
        "date" => html! { input id=(id) name=(name) type="date" value=(value); },
        "count" => {
            html! { input id=(id) name=(name) type="number" min="0" max="255" step="1" value=(value); }
        }
        "township" => {
            html! { input id=(id) name=(name) inputmode="numeric" pattern="[0-9]{9}" size="11" value=(value); }
        }
        "village" => {
            html! { input id=(id) name=(name) inputmode="numeric" pattern="[0-9]{12}" size="14" value=(value); }
        }
        _ => html! { input id=(id) name=(name) maxlength="64" size="24" value=(value); },
    }
}
