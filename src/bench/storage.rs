//! The storage limit: PostgreSQL alone writing the rows a sweep writes on both sides — inquiry,
//! confirmation, outbox and audit rows — into freshly migrated databases (the same schema and
//! indexes), in batches, with no gRPC, no TLS and no node in between.
//!
//! Each side commits twice per batch, as the protocol requires of the nodes with answers given
//! inline (a message is durable before it is acknowledged): the asker queues its inquiries with
//! their outbox entries, then records the receipts and the answers that came with them and
//! deletes the entries; the responder stores the inquiries under the daily cap, answered, with
//! their confirmations and the confirmations' outbox entries (owed until acknowledged), then
//! records the asker's acknowledgement and deletes the entries. The two sides run at once, one
//! connection each, as two nodes on one server do. What the nodes do besides writing — leasing
//! outbox entries, checking for duplicates, reading the registry, the wire — is what the ratio to
//! this limit measures.
//!
//! The writing is the store's own: each transaction here calls the statements the store runs
//! inside its transactions (`*_in`), so the yardstick changes whenever the store does and can
//! never drift from it.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use super::cpu::{BackendsMark, CpuMark, postgres_processes};
use super::population::Population;
use crate::domain::agreement::Agreement;
use crate::domain::division::CountyCode;
use crate::domain::message::{AgreementRef, Confirmation, Inquiry, Subject};
use crate::domain::person::answer_from_registry;
use crate::domain::resident_id::today_in_china;
use crate::domain::vocabulary::{InquiryKind, Priority};
use crate::store::answers::{Answer, AnswerBatch, InquiryRows};
use crate::store::floor::{self, FloorMessage};
use crate::store::inbound::{
    InboundInquiry, InlineAnswers, ReceiptTimes, Written, add_daily_volume_in, confirmation_audit,
    inquiry_audit, insert_inbound_confirmations_in, insert_inbound_inquiries_in,
};
use crate::store::inspect;
use crate::store::outbound::{
    InquiryVerdict, queue_inquiries_in, record_confirmations_delivered_in, record_verdicts_locked_in,
};
use crate::store::{audit_batch_in, planned_for_memory};

/// How long the responder gives itself to answer, as a normal agreement does.
const REPLY_DAYS: i64 = 30;

/// One batch as both sides write it.
struct Batch {
    /// The inquiries, as the asker writes them and the responder receives them.
    inquiries: Vec<Inquiry>,
    /// One confirmation per inquiry, as the responder writes it and the asker receives it.
    confirmations: Vec<Confirmation>,
}

/// Everything both sides write the same way.
struct Terms<'a> {
    /// The asking county.
    asker: CountyCode,
    /// The answering county.
    responder: CountyCode,
    /// The agreement the messages name.
    agreement: &'a Agreement,
}

/// Writes the sweep's rows into the two databases (already migrated) and returns how long it
/// took, from the first statement until both sides committed their last batch.
pub async fn write_sweep(
    urls: (&str, &str),
    population: &Population,
    sweep: usize,
    batch_size: usize,
    asker: CountyCode,
    responder: CountyCode,
    agreement: &Agreement,
) -> anyhow::Result<Duration> {
    let terms = Terms {
        asker,
        responder,
        agreement,
    };
    let batches = build_batches(population, sweep, batch_size, &terms)?;
    let (mut asker_db, mut responder_db) = connect_both(urls).await?;
    let started = Instant::now();
    let (asked, answered) = tokio::join!(
        async {
            for batch in &batches {
                asker_side(&mut asker_db, &terms, batch).await?;
            }
            anyhow::Ok(())
        },
        async {
            for batch in &batches {
                responder_side(&mut responder_db, &terms, batch).await?;
            }
            anyhow::Ok(())
        }
    );
    let elapsed = started.elapsed();
    asked.context("writing the asker's rows")?;
    answered.context("writing the responder's rows")?;
    Ok(elapsed)
}

/// One connection to each side's database, with the nodes' own planner setting
/// ([`crate::store::planned_for_memory`]): PostgreSQL alone is given what the nodes are given.
async fn connect_both(urls: (&str, &str)) -> anyhow::Result<(PgConnection, PgConnection)> {
    async fn connect(url: &str) -> anyhow::Result<PgConnection> {
        Ok(PgConnection::connect_with(&planned_for_memory(url.parse()?)).await?)
    }
    let asker = connect(urls.0).await.context("connecting (asker)")?;
    let responder = connect(urls.1).await.context("connecting (responder)")?;
    Ok((asker, responder))
}

