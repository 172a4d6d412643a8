//! The checks of `hancha bench reconcile --nodes`: after each run, both databases are read back,
//! and the run must have found exactly the injected difference on both sides, person by person,
//! and opened no more outflow inquiries than the cap; otherwise the benchmark fails.

use std::collections::BTreeSet;

use anyhow::{Context, ensure};

use super::people::{SharedPeople, Side};
use crate::bench::rig::Rig;
use crate::domain::division::CountyCode;
use crate::domain::reconcile::{PersonAction, PersonDifference};
use crate::node::reconcile::SetSummary;
use crate::store::Store;

/// What [`check`] read back.
pub struct Checked {
    /// Elements in the difference, as 431322 recorded it.
    pub responder_differences: u64,
    /// The persons 430703 opened an outflow inquiry about.
    pub asked: BTreeSet<String>,
}

/// Fails unless both sides found exactly the injected difference, person by person, and the
/// caller opened no more inquiries than the cap (on the first run, exactly as many as it could).
pub async fn check(
    rig: &Rig,
    people: &SharedPeople,
    shared: &SetSummary,
    first: bool,
) -> anyhow::Result<Checked> {
    let record = &shared.record;
    let (origin, destination) = (Side::Origin, Side::Destination);
    ensure!(
        (record.local_size, record.peer_size)
            == (people.size(origin) as u64, people.size(destination) as u64),
        "the sets held {} and {} persons, {} and {} were imported",
        record.local_size,
        record.peer_size,
        people.size(origin),
        people.size(destination)
    );
    ensure!(
        record.differences == people.d as u64,
        "430703 found {} differences, {} were injected",
        record.differences,
        people.d
    );
    let responder_runs = rig
        .responder_store
        .reconcile_runs(Some(people.origin), 10)
        .await?;
    let responder_record = responder_runs
        .iter()
        .find(|run| {
            run.run_id == record.run_id && run.set_name.as_str() == record.set_name && run.role == "responder"
        })
        .context("431322 recorded no run for the shared-people set")?;
    ensure!(
        responder_record.outcome == "completed" && responder_record.differences as usize == people.d,
        "431322 recorded the run as {} with {} differences, {} were injected",
        responder_record.outcome,
        responder_record.differences,
        people.d
    );
    let asked = check_persons(
        rig.asker().store(),
        people.destination,
        record.run_id,
        people,
        origin,
    )
    .await?;
    check_persons(
        &rig.responder_store,
        people.origin,
        record.run_id,
        people,
        destination,
    )
    .await?;

    let cap = rig.asker().reconcile_settings().max_inquiries_per_run;
    let opened = shared.committed.inquiries_opened as usize;
    ensure!(
        opened <= cap,
        "430703 opened {opened} inquiries, the cap is {cap}"
    );
    let askable = (people.changed + people.origin_only).min(cap);
    ensure!(
        !first || opened == askable,
        "430703 opened {opened} inquiries on its first run, {askable} were due"
    );
    ensure!(
        asked.len() == opened,
        "430703 opened {opened} inquiries but recorded {} persons as asked",
        asked.len()
    );
    Ok(Checked {
        responder_differences: responder_record.differences as u64,
        asked,
    })
}

/// Fails unless `store`'s differences of run `run_id` name exactly the persons `side` holds
/// differently or alone, and as many unknown persons as the other side holds alone. Returns the
/// persons an inquiry was opened about.
async fn check_persons(
    store: &Store,
    peer: CountyCode,
    run_id: uuid::Uuid,
    people: &SharedPeople,
    side: Side,
) -> anyhow::Result<BTreeSet<String>> {
    let rows: Vec<_> = store
        .person_differences(Some(peer))
        .await?
        .into_iter()
        .filter(|row| row.run_id == run_id)
        .collect();
    let named = |difference: PersonDifference| -> BTreeSet<String> {
        rows.iter()
            .filter(|row| row.difference == difference)
            .filter_map(|row| row.resident_id.as_ref().map(|id| id.as_str().to_string()))
            .collect()
    };
    let unknown_here = rows
        .iter()
        .filter(|row| row.difference == PersonDifference::UnknownHere)
        .count();
    let other = match side {
        Side::Origin => Side::Destination,
        Side::Destination => Side::Origin,
    };
    let me = match side {
        Side::Origin => people.origin,
        Side::Destination => people.destination,
    };
    ensure!(
        named(PersonDifference::Differs) == people.changed_ids()
            && named(PersonDifference::UnknownToPeer) == people.only_ids(side)
            && unknown_here == people.only_count(other)
            && rows.len() == people.changed + people.origin_only + people.destination_only,
        "{me} recorded {} persons known differently, {} unknown to {peer} and {unknown_here} unknown here \
         ({} rows); {}, {} and {} were injected (or not the same persons)",
        named(PersonDifference::Differs).len(),
        named(PersonDifference::UnknownToPeer).len(),
        rows.len(),
        people.changed,
        people.only_count(side),
        people.only_count(other)
    );
    Ok(rows
        .iter()
        .filter(|row| row.action == PersonAction::InquiryOpened)
        .filter_map(|row| row.resident_id.as_ref().map(|id| id.as_str().to_string()))
        .collect())
}
