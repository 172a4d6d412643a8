//! A person in the county's registry, and the rule that answers an inquiry from the registry
//! automatically.

use std::collections::BTreeSet;

use chrono::NaiveDate;

use crate::domain::division::CountyCode;
use crate::domain::message::Subject;
use crate::domain::resident_id::{ResidentId, Sex};
use crate::domain::vocabulary::{
    AnswerOutcome, CertificatePresented, CertificateStatus, InquiryKind, StatusField, StatusValues,
};

/// Whether a registry entry is someone living here (inflow) or registered here (outflow).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Flow {
    /// 流入人口: lives in this county, registered in another.
    Inflow,
    /// 流出人口: registered in this county, lives in another.
    Outflow,
}

impl Flow {
    /// The name stored in the database and used in CSV files.
    pub const fn as_str(self) -> &'static str {
        match self {
            Flow::Inflow => "inflow",
            Flow::Outflow => "outflow",
        }
    }

    /// Parses a stored or typed name.
    pub fn parse(name: &str) -> Option<Flow> {
        match name {
            "inflow" => Some(Flow::Inflow),
            "outflow" => Some(Flow::Outflow),
            _ => None,
        }
    }
}

impl std::str::FromStr for Flow {
    type Err = crate::domain::vocabulary::UnknownName;

    /// Parses a stored name.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "inflow" => Ok(Flow::Inflow),
            "outflow" => Ok(Flow::Outflow),
            _ => Err(crate::domain::vocabulary::UnknownName {
                what: "flow",
                given: name.to_owned(),
                allowed: &["inflow", "outflow"],
            }),
        }
    }
}

/// One person the county knows about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Person {
    /// The registry key; birth date and sex derive from it.
    pub resident_id: ResidentId,
    /// Name as registered, for operators; never sent unless an agreement field carries it.
    pub name: String,
    /// Inflow or outflow, seen from this county.
    pub flow: Flow,
    /// 户籍地: the county of registration.
    pub registered_county: CountyCode,
    /// 现居住地: the county of residence.
    pub residence_county: CountyCode,
    /// Everything an answer may carry about the person, township and village included.
    pub status: StatusValues,
}

/// What the registry says in answer to an inquiry: the outcome and the fields to send, already
/// filtered to what the agreement allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryAnswer {
    /// Found or not found (automatic answers never refuse; an ID names at most one person).
    pub outcome: AnswerOutcome,
    /// The agreed fields of the one matching person; empty otherwise.
    pub fields: StatusValues,
}

/// Answers an inquiry from the registry entry of the person its resident ID names (`registered`,
/// looked up by ID alone; `None` when the registry has no such ID).
///
/// An inquiry is about the person its ID names, and only that person. A certificate number in
/// the inquiry never finds anyone: it is *compared* with the certificate this person holds, and
/// the answer says whether the number shown is hers ([`StatusField::CertificatePresented`]:
/// `matches`, `does_not_match`, `not_shown`) wherever the agreement lets answers carry
/// certificate fields. So a borrowed certificate is caught at the window, and a guessed number
/// teaches the asker nothing about its holder.
///
/// Who can answer what: a certificate verification is answered by the origin, about a person
/// registered here (outflow); an outflow status inquiry is answered by the destination, about a
/// person living here (inflow) and registered with the asker. A person of the other flow, or
/// registered elsewhere, is `not_found`: the asker learns nothing it was not entitled to ask.
pub fn answer_from_registry(
    kind: InquiryKind,
    asker: CountyCode,
    subject: &Subject,
    registered: Option<&Person>,
    allowed_fields: &BTreeSet<StatusField>,
    today: NaiveDate,
) -> RegistryAnswer {
    let wanted_flow = match kind {
        InquiryKind::CertificateVerification => Flow::Outflow,
        InquiryKind::OutflowStatus => Flow::Inflow,
    };
    let person = registered
        .filter(|person| person.resident_id == subject.resident_id)
        .filter(|person| person.flow == wanted_flow)
        .filter(|person| {
            kind != InquiryKind::OutflowStatus || person.registered_county.current() == asker.current()
        });
    let Some(person) = person else {
        return RegistryAnswer {
            outcome: AnswerOutcome::NotFound,
            fields: StatusValues::default(),
        };
    };
    let mut status = person.status.clone();
    status.certificate_status = certificate_status_on(&person.status, today);
    status.certificate_presented = Some(certificate_presented(
        subject.certificate_number.as_deref(),
        person.status.certificate_number.as_deref(),
    ));
    RegistryAnswer {
        outcome: AnswerOutcome::Found,
        fields: status.filtered(allowed_fields),
    }
}