/// Writes the storage floor for the same sweep — the least an audited exchange can durably
/// write ([`crate::store::floor`]) — into the two databases (the floor's tables are created
/// first, untimed), both sides at once, two commits per batch per side, and returns how long it
/// took and what PostgreSQL spent on it.
pub async fn write_floor(
    urls: (&str, &str),
    population: &Population,
    sweep: usize,
    batch_size: usize,
    asker: CountyCode,
    responder: CountyCode,
    agreement: &Agreement,
) -> anyhow::Result<FloorRun> {
    let terms = Terms {
        asker,
        responder,
        agreement,
    };
    let batches: Vec<Vec<FloorMessage>> = build_batches(population, sweep, batch_size, &terms)?
        .iter()
        .map(Batch::floor)
        .collect::<anyhow::Result<_>>()?;
    let (mut asker_db, mut responder_db) = connect_both(urls).await?;
    floor::create(&mut asker_db).await?;
    floor::create(&mut responder_db).await?;
    let (asker_code, responder_code) = (asker.as_str(), responder.as_str());
    let due_at = Utc::now() + chrono::Duration::days(REPLY_DAYS);
    // an optional figure: a session that cannot say which process serves it leaves it out
    let postgres_started = match (
        inspect::connection_backend(&mut asker_db).await,
        inspect::connection_backend(&mut responder_db).await,
    ) {
        (Ok(asker), Ok(responder)) => postgres_processes(&[asker, responder]),
        _ => None,
    }
    .as_deref()
    .map(BackendsMark::now);
    let machine_started = CpuMark::now(&[]);
    let started = Instant::now();
    let (asked, answered) = tokio::join!(
        async {
            for batch in &batches {
                floor::asker_queue(&mut asker_db, responder_code, batch).await?;
                floor::asker_answered(&mut asker_db, responder_code, batch, due_at).await?;
            }
            anyhow::Ok(())
        },
        async {
            for batch in &batches {
                floor::responder_answer(&mut responder_db, asker_code, batch, due_at).await?;
                floor::responder_delivered(&mut responder_db, asker_code, batch).await?;
            }
            anyhow::Ok(())
        }
    );
    let elapsed = started.elapsed();
    let machine_cpu_s = CpuMark::now(&[]).since(&machine_started).machine_s;
    let postgres_cpu_s = postgres_started
        .as_ref()
        .map(|started| started.again().since(started));
    asked.context("writing the asker's floor")?;
    answered.context("writing the responder's floor")?;
    let expected = i64::try_from(sweep)?;
    for (side, db, audit_rows) in [
        ("asker", &mut asker_db, 2 * expected),
        ("responder", &mut responder_db, 3 * expected),
    ] {
        let counted = floor::counts(db).await?;
        anyhow::ensure!(
            counted == (expected, audit_rows),
            "the {side}'s floor holds {counted:?} answered rows and audit rows, not {:?}",
            (expected, audit_rows)
        );
    }
    Ok(FloorRun {
        elapsed,
        machine_cpu_s,
        postgres_cpu_s,
    })
}

/// How the storage floor went.
#[derive(Clone, Copy, Debug)]
pub struct FloorRun {
    /// From the first statement until both sides committed their last batch.
    pub elapsed: Duration,
    /// CPU seconds the whole machine spent meanwhile, summed over its cores.
    pub machine_cpu_s: Option<f64>,
    /// CPU seconds PostgreSQL's two server processes spent meanwhile, when they are processes
    /// of this machine.
    pub postgres_cpu_s: Option<f64>,
}

impl Batch {
    /// The batch as the floor writes it.
    fn floor(&self) -> anyhow::Result<Vec<FloorMessage>> {
        self.inquiries
            .iter()
            .zip(&self.confirmations)
            .map(|(inquiry, confirmation)| {
                Ok(FloorMessage {
                    inquiry_id: inquiry.message_id,
                    answer_id: confirmation.message_id,
                    agreement_id: inquiry.agreement.id.clone(),
                    agreement_hash: inquiry.agreement.hash.clone(),
                    kind: inquiry.kind.as_str().to_string(),
                    subject_id: inquiry.subject.resident_id.as_str().to_string(),
                    outcome: confirmation.outcome.as_str().to_string(),
                    fields: serde_json::to_value(&confirmation.fields)?,
                })
            })
            .collect()
    }
}

fn build_batches(
    population: &Population,
    sweep: usize,
    batch_size: usize,
    terms: &Terms<'_>,
) -> anyhow::Result<Vec<Batch>> {
    let direction = terms
        .agreement
        .direction(terms.asker, terms.responder)
        .context("the agreement has no direction for the sweep")?;
    let agreement = AgreementRef {
        id: terms.agreement.id().to_string(),
        hash: terms.agreement.canonical_hash().as_str().to_string(),
    };
    let today = today_in_china();
    let mut batches = Vec::new();
    let mut start = 0;
    while start < sweep {
        let end = (start + batch_size).min(sweep);
        let mut batch = Batch {
            inquiries: Vec::with_capacity(end - start),
            confirmations: Vec::with_capacity(end - start),
        };
        for index in start..end {
            let subject = Subject {
                resident_id: population.sweep_subject(index),
                certificate_number: None,
            };
            let registered = population.sweep_person(index);
            let answer = answer_from_registry(
                InquiryKind::CertificateVerification,
                terms.asker,
                &subject,
                registered.as_ref(),
                direction.answer_fields(),
                today,
            );
            let inquiry = Inquiry {
                message_id: Uuid::now_v7(),
                agreement: agreement.clone(),
                kind: InquiryKind::CertificateVerification,
                priority: Priority::Normal,
                subject,
            };
            batch.confirmations.push(Confirmation {
                message_id: Uuid::now_v7(),
                inquiry_id: inquiry.message_id,
                agreement: agreement.clone(),
                outcome: answer.outcome,
                fields: answer.fields,
                answered_at: Utc::now(),
            });
            batch.inquiries.push(inquiry);
        }
        batches.push(batch);
        start = end;
    }
    Ok(batches)
}

