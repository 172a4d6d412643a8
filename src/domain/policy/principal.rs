//! Who calls the operator API, and the actions it may ask for: one [`Principal`] for every
//! operator entry point. The gRPC edge builds it from the verified client certificate (or from
//! the loopback listener); a web console or HTTP API would map its logins to the same type, so
//! the decision in [`authorize`](super::authorize) holds for all of them.

use std::fmt;

use crate::domain::division::{CountyCode, TownshipCode};

use super::{Rejection, RejectionCode};

/// Longest operator name accepted from a certificate: names go into every audit record.
const MAX_NAME_CHARS: usize = 64;

/// How the principal reached the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Someone on the node's own machine, over the loopback listener without a certificate:
    /// the county's own systems and its IT office, who hold the database anyway.
    Loopback,
    /// A person holding an operator certificate from the operator CA.
    Operator,
    /// One of the county's systems calling the HTTP/JSON API with an API token
    /// (`hancha tokens add`): scoped like an operator certificate, named by the token's name.
    Token,
    /// A member of staff logged in to the web console with a console account (`hancha users
    /// add`): scoped like an operator certificate, named by the account's name.
    Staff,
}

impl Role {
    /// The name audit records and logs use.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Loopback => "loopback",
            Role::Operator => "operator",
            Role::Token => "token",
            Role::Staff => "staff",
        }
    }
}

/// What a principal's work covers: the whole county, or one township office's area.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// The county office: every township, every county-wide task.
    County(CountyCode),
    /// A township office (乡镇计生办): the persons and inquiries of this township only.
    Township(TownshipCode),
}

impl Scope {
    /// Whether something that belongs to `township` (`None`: to no township we know, which is the
    /// county office's to sort out) lies within this scope.
    pub fn covers(self, township: Option<TownshipCode>) -> bool {
        match self {
            Scope::County(_) => true,
            Scope::Township(own) => township == Some(own),
        }
    }

    /// The township a listing is narrowed to, given the one the caller asked for: a county
    /// principal gets what it asked; a township principal gets its own township, and asking
    /// for another is refused (a silently empty list would look like "nothing to do there").
    pub fn narrow(self, requested: Option<TownshipCode>) -> Result<Option<TownshipCode>, Rejection> {
        match (self, requested) {
            (Scope::County(_), requested) => Ok(requested),
            (Scope::Township(own), None) => Ok(Some(own)),
            (Scope::Township(own), Some(asked)) if asked == own => Ok(Some(own)),
            (Scope::Township(own), Some(_)) => Err(Rejection::new(
                RejectionCode::PermissionDenied,
                format!("a township office sees its own township only (this certificate is for {own})"),
            )),
        }
    }
}

impl fmt::Display for Scope {
    /// `county:430703` or `township:430703101`, as the audit log records it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::County(county) => write!(f, "county:{county}"),
            Scope::Township(township) => write!(f, "township:{township}"),
        }
    }
}

/// Who is calling: a name for the audit log, the county whose node is called, the township
/// office the caller works for (if any), and how it reached the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The operator's name from the certificate (`urn:hancha:operator:<name>`), or `loopback`.
    name: String,
    /// The county of the node called: a principal never acts for another county.
    county: CountyCode,
    /// The township office, from the certificate's `urn:hancha:township:` SAN.
    township: Option<TownshipCode>,
    /// How it reached the node.
    role: Role,
}

impl Principal {
    /// Whoever uses the loopback listener without a certificate: county-wide.
    pub fn loopback(county: CountyCode) -> Principal {
        Principal {
            name: "loopback".into(),
            county,
            township: None,
            role: Role::Loopback,
        }
    }

    /// An operator named by a verified certificate for the node of `county`, with the township
    /// the certificate names, if any. Refusals never quote what was refused: a name that could
    /// be a resident ID number would otherwise end up in the audit log.
    pub fn operator(name: &str, county: CountyCode, township: Option<&str>) -> Result<Principal, Rejection> {
        Principal::named(name, county, township, Role::Operator, "the operator certificate")
    }

    /// One of the county's systems presenting the API token `name` (township as stored with
    /// the token), checked exactly like an operator certificate's name and township.
    pub fn token(name: &str, county: CountyCode, township: Option<&str>) -> Result<Principal, Rejection> {
        Principal::named(name, county, township, Role::Token, "the API token")
    }

    /// A member of staff logged in to the console with the account `name` (township as stored
    /// with the account), checked exactly like an operator certificate's name and township.
    pub fn staff(name: &str, county: CountyCode, township: Option<&str>) -> Result<Principal, Rejection> {
        Principal::named(name, county, township, Role::Staff, "the console account")
    }

