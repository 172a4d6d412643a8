//! The story's closing steps: 鼎城区's four indicators through the operator API, and a count of
//! what each county sent, received, answered and delivered, checked across both sides of every
//! pair: each inquiry answered exactly once, its confirmation delivered, no outbox left over.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::cluster::Cluster;
use super::{COUNTIES, DINGCHENG, county_name, thousands};
use crate::domain::division::CountyCode;
use crate::domain::message::Direction;
use crate::domain::report::Indicator;
use crate::present::display;
use crate::proto::operator as pb;
use crate::store::Store;

/// How long the summary waits for the last deliveries (and their receipts) to settle.
const SETTLE: Duration = Duration::from_secs(30);

/// ⑤ The indicators of 鼎城区 for the current quarter (the four of 四率 and the share of
/// quarterly checks reported), as `hancha report` reads them.
pub async fn indicators(cluster: &Cluster) -> anyhow::Result<()> {
    println!("⑤ 四率 the indicators of 鼎城区, this quarter (`hancha report`)");
    let mut dingcheng = cluster.operator(DINGCHENG).await?;
    let report = match dingcheng.report(pb::ReportRequest::default()).await {
        Ok(response) => response.into_inner(),
        Err(status) => {
            let why = if status.code() == tonic::Code::Unimplemented {
                "this node does not serve Report yet".to_string()
            } else {
                status.message().to_string()
            };
            println!("  indicators: not available ({why})\n");
            return Ok(());
        }
    };
    let Some(county) = report.rows.iter().find(|row| row.township.is_empty()) else {
        println!("  indicators: not available (the report has no county row)\n");
        return Ok(());
    };
    let indicator = |wire: Option<pb::Indicator>| {
        let wire = wire.unwrap_or_default();
        Indicator::new(wire.numerator, wire.denominator)
    };
    let lines = [
        (
            "登记率 registration",
            indicator(county.registration),
            "inflow persons registered ÷ known (新化县 and 邵东市 asked about some we never registered)",
        ),
        (
            "办证率 certificate",
            indicator(county.certificate),
            "our outflow women 15–49 holding a valid certificate",
        ),
        (
            "持验证率 verification",
            indicator(county.verification),
            "inflow women 15–49 whose certificate the origin confirmed (only the one at the window so far)",
        ),
        (
            "流出人口函查率 outflow inquiry",
            indicator(county.outflow_inquiry),
            "our outflow persons asked about this quarter (鼎城区 has not swept yet)",
        ),
        (
            "查环查孕结果通报率 check reported",
            indicator(county.check_report),
            "inflow married women 15–49 whose quarterly check result went to their origin (新化县's, in step ④)",
        ),
    ];
    let townships = report.rows.len().saturating_sub(1);
    println!(
        "  {} ({} to {}), {townships} townships",
        report.period, report.period_start, report.period_end
    );
    for (name, value, meaning) in lines {
        println!("    {name:<32} {:<22} {meaning}", value.to_string());
    }
    println!();
    Ok(())
}

/// What one county's database holds about the exchange.
#[derive(Clone, Debug, Default)]
struct Tally {
    /// (peer, direction) → (inquiries, of which answered).
    inquiries: BTreeMap<(String, String), (u64, u64)>,
    /// (peer, direction) → confirmations.
    confirmations: BTreeMap<(String, String), Confirmations>,
    /// (peer, direction) → (notices, of which acknowledged).
    notices: BTreeMap<(String, String), (u64, u64)>,
    /// (peer, direction) → (feedback, of which acknowledged).
    feedback: BTreeMap<(String, String), (u64, u64)>,
    /// Messages still waiting for delivery.
    outbox: u64,
    /// Audit records.
    audit: u64,
}

/// Confirmations between this county and one peer, one way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Confirmations {
    automatic: u64,
    by_hand: u64,
    /// Distinct inquiries answered: equal to the total when none was answered twice.
    inquiries: u64,
    delivered: u64,
}

impl Confirmations {
    fn total(&self) -> u64 {
        self.automatic + self.by_hand
    }
}

impl Tally {
    // Read-only counts for the demo's closing proof, from the store's inspection queries.
    async fn read(store: &Store) -> anyhow::Result<Tally> {
        let read = store.exchange_tally().await?;
        let mut tally = Tally::default();
        let key = |peer: CountyCode, direction: Direction| {
            (peer.as_str().to_string(), direction.as_str().to_string())
        };
        for row in read.inquiries {
            tally
                .inquiries
                .insert(key(row.peer, row.direction), (row.total, row.answered));
        }
        for row in read.confirmations {
            let counts = Confirmations {
                automatic: row.automatic,
                by_hand: row.by_hand,
                inquiries: row.inquiries,
                delivered: row.delivered,
            };
            tally.confirmations.insert(key(row.peer, row.direction), counts);
        }
        for row in read.notices {
            tally
                .notices
                .insert(key(row.peer, row.direction), (row.total, row.acknowledged));
        }
        for row in read.feedback {
            tally
                .feedback
                .insert(key(row.peer, row.direction), (row.total, row.acknowledged));
        }
        tally.outbox = read.outbox;
        tally.audit = read.audit;
        Ok(tally)
    }

