//! Synthetic people: valid resident IDs, outflow and inflow persons, and registering the same
//! persons on both sides of a pair.

use hancha::domain::division::{CountyCode, TownshipCode};
use hancha::domain::person::{Flow, Person};
use hancha::domain::resident_id::ResidentId;
use hancha::domain::vocabulary::{CertificateStatus, MaritalStatus, StatusValues};

use chrono::NaiveDate;

use super::{Cluster, DINGCHENG, XINHUA};

/// A valid resident ID from the 17 first digits.
pub fn resident_id(first17: &str) -> ResidentId {
    ResidentId::with_check_character(first17).expect("valid id")
}

/// The `n`-th synthetic woman registered in `registered` (born 1990, sequence from `n`).
pub fn synthetic_id(registered: &str, n: u32) -> ResidentId {
    let day = 1 + (n / 500) % 28;
    let month = 1 + (n / (500 * 28)) % 12;
    let sequence = (n % 500) * 2; // even: female
    let birth = NaiveDate::from_ymd_opt(1990, month, day).expect("a day of 1990");
    ResidentId::synthetic(
        CountyCode::parse(registered).expect("a county code"),
        birth,
        sequence,
    )
    .expect("valid id")
}

/// An outflow person registered in `origin`, living in `destination`, with a valid certificate.
pub fn outflow_person(id: ResidentId, origin: &str, destination: &str) -> Person {
    let township = hancha::domain::division::townships_of(CountyCode::parse(origin).unwrap())[0];
    Person {
        resident_id: id,
        name: "测试人员".into(),
        flow: Flow::Outflow,
        registered_county: CountyCode::parse(origin).unwrap(),
        residence_county: CountyCode::parse(destination).unwrap(),
        status: StatusValues {
            marital_status: Some(MaritalStatus::Married),
            certificate_number: None,
            certificate_valid_until: NaiveDate::from_ymd_opt(2028, 5, 31),
            certificate_status: Some(CertificateStatus::Valid),
            children_count: Some(1),
            pregnant: Some(false),
            township: Some(township),
            ..StatusValues::default()
        },
    }
}

/// The same person seen from the destination (inflow), living in one of its townships.
pub fn inflow_person(id: ResidentId, origin: &str, destination: &str) -> Person {
    let township: TownshipCode =
        hancha::domain::division::townships_of(CountyCode::parse(destination).unwrap())[0];
    let mut person = outflow_person(id, origin, destination);
    person.flow = Flow::Inflow;
    person.status.township = Some(township);
    person
}

/// Registers the same persons on both sides of a pair, alike: `origin`'s outflow persons living
/// in `destination` are `destination`'s inflow persons registered in `origin` (the `n`-th
/// synthetic person of `origin` for each `n` in `range`).
pub async fn share_persons(cluster: &Cluster, origin: &str, destination: &str, range: std::ops::Range<u32>) {
    let ids: Vec<ResidentId> = range.map(|n| synthetic_id(origin, n)).collect();
    let outflow: Vec<Person> = ids
        .iter()
        .map(|id| outflow_person(id.clone(), origin, destination))
        .collect();
    let inflow: Vec<Person> = ids
        .iter()
        .map(|id| inflow_person(id.clone(), origin, destination))
        .collect();
    cluster
        .node(origin)
        .store()
        .upsert_persons(&outflow)
        .await
        .unwrap();
    cluster
        .node(destination)
        .store()
        .upsert_persons(&inflow)
        .await
        .unwrap();
}

/// Inquiries of `kind` about the synthetic persons `numbers` registered in `registered`, normal
/// priority, with no certificate shown and ids the node assigns.
pub fn inquiry_drafts(
    kind: hancha::domain::vocabulary::InquiryKind,
    registered: &str,
    numbers: std::ops::Range<u32>,
) -> Vec<hancha::node::InquiryDraft> {
    numbers
        .map(|n| hancha::node::InquiryDraft {
            kind,
            priority: hancha::domain::vocabulary::Priority::Normal,
            subject: hancha::domain::message::Subject {
                resident_id: synthetic_id(registered, n),
                certificate_number: None,
            },
            message_id: None,
        })
        .collect()
}

/// The certificate issued to the first of [`two_women`], and the one issued to the second.
pub const HER_CERTIFICATE: &str = "HN-431322-2025-0001";
pub const OTHER_CERTIFICATE: &str = "HN-431322-2025-0002";

/// Two women registered in 新化县 (its registry) and living in 鼎城区, each with her own
/// certificate ([`HER_CERTIFICATE`], [`OTHER_CERTIFICATE`]): for the window check.
pub async fn two_women(cluster: &Cluster) -> (ResidentId, ResidentId) {
    let her = synthetic_id(XINHUA, 11);
    let other = synthetic_id(XINHUA, 12);
    let mut her_entry = outflow_person(her.clone(), XINHUA, DINGCHENG);
    her_entry.status.certificate_number = Some(HER_CERTIFICATE.into());
    let mut other_entry = outflow_person(other.clone(), XINHUA, DINGCHENG);
    other_entry.status.certificate_number = Some(OTHER_CERTIFICATE.into());
    cluster
        .node(XINHUA)
        .store()
        .upsert_persons(&[her_entry, other_entry])
        .await
        .unwrap();
    (her, other)
}

/// `id` with a wrong check character: shaped like an ID number, not a valid one.
pub fn wrong_check_character(id: &ResidentId) -> String {
    let id = id.as_str();
    let wrong = if id.ends_with('0') { '1' } else { '0' };
    format!("{}{wrong}", &id[..17])
}
