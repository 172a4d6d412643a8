//! Test agreements: the TOML documents a test cluster installs, the terms each direction grants,
//! and the reconciliation settings that go with them.
//!
//! Every test agreement is signed by both parties, as a node requires: with county certificates
//! of one signing CA shared by the whole test process ([`signing_pki`]), which every test node
//! trusts besides its own cluster CA ([`trust_anchors_pem`]). Tests about signatures build
//! unsigned or wrongly signed texts with [`unsigned`] and [`sign_as`].

use std::sync::OnceLock;

use hancha::tls::NodeIdentity;
use hancha::tls::dev::TestPki;

/// The CA whose county certificates sign the test agreements.
pub fn signing_pki() -> &'static TestPki {
    static PKI: OnceLock<TestPki> = OnceLock::new();
    PKI.get_or_init(|| TestPki::with_common_name("hancha test agreement signers").expect("signing CA"))
}

/// `county`'s signing identity from [`signing_pki`] (a fresh certificate each call).
pub fn signer(county: &str) -> NodeIdentity {
    signing_pki().county_identity(county).expect("signing identity")
}

/// The trust anchors a test node loads: `cluster_ca` (its TLS peers) and the signing CA.
pub fn trust_anchors_pem(cluster_ca: &str) -> String {
    format!("{cluster_ca}{}", signing_pki().ca_pem())
}

/// What a node built in a test (`Node::new`) checks agreement signatures with: required, the
/// signing CA trusted.
pub fn test_signatures() -> hancha::node::AgreementSignatures {
    hancha::node::AgreementSignatures {
        required: true,
        anchors: Some(
            hancha::tls::TrustAnchors::from_pem(&signing_pki().ca_pem())
                .expect("anchors")
                .into(),
        ),
    }
}

/// `text` with `identity`'s signature appended.
pub fn sign_as(text: &str, identity: &NodeIdentity) -> String {
    hancha::node::sign_agreement(text, identity, chrono::Utc::now()).expect("the test agreement signs")
}

/// `text` signed by both its parties with the [`signing_pki`] keys.
pub fn signed(text: &str) -> String {
    let agreement = hancha::domain::agreement::Agreement::parse(text).expect("test agreement parses");
    agreement.parties().iter().fold(text.to_string(), |text, party| {
        sign_as(&text, &signer(party.as_str()))
    })
}

/// `text` without its `[[signature]]` tables (and their comment lines).
pub fn unsigned(text: &str) -> String {
    hancha::node::strip_signatures(text)
}

/// Terms for one direction of a test agreement.
#[derive(Clone, Debug)]
pub struct Terms {
    pub inquiry_kinds: &'static [&'static str],
    pub answer_fields: &'static [&'static str],
    /// The notice kinds the direction allows.
    pub notice_kinds: &'static [&'static str],
    /// Per notice kind, the fields that may travel: (kind, fields).
    pub notice_fields: &'static [(&'static str, &'static [&'static str])],
    pub daily_cap: u32,
    pub automatic_answers: bool,
}

impl Default for Terms {
    fn default() -> Self {
        Terms {
            inquiry_kinds: &["certificate_verification", "outflow_status"],
            answer_fields: &[
                "certificate_valid_until",
                "certificate_status",
                "marital_status",
                "children_count",
            ],
            notice_kinds: &["birth"],
            notice_fields: &[],
            daily_cap: 20_000,
            automatic_answers: true,
        }
    }
}

impl Terms {
    /// Every notice kind, each with its whole field set.
    pub fn every_notice() -> Terms {
        Terms {
            notice_kinds: &["birth", "pregnancy", "contraception_check", "moved_on"],
            notice_fields: &[
                ("birth", &["child_sex", "birth_order", "birth_place"]),
                ("pregnancy", &["pregnancy_weeks", "expected_date"]),
                ("contraception_check", &["check_result", "measure"]),
                ("moved_on", &["new_county"]),
            ],
            ..Terms::default()
        }
    }
}