    fn named(
        name: &str,
        county: CountyCode,
        township: Option<&str>,
        role: Role,
        source: &str,
    ) -> Result<Principal, Rejection> {
        check_name(name, source)?;
        let township = township
            .map(|text| {
                let township = TownshipCode::parse(text).map_err(|_| {
                    Rejection::new(
                        RejectionCode::Unauthenticated,
                        format!("{source}'s township is not a known 9-digit township code"),
                    )
                })?;
                if township.county() != county.current() {
                    return Err(Rejection::new(
                        RejectionCode::PermissionDenied,
                        format!(
                            "{source} names a township of another county: this node serves {county} {}",
                            county.name()
                        ),
                    ));
                }
                Ok(township)
            })
            .transpose()?;
        Ok(Principal {
            name: name.to_string(),
            county,
            township,
            role,
        })
    }

    /// The name the audit log records.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The county of the node called.
    pub fn county(&self) -> CountyCode {
        self.county
    }

    /// The township office, if the principal works for one.
    pub fn township(&self) -> Option<TownshipCode> {
        self.township
    }

    /// How it reached the node.
    pub fn role(&self) -> Role {
        self.role
    }

    /// What its work covers.
    pub fn scope(&self) -> Scope {
        match self.township {
            Some(township) => Scope::Township(township),
            None => Scope::County(self.county),
        }
    }
}

/// A name (of an operator certificate, an API token or a console account: `source`) fit for the audit log and a
/// file name: 1 to 64 letters, digits, `.`, `-`, `_` or `@`,
/// and nothing that could be a resident ID number (some offices name staff accounts by them).
fn check_name(name: &str, source: &str) -> Result<(), Rejection> {
    let unauthenticated =
        |why: &str| Rejection::new(RejectionCode::Unauthenticated, format!("{source}'s name {why}"));
    // the names the audit log gives callers that are not named by a certificate or a token
    if ["loopback", "unidentified"].contains(&name) {
        return Err(unauthenticated(
            "is one the audit log keeps for callers without a name: choose another",
        ));
    }
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS {
        return Err(unauthenticated(&format!(
            "must be 1 to {MAX_NAME_CHARS} characters"
        )));
    }
    if !name
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | '@'))
    {
        return Err(unauthenticated(
            "may hold letters, digits, '.', '-', '_' and '@' only",
        ));
    }
    // the one test of what looks like an ID number, the same that withholds it everywhere
    if crate::domain::privacy::holds_id_number(name) {
        return Err(unauthenticated(
            "looks like a resident ID number, which the audit log never holds: name operators otherwise",
        ));
    }
    Ok(())
}

/// Everything an operator can ask a node to do, one per operator RPC; and the console's
/// logins, which are no RPC but are audited on the same path under the account's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OperatorAction {
    /// Ask another county about one person (the window check, 查证验证).
    Ask,
    /// Send a sweep (清查) of many inquiries.
    Sweep,
    /// Follow a sweep's progress.
    SweepStatus,
    /// List inquiries waiting for an answer.
    ListPending,
    /// Show one inquiry with the subject's ID number and the answer.
    ShowInquiry,
    /// Answer a pending inquiry by hand.
    Answer,
    /// Withdraw one of our inquiries the peer holds for a version mismatch.
    Withdraw,
    /// Send a notice (信息通报) to a peer county.
    Notify,
    /// Give feedback (反馈) to a notice a peer sent.
    Feedback,
    /// Show one notice with the subject's ID number and its feedback.
    ShowNotice,
    /// Import persons into the county's registry.
    ImportPersons,
    /// Install a new agreement version.
    ApplyAgreement,
    /// Take an agreement version out of force.
    RetireAgreement,
    /// List the agreements held.
    ListAgreements,
    /// Show one agreement.
    ShowAgreement,
    /// The indicators.
    Report,
    /// Issue the 催办通知书 of a period (names and ID numbers of the women reminded).
    IssueReminders,
    /// Start a reconciliation run with a peer.
    Reconcile,
    /// List past reconciliation runs (counts only).
    ListReconcileRuns,
    /// The person-level differences of reconciliation runs (the indicators' drill-down).
    ListReconcileDifferences,
    /// Check the audit chain.
    VerifyAudit,
    /// What each peer showed of its audit chain.
    AuditPeers,
    /// The recorded changes of one registry entry.
    RegistryHistory,
    /// List received notices and what each did.
    ListNotices,
    /// Apply a received notice that waits for an operator.
    ApplyNotice,
    /// Record that a received notice is not applied, and why.
    DismissNotice,
    /// Follow the event stream (answers, inquiries and notices arriving, deadlines passing).
    Watch,
    /// Register a webhook endpoint of a county system (events pushed to it, signed).
    AddWebhook,
    /// List the webhook endpoints and how their delivery goes.
    ListWebhooks,
    /// Give a webhook endpoint a new signing secret (the old one signs on for an overlap).
    RotateWebhookSecret,
    /// Stop delivering to a webhook endpoint.
    RemoveWebhook,
    /// Log in to the web console (audited whether it succeeds or not).
    ConsoleLogin,
    /// Log out of the web console.
    ConsoleLogout,
}