/// The certificate's status on `day`: as registered, except that a `valid` certificate past its
/// date is `expired` (a `valid` one without a date stays valid). The one rule of "holds a valid
/// certificate": the automatic answer, the 催办通知书 and the report's 办证率 (in SQL, in
/// [`crate::store::report`]) all read it this way.
pub fn certificate_status_on(status: &StatusValues, day: NaiveDate) -> Option<CertificateStatus> {
    match status.certificate_status {
        Some(CertificateStatus::Valid) if status.certificate_valid_until.is_some_and(|until| until < day) => {
            Some(CertificateStatus::Expired)
        }
        registered => registered,
    }
}

/// Whether the person holds a certificate valid on `day` ([`certificate_status_on`]).
pub fn holds_valid_certificate(status: &StatusValues, day: NaiveDate) -> bool {
    certificate_status_on(status, day) == Some(CertificateStatus::Valid)
}

impl Person {
    /// Whether she must hold a marriage-and-childbearing certificate on `day`: a woman of
    /// childbearing age ([`crate::domain::report::CHILDBEARING_AGES`], in completed years).
    pub fn must_hold_certificate(&self, day: NaiveDate) -> bool {
        self.resident_id.sex() == Sex::Female
            && crate::domain::report::CHILDBEARING_AGES.contains(&self.resident_id.age_on(day))
    }
}

