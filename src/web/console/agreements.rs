//! 协议 — the agreements: every version held, where it stands here and at the peer, whether
//! messages go out under it, its signatures and each peer's last status; one agreement's terms
//! per direction, its text and its hash (`/agreements/{id}` the newest version of an agreement,
//! `/agreements/{hash}` exactly that version, as ShowAgreement takes either).

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::{Markup, html};

use super::layout::{Section, page, refused_page, when};
use super::{Console, Visitor};
use crate::domain::agreement::{Agreement, Direction};
use crate::present::display;
use crate::proto::operator as pb;
use crate::proto::operator::operator_server::Operator;
use crate::store::agreements::SIGNATURE_VERIFIED;

const TITLE: &str = "协议 Agreements";

/// The routes of this section.
pub(super) fn routes() -> Router<Console> {
    Router::new()
        .route("/agreements", get(list))
        .route("/agreements/{id}", get(show))
}

/// Where a version stands, in Chinese with the wire name.
fn stage(stage: &str) -> Markup {
    let zh = match stage {
        "in_force" => "生效",
        "waiting_for_peer" => "待对方启用",
        "not_yet_valid" => "尚未生效",
        "expired" => "已过期",
        "retired" => "已停用",
        "unsigned" => "未经各方签署",
        _ => "",
    };
    let class = match stage {
        "in_force" => "badge good",
        "waiting_for_peer" | "not_yet_valid" => "badge",
        _ => "badge bad",
    };
    html! { span class=(class) title=(stage) data-stage=(stage) { (zh) " " (display::stage(stage)) } }
}

fn yes_no(value: bool) -> &'static str {
    if value { "是 yes" } else { "否 no" }
}

fn held(value: &str) -> &'static str {
    match value {
        "yes" => "是 yes",
        "no" => "否 no",
        _ => "未知 unknown",
    }
}

/// `GET /agreements`.
async fn list(State(console): State<Console>, visitor: Visitor) -> Response {
    let listed = console
        .call(
            &visitor,
            pb::ListAgreementsRequest {},
            |service, request| async move { Operator::list_agreements(&service, request).await },
        )
        .await;
    match listed {
        Ok(listed) => page(&visitor, Section::Agreements, TITLE, list_body(&listed)).into_response(),
        Err(status) => refused_page(&visitor, Section::Agreements, TITLE, &status),
    }
}

