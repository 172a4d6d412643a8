//! 窗口查验 — the window check: a clerk with someone waiting enters the ID number (and the
//! certificate number shown) and sees the origin county's answer within the wait, or that the
//! inquiry was deferred and when it is due. A certificate that is not this person's is shouted.

use std::collections::BTreeSet;

use axum::Form;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::{Markup, html};
use serde::Deserialize;

use super::forms;
use super::layout::{Refusal, Section, form_token, page, refused_page, term, when};
use super::{Console, Visitor};
use crate::domain::vocabulary::{CertificatePresented, StatusField};
use crate::present::display;
use crate::proto::operator as pb;
use crate::proto::operator::operator_server::Operator;

/// How long the window waits for the origin's answer (the node caps it at `limits.max_wait`).
const WAIT_MS: u32 = 8_000;

const TITLE: &str = "窗口查验 Window check";

/// The routes of this section.
pub(super) fn routes() -> Router<Console> {
    Router::new().route("/window", get(form).post(check))
}

/// What the clerk typed.
#[derive(Clone, Debug, Default, Deserialize)]
pub(super) struct Check {
    /// The visitor's form token.
    #[serde(default)]
    _csrf: String,
    /// The origin county to ask.
    #[serde(default)]
    to_county: String,
    /// The person's ID number.
    #[serde(default)]
    resident_id: String,
    /// The certificate number shown, if any.
    #[serde(default)]
    certificate_number: String,
    /// A key subject: the urgent deadline.
    #[serde(default)]
    urgent: Option<String>,
}

/// `GET /window`: the form.
async fn form(State(console): State<Console>, visitor: Visitor) -> Response {
    let peers = match peers(&console, &visitor).await {
        Ok(peers) => peers,
        Err(status) => return refused_page(&visitor, Section::Window, TITLE, &status),
    };
    let body = check_form(&visitor, &peers, &Check::default(), None);
    page(&visitor, Section::Window, TITLE, body).into_response()
}

/// `POST /window`: asks the origin and shows its answer (or why not) under the form.
async fn check(State(console): State<Console>, visitor: Visitor, Form(posted): Form<Check>) -> Response {
    if !console.form_token_ok(&visitor, &posted._csrf) {
        return forms::forbidden(&visitor, Section::Window, TITLE);
    }
    let peers = match peers(&console, &visitor).await {
        Ok(peers) => peers,
        Err(status) => return refused_page(&visitor, Section::Window, TITLE, &status),
    };
    let request = pb::AskRequest {
        to_county: posted.to_county.trim().to_owned(),
        kind: "certificate_verification".to_owned(),
        resident_id: posted.resident_id.trim().to_owned(),
        certificate_number: posted.certificate_number.trim().to_owned(),
        urgent: posted.urgent.is_some(),
        wait_ms: WAIT_MS,
    };
    let asked = console
        .call(&visitor, request, |service, request| async move {
            service.ask(request).await
        })
        .await;
    match asked {
        Ok(answer) => {
            let body = html! {
                (answer_box(&posted.to_county, &answer))
                (check_form(&visitor, &peers, &Check { resident_id: String::new(), certificate_number: String::new(), ..posted.clone() }, None))
            };
            page(&visitor, Section::Window, TITLE, body).into_response()
        }
        Err(status) => {
            let refusal = Refusal::of(&status);
            let http = crate::web::api::http_status_of(status.code());
            let body = check_form(&visitor, &peers, &posted, Some(&refusal));
            (http, page(&visitor, Section::Window, TITLE, body)).into_response()
        }
    }
}

/// The counties an inquiry can go to: the peers of the agreements in force.
async fn peers(console: &Console, visitor: &Visitor) -> Result<BTreeSet<String>, tonic::Status> {
    let listed = console
        .call(
            visitor,
            pb::ListAgreementsRequest {},
            |service, request| async move { service.list_agreements(request).await },
        )
        .await?;
    Ok(listed
        .agreements
        .into_iter()
        .filter(|agreement| agreement.in_force)
        .map(|agreement| agreement.peer_county)
        .collect())
}