    fn inquiries(&self, direction: &str) -> (u64, u64) {
        self.inquiries
            .iter()
            .filter(|((_, d), _)| d == direction)
            .fold((0, 0), |(t, a), (_, (total, answered))| (t + total, a + answered))
    }

    fn confirmations(&self, direction: &str) -> Confirmations {
        self.confirmations
            .iter()
            .filter(|((_, d), _)| d == direction)
            .fold(Confirmations::default(), |sum, (_, c)| Confirmations {
                automatic: sum.automatic + c.automatic,
                by_hand: sum.by_hand + c.by_hand,
                inquiries: sum.inquiries + c.inquiries,
                delivered: sum.delivered + c.delivered,
            })
    }
}

/// One asker–responder pair, as both sides count it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Pair {
    sent: u64,
    answered_at_asker: u64,
    received: u64,
    answered_at_responder: u64,
    confirmations: Confirmations,
    confirmations_received: Confirmations,
}

impl Pair {
    fn of(asker: (&str, &Tally), responder: (&str, &Tally)) -> Pair {
        let key = |peer: &str, direction: &str| (peer.to_string(), direction.to_string());
        let (sent, answered_at_asker) = asker
            .1
            .inquiries
            .get(&key(responder.0, "outbound"))
            .copied()
            .unwrap_or_default();
        let (received, answered_at_responder) = responder
            .1
            .inquiries
            .get(&key(asker.0, "inbound"))
            .copied()
            .unwrap_or_default();
        Pair {
            sent,
            answered_at_asker,
            received,
            answered_at_responder,
            confirmations: responder
                .1
                .confirmations
                .get(&key(asker.0, "outbound"))
                .copied()
                .unwrap_or_default(),
            confirmations_received: asker
                .1
                .confirmations
                .get(&key(responder.0, "inbound"))
                .copied()
                .unwrap_or_default(),
        }
    }

    /// Every inquiry sent was received once, answered once, and its one answer delivered.
    fn exactly_once(&self) -> bool {
        let n = self.sent;
        [
            self.answered_at_asker,
            self.received,
            self.answered_at_responder,
            self.confirmations.total(),
            self.confirmations.inquiries,
            self.confirmations.delivered,
            self.confirmations_received.total(),
            self.confirmations_received.inquiries,
        ]
        .iter()
        .all(|count| *count == n)
    }
}

/// Notices one county sent another, and the feedback that came back, as both sides count them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct NoticePair {
    /// (stored at the sender, its receipt recorded there, stored at the receiver)
    notices: (u64, u64, u64),
    /// (stored at the receiver, its receipt recorded there, stored at the sender)
    feedback: (u64, u64, u64),
}

impl NoticePair {
    fn of(sender: (&str, &Tally), receiver: (&str, &Tally)) -> NoticePair {
        let key = |peer: &str, direction: &str| (peer.to_string(), direction.to_string());
        let get = |map: &BTreeMap<(String, String), (u64, u64)>, peer: &str, direction: &str| {
            map.get(&key(peer, direction)).copied().unwrap_or_default()
        };
        let (sent, acknowledged) = get(&sender.1.notices, receiver.0, "outbound");
        let (received, _) = get(&receiver.1.notices, sender.0, "inbound");
        let (answered, answer_acknowledged) = get(&receiver.1.feedback, sender.0, "outbound");
        let (answers_received, _) = get(&sender.1.feedback, receiver.0, "inbound");
        NoticePair {
            notices: (sent, acknowledged, received),
            feedback: (answered, answer_acknowledged, answers_received),
        }
    }

    /// Every notice stored once on each side with its receipt, and every feedback likewise.
    fn exactly_once(&self) -> bool {
        let (sent, acknowledged, received) = self.notices;
        let (answered, answer_acknowledged, answers_received) = self.feedback;
        sent == acknowledged
            && sent == received
            && answered == answer_acknowledged
            && answered == answers_received
    }

    fn any(&self) -> bool {
        self.notices != (0, 0, 0) || self.feedback != (0, 0, 0)
    }
}