fn list_body(listed: &pb::ListAgreementsResponse) -> Markup {
    html! {
        @if listed.agreements.is_empty() {
            p.hint #no-agreements { "还没有协议 no agreement installed (hancha agreement apply)." }
        } @else {
            table #agreements {
                thead { tr {
                    th { "协议 agreement" } th.num { "版本 version" } th { "对方县 peer" } th { "有效期 valid" }
                    th { "状态 stage" } th { "对方持有 held by peer" } th { "发送中 sending" }
                    th { "签署 signatures" } th { "哈希 hash" }
                } }
                tbody {
                    @for agreement in &listed.agreements {
                        tr data-agreement-id=(agreement.id) data-version=(agreement.version) {
                            td { a href={ "/agreements/" (agreement.hash) } title="这一版本 this version" { (agreement.id) } }
                            td.num { (agreement.version) }
                            td { (display::county(&agreement.peer_county)) }
                            td { (agreement.valid_from) " 至 " (agreement.valid_until) }
                            td {
                                (stage(&agreement.stage))
                                @if agreement.retired_at.is_some() { " " span.hint { (when(agreement.retired_at.as_ref())) } }
                            }
                            td { (held(&agreement.held_by_peer)) }
                            td { (yes_no(agreement.sending)) }
                            td { (signed_by(&agreement.signatures)) }
                            td { code title=(agreement.hash) { (short(&agreement.hash)) "…" } }
                        }
                    }
                }
            }
        }
        h2 { "对方节点 Peers" }
        @if listed.peers.is_empty() {
            p.hint { "还没有对方的状态 no peer has reported its status yet." }
        } @else {
            table #peers {
                thead { tr {
                    th { "对方县 peer" } th { "上次联系 last checked" } th { "软件版本 software" } th.num { "时钟差 clock offset" }
                } }
                tbody {
                    @for peer in &listed.peers {
                        tr data-peer=(peer.peer_county) class=[peer.clock_skewed.then_some("overdue")] {
                            td { (display::county(&peer.peer_county)) }
                            td { (when(peer.checked_at.as_ref())) }
                            td { (peer.software_version) }
                            td.num {
                                (peer.clock_offset_ms) " ms"
                                @if peer.clock_skewed { " " span.badge.bad { "时钟偏差 skewed" } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn short(hash: &str) -> &str {
    hash.get(..16).unwrap_or(hash)
}

/// The counties whose signatures verified, or "无 none".
fn signed_by(signatures: &[pb::AgreementSignatureInfo]) -> String {
    let verified: Vec<String> = signatures
        .iter()
        .filter(|signature| signature.outcome == SIGNATURE_VERIFIED)
        .map(|signature| signature.county.clone())
        .collect();
    if verified.is_empty() {
        "无 none".into()
    } else {
        verified.join(", ")
    }
}

/// `GET /agreements/{id}`.
async fn show(State(console): State<Console>, visitor: Visitor, Path(id): Path<String>) -> Response {
    let shown = console
        .call(
            &visitor,
            pb::ShowAgreementRequest { id },
            |service, request| async move { Operator::show_agreement(&service, request).await },
        )
        .await;
    match shown {
        Ok(shown) => page(&visitor, Section::Agreements, TITLE, show_body(&visitor, &shown)).into_response(),
        Err(status) => refused_page(&visitor, Section::Agreements, TITLE, &status),
    }
}

fn show_body(visitor: &Visitor, shown: &pb::ShowAgreementResponse) -> Markup {
    let info = shown.agreement.clone().unwrap_or_default();
    // The terms as the document states them: the text the API gave, read by the one parser.
    let parsed = Agreement::parse(&shown.text).ok();
    html! {
        p.no-print { a href="/agreements" { "← 全部协议 all agreements" } }
        dl.facts #agreement data-agreement-id=(info.id) {
            dt { "协议 agreement" } dd { (info.id) @if let Some(parsed) = &parsed { " · " (parsed.title()) } }
            dt { "版本 version" } dd #version { (info.version) }
            dt { "哈希 hash (SHA-256)" } dd { code #hash { (info.hash) } }
            dt { "对方县 peer" } dd { (display::county(&info.peer_county)) }
            dt { "有效期 valid" } dd { (info.valid_from) " 至 " (info.valid_until) " (中国标准时间 China Standard Time)" }
            dt { "状态 stage" } dd #stage { (stage(&info.stage)) }
            dt { "对方持有 held by peer" } dd { (held(&info.held_by_peer)) }
            dt { "发送中 sending" } dd { (yes_no(info.sending)) }
            @if info.retired_at.is_some() {
                dt { "停用于 retired" } dd { (when(info.retired_at.as_ref())) }
            }
            @if let Some(parsed) = &parsed {
                dt { "个人数据保存 personal data kept" } dd { (parsed.retention_days()) " 天 days" }
            }
        }
        h2 { "签署 Signatures" }
        @if info.signatures.is_empty() {
            p.hint #no-signatures { "没有签署记录 no signatures recorded." }
        } @else {
            table #signatures {
                thead { tr {
                    th { "县 county" } th { "签署 signed" } th { "证书指纹 certificate" } th { "核验 checked" } th { "结果 outcome" }
                } }
                tbody {
                    @for signature in &info.signatures {
                        tr data-county=(signature.county) {
                            td { (display::county(&signature.county)) }
                            td { (when(signature.signed_at.as_ref())) }
                            td { code title=(signature.cert_fingerprint) { (short(&signature.cert_fingerprint)) "…" } }
                            td { (when(signature.verified_at.as_ref())) }
                            td {
                                @if signature.outcome == SIGNATURE_VERIFIED { span.badge.good { "已核验 verified" } }
                                @else { span.badge.bad { (signature.outcome) } }
                            }
                        }
                    }
                }
            }
        }
        h2 { "各方向条款 Terms per direction" }
        @match &parsed {
            Some(parsed) => {
                @for direction in parsed.directions() {
                    (direction_terms(visitor, direction))
                }
            }
            None => { p.hint { "协议文本无法解读, 见下方原文 the text could not be read here; see it below." } }
        }
        h2 { "原文 Text" }
        pre #agreement-text { (shown.text) }
    }
}

fn direction_terms(visitor: &Visitor, direction: &Direction) -> Markup {
    let ours = visitor.principal.county().current();
    let heading = if direction.from().current() == ours {
        "我方发出 we send"
    } else {
        "我方收到 we receive"
    };
    let reply = direction.reply_days();
    html! {
        section.direction data-from=(direction.from().as_str()) data-to=(direction.to().as_str()) {
            h3 { (display::county(direction.from().as_str())) " → " (display::county(direction.to().as_str())) " · " (heading) }
            dl.facts {
                dt { "函查 inquiries" } dd {
                    @if direction.inquiry_kinds().is_empty() { "无 none" }
                    @for kind in direction.inquiry_kinds() { span.badge title=(kind.as_str()) { (kind.label_zh()) } " " }
                }
                dt { "通报 notices" } dd {
                    @if direction.notice_kinds().is_empty() { "无 none" }
                    @for kind in direction.notice_kinds() {
                        span.badge title=(kind.as_str()) { (kind.label_zh()) } " "
                        span.hint { "(" (direction.notice_effect(*kind).label_zh()) ") " }
                    }
                }
                dt { "答复可含 answers may carry" } dd {
                    @for field in direction.answer_fields() { span.badge title=(field.as_str()) { (field.label_zh()) } " " }
                }
                dt { "答复期限 reply within" } dd { (reply.normal) " 天 days, 加急 urgent " (reply.urgent) " 天 days" }
                @if let Some(days) = direction.notice_days() {
                    dt { "通报期限 notices" } dd { "回执 receipt " (days.receipt) " 天 days, 反馈 feedback " (days.feedback) " 天 days" }
                }
                dt { "每日上限 daily cap" } dd { (direction.daily_cap()) }
                dt { "答复方式 answering" } dd {
                    @if direction.automatic_answers() { "自动 automatic" } @else { "人工 by an operator" }
                }
            }
        }
    }
}