/// Whether the certificate number `shown` at the window is `issued`, the number the registry
/// (or the operator answering) holds for the person the ID names. Numbers are compared as
/// written, ignoring case and surrounding spaces (a clerk types what is printed); a number shown
/// for a person who holds none does not match.
pub fn certificate_presented(shown: Option<&str>, issued: Option<&str>) -> CertificatePresented {
    let Some(shown) = shown.map(str::trim).filter(|shown| !shown.is_empty()) else {
        return CertificatePresented::NotShown;
    };
    match issued {
        Some(issued) if issued.trim().eq_ignore_ascii_case(shown) => CertificatePresented::Matches,
        _ => CertificatePresented::DoesNotMatch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::vocabulary::MaritalStatus;

    fn county(code: &str) -> CountyCode {
        CountyCode::parse(code).unwrap()
    }

    fn person(id: &str, flow: Flow, certificate: &str) -> Person {
        Person {
            resident_id: ResidentId::parse(id).unwrap(),
            name: "测试".into(),
            flow,
            registered_county: county("431322"),
            residence_county: county("430703"),
            status: StatusValues {
                marital_status: Some(MaritalStatus::Married),
                certificate_number: Some(certificate.into()),
                certificate_valid_until: NaiveDate::from_ymd_opt(2028, 5, 31),
                certificate_status: Some(CertificateStatus::Valid),
                children_count: Some(1),
                ..StatusValues::default()
            },
        }
    }

    fn subject(id: &str, certificate: Option<&str>) -> Subject {
        Subject {
            resident_id: ResidentId::parse(id).unwrap(),
            certificate_number: certificate.map(String::from),
        }
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 30).unwrap()
    }

    const ID: &str = "11010519491231002X";

    #[test]
    fn one_match_is_found_with_only_the_agreed_fields() {
        let allowed = BTreeSet::from([StatusField::CertificateValidUntil, StatusField::CertificateStatus]);
        let answer = answer_from_registry(
            InquiryKind::CertificateVerification,
            county("430703"),
            &subject(ID, None),
            Some(&person(ID, Flow::Outflow, "C1")),
            &allowed,
            today(),
        );
        assert_eq!(answer.outcome, AnswerOutcome::Found);
        assert_eq!(answer.fields.present_fields(), allowed);
    }

    #[test]
    fn no_match_in_the_right_flow_is_not_found() {
        let answer = answer_from_registry(
            InquiryKind::CertificateVerification,
            county("430703"),
            &subject(ID, None),
            Some(&person(ID, Flow::Inflow, "C1")),
            &BTreeSet::new(),
            today(),
        );
        assert_eq!(answer.outcome, AnswerOutcome::NotFound);
        assert_eq!(answer.fields, StatusValues::default());
    }

    #[test]
    fn a_certificate_number_never_finds_a_person() {
        // the ID is not registered; the number shown is a registered woman's: nobody is found,
        // and nothing of hers goes back
        let unregistered = "110105194912310038";
        let answer = answer_from_registry(
            InquiryKind::CertificateVerification,
            county("430703"),
            &subject(unregistered, Some("C1")),
            None,
            &StatusField::ALL.iter().copied().collect(),
            today(),
        );
        assert_eq!(answer.outcome, AnswerOutcome::NotFound);
        assert_eq!(answer.fields, StatusValues::default());
    }

    #[test]
    fn the_registry_entry_of_another_id_is_never_the_answer() {
        let other = person("110105194912310038", Flow::Outflow, "C2");
        let answer = answer_from_registry(
            InquiryKind::CertificateVerification,
            county("430703"),
            &subject(ID, Some("C2")),
            Some(&other),
            &StatusField::ALL.iter().copied().collect(),
            today(),
        );
        assert_eq!(answer.outcome, AnswerOutcome::NotFound);
        assert_eq!(answer.fields, StatusValues::default());
    }

    #[test]
    fn a_borrowed_certificate_is_found_not_to_match() {
        // the ID names her; the number shown is not the one issued to her
        let allowed = BTreeSet::from([StatusField::CertificateStatus, StatusField::CertificatePresented]);
        let answer = answer_from_registry(
            InquiryKind::CertificateVerification,
            county("430703"),
            &subject(ID, Some("C2")),
            Some(&person(ID, Flow::Outflow, "C1")),
            &allowed,
            today(),
        );
        assert_eq!(answer.outcome, AnswerOutcome::Found);
        assert_eq!(
            answer.fields.certificate_presented,
            Some(CertificatePresented::DoesNotMatch)
        );
        assert_eq!(answer.fields.certificate_status, Some(CertificateStatus::Valid));
    }

    #[test]
    fn the_certificate_shown_is_compared_with_the_one_issued() {
        let allowed = BTreeSet::from([StatusField::CertificatePresented]);
        let her = person(ID, Flow::Outflow, "HN-2025-0001");
        let presented = |shown: Option<&str>| {
            answer_from_registry(
                InquiryKind::CertificateVerification,
                county("430703"),
                &subject(ID, shown),
                Some(&her),
                &allowed,
                today(),
            )
            .fields
            .certificate_presented
        };
        assert_eq!(
            presented(Some("HN-2025-0001")),
            Some(CertificatePresented::Matches)
        );
        assert_eq!(
            presented(Some("hn-2025-0001")),
            Some(CertificatePresented::Matches)
        );
        assert_eq!(
            presented(Some("HN-2025-0002")),
            Some(CertificatePresented::DoesNotMatch)
        );
        assert_eq!(presented(None), Some(CertificatePresented::NotShown));
        assert_eq!(
            certificate_presented(Some("HN-1"), None),
            CertificatePresented::DoesNotMatch,
            "a number shown for someone who holds none is not hers"
        );
    }

    #[test]
    fn certificate_presented_goes_only_where_the_agreement_lets_it() {
        let answer = answer_from_registry(
            InquiryKind::CertificateVerification,
            county("430703"),
            &subject(ID, Some("C2")),
            Some(&person(ID, Flow::Outflow, "C1")),
            &BTreeSet::from([StatusField::MaritalStatus]),
            today(),
        );
        assert_eq!(answer.fields.certificate_presented, None);
    }

    #[test]
    fn a_certificate_past_its_date_is_reported_expired() {
        let mut record = person(ID, Flow::Outflow, "C1");
        record.status.certificate_valid_until = NaiveDate::from_ymd_opt(2025, 1, 1);
        let answer = answer_from_registry(
            InquiryKind::CertificateVerification,
            county("430703"),
            &subject(ID, None),
            Some(&record),
            &BTreeSet::from([StatusField::CertificateStatus]),
            today(),
        );
        assert_eq!(answer.fields.certificate_status, Some(CertificateStatus::Expired));
    }

    #[test]
    fn outflow_status_is_answered_only_for_people_registered_with_the_asker() {
        let record = person(ID, Flow::Inflow, "C1");
        let kind = InquiryKind::OutflowStatus;
        let from_origin = answer_from_registry(
            kind,
            county("431322"),
            &subject(ID, None),
            Some(&record),
            &BTreeSet::new(),
            today(),
        );
        let from_elsewhere = answer_from_registry(
            kind,
            county("430582"),
            &subject(ID, None),
            Some(&record),
            &BTreeSet::new(),
            today(),
        );
        assert_eq!(from_origin.outcome, AnswerOutcome::Found);
        assert_eq!(from_elsewhere.outcome, AnswerOutcome::NotFound);
    }
}