/// ⑥ The summary. Waits for the last deliveries to settle, prints what each county holds and
/// each pair's counts, and returns whether every inquiry was answered exactly once.
pub async fn summary(cluster: &Cluster) -> anyhow::Result<bool> {
    let settling = Instant::now();
    let (tallies, pairs, notice_pairs) = loop {
        let mut tallies = Vec::new();
        for county in COUNTIES {
            tallies.push((county, Tally::read(cluster.node(county).store()).await?));
        }
        let mut pairs = Vec::new();
        for asker in &tallies {
            for responder in &tallies {
                let pair = Pair::of((asker.0, &asker.1), (responder.0, &responder.1));
                if asker.0 != responder.0 && (pair.sent > 0 || pair.received > 0) {
                    pairs.push((asker.0, responder.0, pair));
                }
            }
        }
        let mut notice_pairs = Vec::new();
        for sender in &tallies {
            for receiver in &tallies {
                let pair = NoticePair::of((sender.0, &sender.1), (receiver.0, &receiver.1));
                if sender.0 != receiver.0 && pair.any() {
                    notice_pairs.push((sender.0, receiver.0, pair));
                }
            }
        }
        let settled = tallies.iter().all(|(_, t)| t.outbox == 0)
            && pairs.iter().all(|(_, _, p)| p.exactly_once())
            && notice_pairs.iter().all(|(_, _, p)| p.exactly_once());
        if settled || settling.elapsed() > SETTLE {
            break (tallies, pairs, notice_pairs);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    println!("⑥ summary");
    let rows: Vec<Vec<String>> = tallies
        .iter()
        .map(|(county, tally)| {
            let (sent, _) = tally.inquiries("outbound");
            let (received, _) = tally.inquiries("inbound");
            let answered = tally.confirmations("outbound");
            vec![
                display::county(county),
                thousands(sent),
                thousands(received),
                thousands(answered.automatic),
                thousands(answered.by_hand),
                format!(
                    "{}/{}",
                    thousands(answered.delivered),
                    thousands(answered.total())
                ),
                if tally.outbox == 0 {
                    "empty".into()
                } else {
                    thousands(tally.outbox)
                },
                thousands(tally.audit),
            ]
        })
        .collect();
    let header = [
        "county",
        "inquiries sent",
        "received",
        "answered automatically",
        "by hand",
        "confirmations delivered",
        "outbox",
        "audit records",
    ];
    for line in display::table(&header, &rows).lines() {
        println!("  {line}");
    }
    println!();
    let mut all = true;
    for (asker, responder, pair) in &pairs {
        all &= pair.exactly_once();
        println!(
            "  {} → {}: sent {}, received {}, answered {}, answers delivered {}, answers stored at {} {}{}",
            county_name(asker),
            county_name(responder),
            thousands(pair.sent),
            thousands(pair.received),
            thousands(pair.answered_at_responder),
            thousands(pair.confirmations.delivered),
            county_name(asker),
            thousands(pair.confirmations_received.inquiries),
            if pair.exactly_once() {
                "  ✓"
            } else {
                "  ✗ MISMATCH"
            }
        );
    }
    let mut notices_once = true;
    for (sender, receiver, pair) in &notice_pairs {
        notices_once &= pair.exactly_once();
        let (sent, acknowledged, received) = pair.notices;
        let (answered, answer_acknowledged, answers_received) = pair.feedback;
        println!(
            "  {} → {}: notices sent {}, received {}, receipts recorded {}; feedback given {}, received at {} {}, receipts {}{}",
            county_name(sender),
            county_name(receiver),
            thousands(sent),
            thousands(received),
            thousands(acknowledged),
            thousands(answered),
            county_name(sender),
            thousands(answers_received),
            thousands(answer_acknowledged),
            if pair.exactly_once() {
                "  ✓"
            } else {
                "  ✗ MISMATCH"
            }
        );
    }
    let total: u64 = pairs.iter().map(|(_, _, p)| p.sent).sum();
    let notices: u64 = notice_pairs.iter().map(|(_, _, p)| p.notices.0).sum();
    let feedback: u64 = notice_pairs.iter().map(|(_, _, p)| p.feedback.0).sum();
    println!();
    if all {
        println!(
            "every inquiry answered exactly once: {} inquiries, {} confirmations, none lost, none twice",
            thousands(total),
            thousands(total)
        );
    } else {
        println!("NOT every inquiry was answered exactly once: see the ✗ lines above");
    }
    if notices_once {
        println!(
            "every notice and every feedback stored exactly once on both sides: {} notices, {} feedback, none lost, none twice",
            thousands(notices),
            thousands(feedback)
        );
    } else {
        println!("NOT every notice or feedback arrived exactly once: see the ✗ lines above");
    }
    all &= notices_once;
    println!();
    Ok(all)
}

/// The demo's last line: how long it took, setup and story apart. `started` is when the demo
/// began, `setup` how long it took to get the nodes serving with their registries.
pub fn elapsed(started: Instant, setup: Duration) {
    let elapsed = started.elapsed();
    println!(
        "elapsed {:.1} s: setup {:.1} s (PostgreSQL, databases, three nodes, registries), story {:.1} s",
        elapsed.as_secs_f64(),
        setup.as_secs_f64(),
        (elapsed - setup).as_secs_f64()
    );
}