/// The asker's two transactions for one batch: the inquiries queued with their outbox entries,
/// then the receipts and the answers that came back in them.
async fn asker_side(db: &mut PgConnection, terms: &Terms<'_>, batch: &Batch) -> anyhow::Result<()> {
    let peer = terms.responder;
    let now = Utc::now();

    let mut tx = db.begin().await?;
    queue_inquiries_in(&mut tx, peer, &batch.inquiries, None, None, Duration::ZERO).await?;
    tx.commit().await?;

    let mut tx = db.begin().await?;
    let due_at = Some(now + chrono::Duration::days(REPLY_DAYS));
    let verdicts: Vec<InquiryVerdict> = batch
        .inquiries
        .iter()
        .map(|inquiry| InquiryVerdict::Accepted {
            message_id: inquiry.message_id,
            received_at: now,
            due_at,
        })
        .collect();
    let times: ReceiptTimes = batch
        .inquiries
        .iter()
        .map(|inquiry| (inquiry.message_id, (now, due_at)))
        .collect();
    let confirmations: Vec<&Confirmation> = batch.confirmations.iter().collect();
    insert_inbound_confirmations_in(&mut tx, peer, &confirmations, &times).await?;
    let answered: HashSet<Uuid> = times.keys().copied().collect();
    record_verdicts_locked_in(&mut tx, peer, &verdicts, &answered).await?;
    let accepted: Vec<_> = confirmations
        .iter()
        .map(|confirmation| confirmation_audit(peer, confirmation, "accepted", None))
        .collect();
    audit_batch_in(&mut tx, &accepted).await?;
    tx.commit().await?;
    Ok(())
}

/// The responder's two transactions for one batch: the inquiries stored answered, with their
/// answers owed until acknowledged, then the asker's acknowledgement.
async fn responder_side(db: &mut PgConnection, terms: &Terms<'_>, batch: &Batch) -> anyhow::Result<()> {
    let peer = terms.asker;
    let now = Utc::now();
    let day = today_in_china();

    let mut tx = db.begin().await?;
    let inbound: Vec<InboundInquiry<'_>> = batch
        .inquiries
        .iter()
        .map(|inquiry| InboundInquiry {
            inquiry,
            due_at: now + chrono::Duration::days(REPLY_DAYS),
            daily_cap: u32::MAX,
        })
        .collect();
    let rows: Vec<&InboundInquiry<'_>> = inbound.iter().collect();
    let owed_until = now + chrono::Duration::seconds(30);
    let inline = InlineAnswers {
        answers: batch
            .confirmations
            .iter()
            .map(|confirmation| {
                let answer = Answer {
                    outcome: confirmation.outcome,
                    fields: confirmation.fields.clone(),
                };
                (confirmation.inquiry_id, answer)
            })
            .collect(),
        owed_until,
    };
    insert_inbound_inquiries_in(&mut tx, peer, &rows, now, Written::Answered(&inline)).await?;
    let accepted: Vec<_> = batch
        .inquiries
        .iter()
        .map(|inquiry| inquiry_audit(peer, inquiry, "accepted", None))
        .collect();
    audit_batch_in(&mut tx, &accepted).await?;
    let mut answers = AnswerBatch::default();
    for (inquiry, confirmation) in batch.inquiries.iter().zip(&batch.confirmations) {
        answers.push(
            inquiry.message_id,
            peer,
            &inquiry.agreement,
            inquiry.kind.as_str(),
            confirmation.message_id,
            Answer {
                outcome: confirmation.outcome,
                fields: confirmation.fields.clone(),
            },
        );
    }
    answers
        .write(
            &mut tx,
            "automatic",
            now,
            InquiryRows::AlreadyAnswered,
            Some(owed_until),
        )
        .await?;
    // The counter last, as the store takes it: held only to the commit.
    add_daily_volume_in(&mut tx, peer, day, rows.len()).await?;
    tx.commit().await?;

    let mut tx = db.begin().await?;
    let delivered: Vec<Uuid> = batch.confirmations.iter().map(|c| c.message_id).collect();
    record_confirmations_delivered_in(&mut tx, peer, &delivered).await?;
    tx.commit().await?;
    Ok(())
}
