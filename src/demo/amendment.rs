//! The story's amendment step: 鼎城区 and 新化县 extend their agreement by two years (version 2),
//! and the two counties apply it a day apart. The window keeps asking meanwhile: the nodes tell
//! each other which versions they hold (PeerStatus), so messages go under version 1 until both
//! hold version 2, and nothing is refused in between.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tonic::transport::Channel;

use super::cluster::Cluster;
use super::population::Population;
use super::story::outcome_label;
use super::{DINGCHENG, XINHUA};
use crate::domain::peer_status::describe_offset;
use crate::present::explain;
use crate::proto::operator as pb;
use crate::proto::operator::operator_client::OperatorClient;

/// The agreement amended.
const AGREEMENT: &str = "430703-431322";

/// How long the step waits for the two nodes to exchange their status.
const PATIENCE: Duration = Duration::from_secs(20);

/// ⑧ The amendment, one side at a time. Returns whether every inquiry asked meanwhile was
/// answered and both sides ended up sending under version 2.
pub async fn amend_one_side_at_a_time(cluster: &Cluster, population: &Population) -> anyhow::Result<bool> {
    println!("⑧ 协议修订 an amendment applied one county at a time");
    let version_2 = include_str!("../../examples/agreements/430703-431322.toml")
        .replacen("version = 1", "version = 2", 1)
        .replacen("valid_until = 2028-12-31", "valid_until = 2030-12-31", 1);
    // both counties sign the amended terms (`hancha agreement sign`), with the development keys
    let version_2 = super::files::signed_with_development_keys(&version_2, [DINGCHENG, XINHUA])?;
    println!("  Version 2 of {AGREEMENT} extends it to 2030-12-31. 新化县 applies it first:");
    let mut xinhua = cluster.operator(XINHUA).await?;
    let mut dingcheng = cluster.operator(DINGCHENG).await?;
    apply(&mut xinhua, &version_2).await?;
    let list = settled(&mut xinhua, |v2| v2.held_by_peer != "unknown").await?;
    print_versions("新化县", "鼎城区", &list);

    let people: Vec<String> = population
        .xinhua_in_dingcheng
        .iter()
        .skip(2)
        .take(2)
        .map(|migrant| migrant.resident_id.as_str().to_string())
        .collect();
    let Some((first, second)) = people.first().zip(people.get(1)) else {
        bail!("the population has too few 新化县 people in 鼎城区");
    };
    let before = ask(cluster, &mut dingcheng, first).await?;
    println!("  meanwhile a 鼎城区 window asks 新化县 about a woman: {before}");

    println!("  鼎城区 applies version 2 the next morning:");
    apply(&mut dingcheng, &version_2).await?;
    let list = settled(&mut dingcheng, |v2| v2.sending).await?;
    settled(&mut xinhua, |v2| v2.sending).await?;
    print_versions("鼎城区", "新化县", &list);
    let after = ask(cluster, &mut dingcheng, second).await?;
    println!("  the window asks about another woman: {after}");
    if let Some(peer) = list.peers.iter().find(|peer| peer.peer_county == XINHUA) {
        println!(
            "  the nodes exchange their status on connect, every minute and after each apply: \
             新化县 runs hancha {}, its clock {} ours by {}",
            peer.software_version,
            if peer.clock_offset_ms >= 0 {
                "ahead of"
            } else {
                "behind"
            },
            describe_offset(peer.clock_offset_ms.unsigned_abs())
        );
    }
    println!();
    Ok(before.starts_with("answered")
        && before.ends_with("under version 1")
        && after.starts_with("answered")
        && after.ends_with("under version 2"))
}

async fn apply(client: &mut OperatorClient<Channel>, text: &str) -> anyhow::Result<()> {
    client
        .apply_agreement(pb::ApplyAgreementRequest {
            text: text.to_string(),
        })
        .await
        .map_err(explain)
        .context("applying version 2")?;
    Ok(())
}

/// The node's agreement list once its version 2 of the agreement satisfies `done`.
async fn settled(
    client: &mut OperatorClient<Channel>,
    done: impl Fn(&pb::AgreementInfo) -> bool,
) -> anyhow::Result<pb::ListAgreementsResponse> {
    let started = Instant::now();
    loop {
        let list = client
            .list_agreements(pb::ListAgreementsRequest {})
            .await
            .map_err(explain)?
            .into_inner();
        if list
            .agreements
            .iter()
            .any(|a| a.id == AGREEMENT && a.version == 2 && done(a))
        {
            return Ok(list);
        }
        if started.elapsed() > PATIENCE {
            bail!("the two nodes did not exchange their status within {PATIENCE:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The versions of the agreement as `who`'s `hancha agreement list` shows them.
fn print_versions(who: &str, peer: &str, list: &pb::ListAgreementsResponse) {
    for info in list.agreements.iter().filter(|a| a.id == AGREEMENT) {
        let line = format!(
            "    {who}: version {}  {:<17} {peer} holds it: {:<4}{}",
            info.version,
            crate::present::display::stage(&info.stage),
            info.held_by_peer,
            if info.sending {
                "← messages go out under it"
            } else {
                ""
            }
        );
        println!("{}", line.trim_end());
    }
}

/// Asks 新化县 about `resident_id` as the window does; what became of it and the agreement
/// version it went under (as 鼎城区 stored it), in a few words.
async fn ask(
    cluster: &Cluster,
    dingcheng: &mut OperatorClient<Channel>,
    resident_id: &str,
) -> anyhow::Result<String> {
    let answer = dingcheng
        .ask(pb::AskRequest {
            to_county: XINHUA.into(),
            kind: "certificate_verification".into(),
            resident_id: resident_id.to_string(),
            wait_ms: 2_000,
            ..Default::default()
        })
        .await
        .map_err(explain)
        .context("asking 新化县")?
        .into_inner();
    let what = match answer.state.as_str() {
        "answered" => format!("answered ({})", outcome_label(&answer.outcome)),
        other => format!("{other}: {}", answer.reject_reason),
    };
    let id = answer.message_id.parse().context("the inquiry's id")?;
    let store = cluster.node(DINGCHENG).store();
    let inquiry = store.inquiry(id).await?.context("the inquiry is stored")?;
    let version = store
        .agreements()
        .await?
        .into_iter()
        .find(|stored| stored.hash == inquiry.agreement_hash)
        .map(|stored| stored.version.to_string())
        .unwrap_or_else(|| "?".into());
    Ok(format!("{what} under version {version}"))
}
