//! A person in the county's registry, and the rule that answers an inquiry from the registry
//! automatically.

use std::collections::BTreeSet;

use chrono::NaiveDate;

use crate::domain::division::CountyCode;
use crate::domain::message::Subject;
use crate::domain::resident_id::ResidentId;
use crate::domain::vocabulary::{AnswerOutcome, CertificateStatus, InquiryKind, StatusField, StatusValues};

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
    /// Found, not found or ambiguous (automatic answers never refuse).
    pub outcome: AnswerOutcome,
    /// The agreed fields of the one matching person; empty otherwise.
    pub fields: StatusValues,
}

/// Answers an inquiry from the candidates the registry returned for its subject (those with the
/// subject's ID number or certificate number).
///
/// Who can answer what: a certificate verification is answered by the origin, about a person
/// registered here (outflow); an outflow status inquiry is answered by the destination, about a
/// person living here (inflow) and registered with the asker. Exactly one match is `found`; none
/// is `not_found`; several different people (the ID names one, the certificate another) are
/// `ambiguous`, since an automatic answer must never guess.
pub fn answer_from_registry(
    kind: InquiryKind,
    asker: CountyCode,
    subject: &Subject,
    candidates: &[Person],
    allowed_fields: &BTreeSet<StatusField>,
    today: NaiveDate,
) -> RegistryAnswer {
    let wanted_flow = match kind {
        InquiryKind::CertificateVerification => Flow::Outflow,
        InquiryKind::OutflowStatus => Flow::Inflow,
    };
    let matching: Vec<&Person> = candidates
        .iter()
        .filter(|person| person.flow == wanted_flow)
        .filter(|person| {
            kind != InquiryKind::OutflowStatus || person.registered_county.current() == asker.current()
        })
        .filter(|person| {
            person.resident_id == subject.resident_id
                || (subject.certificate_number.is_some()
                    && person.status.certificate_number == subject.certificate_number)
        })
        .collect();
    match matching.as_slice() {
        [] => RegistryAnswer {
            outcome: AnswerOutcome::NotFound,
            fields: StatusValues::default(),
        },
        [person] => {
            let mut status = person.status.clone();
            if status.certificate_status == Some(CertificateStatus::Valid)
                && status.certificate_valid_until.is_some_and(|until| until < today)
            {
                status.certificate_status = Some(CertificateStatus::Expired);
            }
            RegistryAnswer {
                outcome: AnswerOutcome::Found,
                fields: status.filtered(allowed_fields),
            }
        }
        _ => RegistryAnswer {
            outcome: AnswerOutcome::Ambiguous,
            fields: StatusValues::default(),
        },
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
            &[person(ID, Flow::Outflow, "C1")],
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
            &[person(ID, Flow::Inflow, "C1")],
            &BTreeSet::new(),
            today(),
        );
        assert_eq!(answer.outcome, AnswerOutcome::NotFound);
        assert_eq!(answer.fields, StatusValues::default());
    }

    #[test]
    fn id_and_certificate_naming_different_people_is_ambiguous() {
        let other = "110105194912310038";
        let answer = answer_from_registry(
            InquiryKind::CertificateVerification,
            county("430703"),
            &subject(ID, Some("C2")),
            &[
                person(ID, Flow::Outflow, "C1"),
                person(other, Flow::Outflow, "C2"),
            ],
            &BTreeSet::from([StatusField::CertificateStatus]),
            today(),
        );
        assert_eq!(answer.outcome, AnswerOutcome::Ambiguous);
        assert!(answer.fields.present_fields().is_empty());
    }

    #[test]
    fn a_certificate_past_its_date_is_reported_expired() {
        let mut record = person(ID, Flow::Outflow, "C1");
        record.status.certificate_valid_until = NaiveDate::from_ymd_opt(2025, 1, 1);
        let answer = answer_from_registry(
            InquiryKind::CertificateVerification,
            county("430703"),
            &subject(ID, None),
            &[record],
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
            std::slice::from_ref(&record),
            &BTreeSet::new(),
            today(),
        );
        let from_elsewhere = answer_from_registry(
            kind,
            county("430582"),
            &subject(ID, None),
            &[record],
            &BTreeSet::new(),
            today(),
        );
        assert_eq!(from_origin.outcome, AnswerOutcome::Found);
        assert_eq!(from_elsewhere.outcome, AnswerOutcome::NotFound);
    }
}