/// An agreement document between `a` and `b` with the given terms each way, signed by both.
pub fn agreement_toml(
    a: &str,
    b: &str,
    version: u32,
    valid: (&str, &str),
    a_to_b: &Terms,
    b_to_a: &Terms,
) -> String {
    let direction = |from: &str, to: &str, terms: &Terms| {
        let quote = |names: &[&str]| {
            names
                .iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let notice_fields = if terms.notice_fields.is_empty() {
            String::new()
        } else {
            let lines: Vec<String> = terms
                .notice_fields
                .iter()
                .map(|(kind, fields)| format!("{kind} = [{}]", quote(fields)))
                .collect();
            format!("[direction.notice_fields]\n{}\n", lines.join("\n"))
        };
        format!(
            "[[direction]]\nfrom = \"{from}\"\nto = \"{to}\"\ninquiry_kinds = [{}]\nnotice_kinds = [{}]\n\
             answer_fields = [{}]\nreply_days = {{ normal = 30, urgent = 15 }}\n\
             notice_days = {{ receipt = 30, feedback = 30 }}\ndaily_cap = {}\nautomatic_answers = {}\n{notice_fields}\n",
            quote(terms.inquiry_kinds),
            quote(terms.notice_kinds),
            quote(terms.answer_fields),
            terms.daily_cap,
            terms.automatic_answers
        )
    };
    signed(&format!(
        "id = \"{a}-{b}\"\nversion = {version}\ntitle = \"test agreement\"\nparties = [\"{a}\", \"{b}\"]\n\
         valid_from = {}\nvalid_until = {}\nretention_days = 1095\n\n{}{}",
        valid.0,
        valid.1,
        direction(a, b, a_to_b),
        direction(b, a, b_to_a)
    ))
}

/// The usual test agreement: valid 2026–2030, everything allowed both ways.
pub fn open_agreement(a: &str, b: &str) -> String {
    agreement_toml(
        a,
        b,
        1,
        ("2026-01-01", "2030-12-31"),
        &Terms::default(),
        &Terms::default(),
    )
}

/// The usual test agreement between `a` and `b`, except that `by_hand` (`a` or `b`) answers
/// the other's inquiries by hand: the registry never answers them, they wait for an operator.
pub fn answered_by_hand(a: &str, b: &str, by_hand: &str) -> String {
    let manual = Terms {
        automatic_answers: false,
        ..Terms::default()
    };
    let automatic = Terms::default();
    let (a_to_b, b_to_a) = if by_hand == b {
        (&manual, &automatic)
    } else {
        (&automatic, &manual)
    };
    agreement_toml(a, b, 1, ("2026-01-01", "2030-12-31"), a_to_b, b_to_a)
}

/// Most outflow inquiries a test node's reconciliation run opens: small, so the cap shows.
pub const RECONCILE_CAP: usize = 3;

/// Reconciliation for every agreement of a test cluster: a secret per agreement, and a schedule
/// that never fires (February 31st), so that only the tests start runs.
pub fn test_reconcile_config(agreements: &[String]) -> hancha::config::ReconcileConfig {
    let mut config = hancha::config::ReconcileConfig {
        max_inquiries_per_run: RECONCILE_CAP,
        ..Default::default()
    };
    for text in agreements {
        let agreement = hancha::domain::agreement::Agreement::parse(text).expect("test agreement parses");
        config.agreements.insert(
            agreement.id().to_string(),
            hancha::config::AgreementReconcile {
                secret: Some(format!("test reconciliation secret for {}", agreement.id())),
                schedule: "0 0 31 2 *".into(),
            },
        );
    }
    config
}

/// Version `n` of the open agreement between 鼎城区 and 新化县, valid `valid` (from, until):
/// its text.
pub fn open_agreement_version(n: u32, valid: (&str, &str)) -> String {
    agreement_toml(
        super::DINGCHENG,
        super::XINHUA,
        n,
        valid,
        &Terms::default(),
        &Terms::default(),
    )
}

/// Version `n` of the open agreement between 鼎城区 and 新化县, valid 2026–2030: what tests of
/// amendments and replicas apply.
pub fn agreement_version(n: u32) -> hancha::domain::agreement::Agreement {
    hancha::domain::agreement::Agreement::parse(&open_agreement_version(n, ("2026-01-01", "2030-12-31")))
        .expect("the test agreement parses")
}