fn check_form(
    visitor: &Visitor,
    peers: &BTreeSet<String>,
    posted: &Check,
    refusal: Option<&Refusal>,
) -> Markup {
    let why = |field: &str| {
        refusal
            .and_then(|refusal| refusal.field(field))
            .map(str::to_owned)
    };
    html! {
        @if let Some(refusal) = refusal { (refusal.render()) }
        @if peers.is_empty() {
            p.refusal #no-peers { "没有生效的协议：无法查验 no agreement in force, nobody to ask." }
        }
        form.panel #window-form method="post" action="/window" {
            (form_token(visitor))
            label { "户籍地县 origin county"
                select #window-to name="to_county" required {
                    @for peer in peers {
                        option value=(peer) selected[posted.to_county == *peer] { (display::county(peer)) }
                    }
                }
            }
            @if let Some(why) = why("to_county") { span.field-error data-for="to_county" { (why) } }
            " "
            label { "公民身份号码 ID number"
                input #window-resident-id name="resident_id" data-resident-id="" autocomplete="off"
                    size="20" maxlength="18" required autofocus value=(posted.resident_id)
                    class=[why("resident_id").is_some().then_some("invalid")];
            }
            @if let Some(why) = why("resident_id") {
                span.field-error #window-resident-id-error data-for="resident_id" { "身份证号码有误 " (why) }
            }
            " "
            label { "婚育证明编号 certificate number (可不填 optional)"
                input #window-certificate name="certificate_number" autocomplete="off" size="22"
                    maxlength="64" value=(posted.certificate_number)
                    class=[why("certificate_number").is_some().then_some("invalid")];
            }
            @if let Some(why) = why("certificate_number") {
                span.field-error data-for="certificate_number" { (why) }
            }
            " "
            label { "加急 urgent" input #window-urgent type="checkbox" name="urgent" value="1" checked[posted.urgent.is_some()]; }
            " "
            button #window-submit type="submit" { "查验 check" }
            p.hint { "等候对方答复至多 " (WAIT_MS / 1000) " 秒；未能即时答复的转为待复。 Waits a few seconds for the answer; otherwise deferred." }
        }
    }
}

/// The origin's answer as the clerk needs to read it at a glance.
fn answer_box(to_county: &str, answer: &pb::AskResponse) -> Markup {
    let peer = display::county(to_county);
    let inquiry = format!("/inquiries/{}", answer.message_id);
    match answer.state.as_str() {
        "answered" => {
            let presented = answer
                .fields
                .get(StatusField::CertificatePresented.as_str())
                .and_then(|value| value.parse::<CertificatePresented>().ok());
            let not_hers = presented == Some(CertificatePresented::DoesNotMatch);
            let class = match (answer.outcome.as_str(), not_hers) {
                (_, true) | ("refused", _) => "result bad",
                ("found", _) => "result good",
                _ => "result wait",
            };
            let mut fields: Vec<(&String, &String)> = answer.fields.iter().collect();
            fields.sort();
            html! {
                div class=(class) #window-result data-state="answered" data-outcome=(answer.outcome) {
                    @if not_hers {
                        p.verdict #certificate-verdict data-certificate="does_not_match" role="alert" style="font-size:30px" {
                            "✖ 所出示的婚育证明不是此人的"
                            br;
                            span style="font-size:18px" { "The certificate shown was NOT issued to this person." }
                        }
                    }
                    p.verdict #window-outcome {
                        (peer) " 答复 answered: " (term(&answer.outcome)) " " span.en { (answer.outcome) }
                    }
                    @if let Some(line) = presented.filter(|_| !not_hers).and_then(|p| crate::present::display::certificate_presented(p.as_str())) {
                        p #certificate-verdict data-certificate=(presented.map(|p| p.as_str()).unwrap_or_default()) { (line) }
                    }
                    @if !fields.is_empty() {
                        dl.facts #window-fields {
                            @for (name, value) in fields {
                                dt { (field_label(name)) " " code { (name) } }
                                dd data-field=(name) { (value) }
                            }
                        }
                    }
                    p.hint { "函查编号 inquiry " a href=(inquiry) { code { (answer.message_id) } } }
                }
            }
        }
        "pending" => html! {
            div.result.wait #window-result data-state="pending" {
                p.verdict { "已转为待复 deferred, due " (when(answer.due_at.as_ref())) }
                p { (peer) " 已收到函查，将在期限内答复。 accepted the inquiry and will answer by then." }
                p { a #window-inquiry-link href=(inquiry) { "查看函查 open the inquiry" } }
            }
        },
        "queued" => html! {
            div.result.wait #window-result data-state="queued" {
                p.verdict { "已转为待复 deferred: 尚未送达 not delivered yet" }
                p { (peer) " — " (answer.reject_reason) }
                p { a #window-inquiry-link href=(inquiry) { "查看函查 open the inquiry" } }
            }
        },
        _ => html! {
            div.result.bad #window-result data-state=(answer.state) {
                p.verdict { (peer) " 拒收 refused the inquiry" }
                p { (answer.reject_reason) }
                p { a #window-inquiry-link href=(inquiry) { "查看函查 open the inquiry" } }
            }
        },
    }
}

/// A status field's Chinese term, or nothing for a name this version does not know.
pub(super) fn field_label(name: &str) -> &'static str {
    name.parse::<StatusField>()
        .map(StatusField::label_zh)
        .unwrap_or_default()
}
