//! The 催办通知书 of a period: chosen from the registry by the one rule
//! ([`needs_reminder`]), recorded once per person and period, returned for printing.

use std::collections::HashMap;

use tonic::Status;

use super::access::Caller;
use super::{internal, invalid};
use crate::domain::division::TownshipCode;
use crate::domain::reminder::{
    DEFAULT_DEADLINE_DAYS, MAX_DEADLINE_DAYS, ReminderReference, deadline, needs_reminder,
};
use crate::domain::report::ReportPeriod;
use crate::domain::resident_id::today_in_china;
use crate::exchange::convert::timestamp_to_wire;
use crate::node::Node;
use crate::proto::operator as pb;
use crate::store::audit::OperatorAccess;
use crate::store::reminders::{IssuedReminder, NewReminder};

/// Issues the period's reminders of the county, or of one township (a township office: its own
/// only), and returns those issued now (with `reissue`, those issued earlier in the period to
/// people who still lack a certificate too). The audit record names the period, the township and
/// the counts, never a person.
pub(super) async fn issue(
    node: &Node,
    caller: &Caller,
    request: pb::IssueRemindersRequest,
) -> Result<pb::IssueRemindersResponse, Status> {
    let today = today_in_china();
    let period = match request.period.as_str() {
        "" => ReportPeriod::current_quarter(today),
        text => match ReportPeriod::parse(text).map_err(|reason| invalid("period", reason))? {
            // reminders are issued once per person per quarter (the period of the quarterly
            // check): a year or a month would overlap quarters and remind her twice
            quarter @ ReportPeriod::Quarter(..) => quarter,
            _ => {
                return Err(invalid(
                    "period",
                    "reminders are issued per quarter: write it as 2026Q4",
                ));
            }
        },
    };
    let days = match request.deadline_days {
        0 => DEFAULT_DEADLINE_DAYS,
        days if days <= MAX_DEADLINE_DAYS => days,
        days => {
            return Err(invalid(
                "deadline_days",
                format!("{days} days is more than {MAX_DEADLINE_DAYS}"),
            ));
        }
    };
    let requested = match request.township.as_str() {
        "" => None,
        text => Some(
            TownshipCode::parse_within(text, node.county())
                .map_err(|error| invalid("township", error.to_string()))?,
        ),
    };
    let only_township = caller.narrowed(node, requested).await?;

    let persons = node
        .store()
        .inflow_persons(only_township.as_ref())
        .await
        .map_err(internal)?;
    let wanted: Vec<NewReminder> = persons
        .iter()
        .filter_map(|person| {
            needs_reminder(person, today).map(|missing| NewReminder {
                resident_id: person.resident_id.clone(),
                township: person.status.township,
                origin_county: person.registered_county,
                missing,
            })
        })
        .collect();
    let recorded = node
        .store()
        .issue_reminders(&period, &wanted, caller.principal.name(), deadline(today, days))
        .await
        .map_err(internal)?;
    let issued = recorded.iter().filter(|r| r.issued_now).count();
    let already_issued = recorded.len() - issued;

    let access = OperatorAccess {
        reason: Some(format!(
            "period {period}, {}: issued {issued}, already issued {already_issued}{}",
            only_township.map_or_else(|| "county".to_string(), |t| format!("township {t}")),
            if request.reissue { ", returned again" } else { "" }
        )),
        ..caller.access("issued")
    };
    caller.audit(node, access).await?;

    let names: HashMap<&str, &str> = persons
        .iter()
        .map(|person| (person.resident_id.as_str(), person.name.as_str()))
        .collect();
    let reminders = recorded
        .iter()
        .filter(|reminder| reminder.issued_now || request.reissue)
        .map(|reminder| {
            let name = names
                .get(reminder.resident_id.as_str())
                .copied()
                .unwrap_or_default();
            wire(node, period, reminder, name)
        })
        .collect();
    Ok(pb::IssueRemindersResponse {
        county: node.county().to_string(),
        county_name: node.county().name().to_string(),
        period: period.label(),
        issued: u32::try_from(issued).unwrap_or(u32::MAX),
        already_issued: u32::try_from(already_issued).unwrap_or(u32::MAX),
        reminders,
    })
}

fn wire(node: &Node, period: ReportPeriod, reminder: &IssuedReminder, name: &str) -> pb::Reminder {
    let reference = ReminderReference {
        county: node.county(),
        period,
        number: reminder.number,
    };
    pb::Reminder {
        reference: reference.to_string(),
        name: name.to_string(),
        resident_id: reminder.resident_id.as_str().to_string(),
        township: reminder
            .township
            .map(|t| t.as_str().to_string())
            .unwrap_or_default(),
        township_name: reminder
            .township
            .map(|t| t.name().to_string())
            .unwrap_or_default(),
        origin_county: reminder.origin_county.to_string(),
        origin_county_name: reminder.origin_county.name().to_string(),
        missing: reminder.missing.as_str().to_string(),
        issued_at: Some(timestamp_to_wire(reminder.issued_at)),
        issued_by: reminder.issued_by.clone(),
        deadline: reminder.deadline.to_string(),
        issued_now: reminder.issued_now,
    }
}
