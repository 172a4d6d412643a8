//! The end of a run, the same on both sides: plan this side's part of the difference and commit
//! it with the run's record in one transaction.

use chrono::Utc;
use uuid::Uuid;

use super::snapshot::Snapshot;
use crate::domain::agreement::Agreement;
use crate::domain::message::{AgreementRef, Inquiry, Subject};
use crate::domain::reconcile::{
    AskedBefore, DifferenceDetail, PersonAction, ReconcileSet, plan_messages, plan_people, report_erased,
};
use crate::domain::riblt::Element;
use crate::domain::vocabulary::{InquiryKind, MessageKind, Priority};
use crate::node::Node;
use crate::store::StoreError;
use crate::store::reconcile::{Committed, RunRecord};

impl Node {
    /// Plans and commits this side's part of a decoded difference.
    pub(crate) async fn commit_reconcile(
        &self,
        agreement: &Agreement,
        snapshot: &Snapshot,
        record: RunRecord,
        ours_only: &[Element],
        their_detail: &DifferenceDetail,
    ) -> Result<(RunRecord, Committed), StoreError> {
        let me = self.county();
        let peer = agreement.peer_of(me).expect("a party to the agreement");
        let (messages, people, inquiries) = match snapshot.set {
            ReconcileSet::Messages => {
                let mut plans = plan_messages(me, &snapshot.messages(ours_only), &their_detail.messages);
                report_erased(&mut plans, &snapshot.erased_messages(ours_only));
                (plans, Vec::new(), Vec::new())
            }
            ReconcileSet::SharedPeople => {
                let now = Utc::now();
                let terms = agreement
                    .allows(me, peer, MessageKind::Inquiry(InquiryKind::OutflowStatus), now)
                    .ok();
                let may_ask = terms.is_some();
                // Within the reply period, a person is not asked about again when that would only
                // repeat an inquiry (see AskedBefore).
                let asked = match terms {
                    Some(direction) => {
                        let since = now - chrono::Duration::days(i64::from(direction.reply_days().normal));
                        self.store().asked_before(peer, since).await?
                    }
                    None => AskedBefore::default(),
                };
                let plans = plan_people(
                    &snapshot.people(ours_only)?,
                    &their_detail.person_tags,
                    may_ask,
                    &asked,
                    self.reconcile_settings().max_inquiries_per_run,
                );
                let reference = AgreementRef {
                    id: agreement.id().to_string(),
                    hash: agreement.canonical_hash().as_str().to_string(),
                };
                let inquiries: Vec<Inquiry> = plans
                    .iter()
                    .filter(|plan| plan.action == PersonAction::InquiryOpened)
                    .filter_map(|plan| plan.person.as_ref())
                    .map(|person| Inquiry {
                        message_id: Uuid::now_v7(),
                        agreement: reference.clone(),
                        kind: InquiryKind::OutflowStatus,
                        priority: Priority::Normal,
                        subject: Subject {
                            resident_id: person.resident_id.clone(),
                            certificate_number: None,
                        },
                    })
                    .collect();
                (Vec::new(), plans, inquiries)
            }
        };
        let committed = self
            .store()
            .commit_reconcile_run(&record, &messages, &people, &inquiries)
            .await?;
        if committed.repaired > 0 || committed.inquiries_opened > 0 {
            self.wake_delivery();
        }
        Ok((record, committed))
    }
}