impl OperatorAction {
    /// The RPC's name in snake case, as the audit log records it.
    pub const fn as_str(self) -> &'static str {
        match self {
            OperatorAction::Ask => "ask",
            OperatorAction::Sweep => "sweep",
            OperatorAction::SweepStatus => "sweep_status",
            OperatorAction::ListPending => "list_pending",
            OperatorAction::ShowInquiry => "show_inquiry",
            OperatorAction::Answer => "answer",
            OperatorAction::Withdraw => "withdraw",
            OperatorAction::Notify => "notify",
            OperatorAction::Feedback => "feedback",
            OperatorAction::ShowNotice => "show_notice",
            OperatorAction::ImportPersons => "import_persons",
            OperatorAction::ApplyAgreement => "apply_agreement",
            OperatorAction::RetireAgreement => "retire_agreement",
            OperatorAction::ListAgreements => "list_agreements",
            OperatorAction::ShowAgreement => "show_agreement",
            OperatorAction::Report => "report",
            OperatorAction::IssueReminders => "issue_reminders",
            OperatorAction::Reconcile => "reconcile",
            OperatorAction::ListReconcileRuns => "list_reconcile_runs",
            OperatorAction::ListReconcileDifferences => "list_reconcile_differences",
            OperatorAction::VerifyAudit => "verify_audit",
            OperatorAction::AuditPeers => "audit_peers",
            OperatorAction::RegistryHistory => "registry_history",
            OperatorAction::ListNotices => "list_notices",
            OperatorAction::ApplyNotice => "apply_notice",
            OperatorAction::DismissNotice => "dismiss_notice",
            OperatorAction::Watch => "watch",
            OperatorAction::AddWebhook => "add_webhook",
            OperatorAction::ListWebhooks => "list_webhooks",
            OperatorAction::RotateWebhookSecret => "rotate_webhook_secret",
            OperatorAction::RemoveWebhook => "remove_webhook",
            OperatorAction::ConsoleLogin => "console_login",
            OperatorAction::ConsoleLogout => "console_logout",
        }
    }

    /// Work that concerns the whole county, which a township office does not do: sweeps
    /// (the county's quarterly campaign), the registry import, agreements and reconciliation
    /// runs, webhooks. What it refuses, in words a township clerk understands.
    pub const fn county_wide_work(self) -> Option<&'static str> {
        match self {
            OperatorAction::Sweep | OperatorAction::SweepStatus => Some("sweeps (清查)"),
            OperatorAction::ImportPersons => Some("importing the registry"),
            OperatorAction::ApplyAgreement => Some("applying agreements"),
            OperatorAction::RetireAgreement => Some("retiring agreement versions"),
            OperatorAction::Withdraw => Some("withdrawing held inquiries"),
            OperatorAction::Notify | OperatorAction::Feedback | OperatorAction::ShowNotice => {
                Some("notices and their feedback (信息通报)")
            }
            OperatorAction::Reconcile => Some("starting reconciliation"),
            OperatorAction::VerifyAudit | OperatorAction::AuditPeers => Some("checking the audit chain"),
            // a county system's endpoint receives every township's events
            OperatorAction::AddWebhook
            | OperatorAction::ListWebhooks
            | OperatorAction::RotateWebhookSecret
            | OperatorAction::RemoveWebhook => Some("the county systems' webhooks"),
            _ => None,
        }
    }

    /// Whether the action reads one person's data by naming them or their inquiry: what the
    /// per-principal rate limit counts, so that nobody can walk the registry one lookup at a
    /// time. Listings show masked ID numbers and are not counted; the differences export and the
    /// reminders (names and full ID numbers, to print) are counted once per call.
    pub const fn is_person_lookup(self) -> bool {
        matches!(
            self,
            OperatorAction::Ask
                | OperatorAction::ShowInquiry
                | OperatorAction::ListReconcileDifferences
                | OperatorAction::IssueReminders
                | OperatorAction::RegistryHistory
                | OperatorAction::ShowNotice
        )
    }
}

impl fmt::Display for OperatorAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
