//! `hancha demo`: three county nodes (鼎城区, 邵东市, 新化县) in this process over real mutual
//! TLS, each on its own fresh PostgreSQL database, playing the exchange the project exists for.
//! Everything it starts — databases or a throwaway server, nodes, scratch files — is removed at
//! the end, on error and on Ctrl-C too.

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use futures::FutureExt;

use crate::demo::files::Scratch;
use crate::demo::population::Population;
use crate::demo::{COUNTIES, DINGCHENG, SHAODONG, Stage, XINHUA, thousands};
use crate::demo::{amendment, evidence, manual, notices, push, reconcile, story, summary};
use crate::devdb::Databases;
use crate::domain::person::Flow;

/// The demo's options. The subcommand's one-line description is in `src/cli/mod.rs`; what
/// follows the options in `--help` is [`DEMO_HELP`].
#[derive(Debug, Args)]
#[command(after_help = DEMO_HELP)]
pub struct DemoArgs {
    /// Inquiries in 新化县's sweep of its outflow persons living in 鼎城区 (at most the
    /// agreement's daily cap of 20,000).
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u32).range(30..=20_000))]
    sweep_size: u32,
    /// After the story, keep the nodes running and print commands to try against them; Ctrl-C
    /// stops them and cleans up.
    #[arg(long)]
    keep_running: bool,
}

/// Where the demo keeps its data and what it prints, after the options in `--help`.
const DEMO_HELP: &str = "\
The story: a clerk at a 鼎城区 township window verifies a 新化县 woman's certificate (查证验证);
新化县 sweeps (清查) its outflow persons living in 鼎城区 while its node is stopped for maintenance
and restarted; 邵东市's inquiries wait in 鼎城区's pending list until an operator answers them; the
four indicators (四率); a count on both sides that every inquiry was answered exactly once; and
the night's reconciliation (对账) of 新化县 with 鼎城区, after 新化县 restored a backup that lost
answers and 鼎城区 registered a birth 新化县 was not told of: the lost answers are delivered again,
and the people the registries disagree on are reported and asked about; then an amendment of the
鼎城区–新化县 agreement applied by one county a day before the other, the window asking throughout;
and the evidence (证据) a county operator can stand behind: who signed each agreement version in
force and that each signature verified; each node's audit chain sealed, verified intact and held by
its peers through the status exchange, then one record of 鼎城区 changed as a database
administrator could (trigger off, UPDATE, trigger on) and found by the verification, and put back;
邵东市's node certificate renewed and reloaded without a restart; each agreement's retention_days
and the erasure worker's state (nothing is due: the messages are minutes old); and what 新化县's
own county system was pushed: each answer of the sweep as a signed webhook, in the order of the
event stream (`hancha watch`).

Databases: the PostgreSQL at DATABASE_URL when it is set and reachable (three fresh databases,
dropped at the end; the role needs CREATEDB), otherwise a throwaway PostgreSQL started for the demo
and removed at the end (its server binaries must be installed: apt-get install postgresql).
The story goes to stdout; what was started and removed, and the nodes' errors, to stderr
(RUST_LOG=info shows the nodes' logs). Exit status: 0 when every inquiry was answered exactly once,
the reconciliation brought the lost answers back, the amendment refused nothing and the evidence
held (signatures verified, chains intact and witnessed, the change found, the renewed certificate
in use) and the county system got every answer once, in order, signed; 1 otherwise or on error,
130 when interrupted.";

/// What the story leaves for the commands printed with `--keep-running`.
struct Played {
    /// Whether every inquiry was answered exactly once.
    exactly_once: bool,
    /// Whether the night's reconciliation brought back every answer 新化县 lost.
    restored: bool,
    /// Whether the amendment, applied one side at a time, refused nothing.
    amended: bool,
    /// Whether the evidence held: signatures, audit chains, the renewed certificate.
    evidence: bool,
    /// Whether 新化县's county system was pushed every answer once, in order, signed.
    pushed: bool,
    /// The window inquiry's id at 鼎城区.
    window_message: String,
    /// A 新化县 woman living in 鼎城区, to ask about.
    someone_to_ask: String,
    /// A CSV of 新化县 people living in 鼎城区 whom 鼎城区 has not registered, to import.
    arrivals: Option<PathBuf>,
    /// Inquiries left in 鼎城区's pending list to answer by hand.
    left_pending: Vec<manual::LeftPending>,
}

pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let started = Instant::now();
        let mut stage = Stage::default();
        // A panic (say, stdout closed by `| head`) must not leave databases or files behind:
        // tear down first, then let it continue.
        let outcome = AssertUnwindSafe(run_on(&args, &mut stage, started))
            .catch_unwind()
            .await;
        stage.tear_down().await;
        eprintln!("demo: finished in {:.1} s", started.elapsed().as_secs_f64());
        outcome.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Plays the story on `stage` until it ends or the user interrupts it; with `--keep-running`,
/// then waits for the interrupt.
async fn run_on(args: &DemoArgs, stage: &mut Stage, started: Instant) -> anyhow::Result<ExitCode> {
    let outcome = tokio::select! {
        outcome = play(args, stage, started) => outcome?,
        signal = interrupted() => {
            eprintln!("demo: {signal}: stopping the nodes and cleaning up");
            return Ok(ExitCode::from(130));
        }
    };
    if args.keep_running {
        print_commands(stage, &outcome);
        let signal = interrupted().await;
        eprintln!("demo: {signal}: stopping the nodes and cleaning up");
    }
    exit_code(&outcome)
}

fn exit_code(played: &Played) -> anyhow::Result<ExitCode> {
    Ok(
        if played.exactly_once && played.restored && played.amended && played.evidence && played.pushed {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        },
    )
}

/// Sets the stage up step by step (so that whatever was started is torn down if a later step
/// fails) and plays the story.
async fn play(args: &DemoArgs, stage: &mut Stage, started: Instant) -> anyhow::Result<Played> {
    let population = Population::generate(args.sweep_size as usize);
    let scratch = stage.scratch.insert(Scratch::write()?);
    eprintln!(
        "demo: development certificates and agreements written to {}",
        scratch.root().display()
    );
    let databases = stage.databases.insert(Databases::provision("demo").await?);
    let mut urls = Vec::new();
    for county in COUNTIES {
        urls.push((county, databases.create(county).await?));
    }
    eprintln!("demo: created databases {}", databases.names().join(", "));
    let scratch = stage.scratch.as_ref().expect("written above");
    let limits = crate::demo::cluster::demo_limits(args.sweep_size as usize);
    stage.cluster.start(scratch, &urls, &limits).await?;
    eprintln!("demo: started three county nodes in this process on 127.0.0.1");

    println!("函查 hancha demo: three county nodes exchanging over mutual TLS 1.3 on 127.0.0.1");
    let filling = Instant::now();
    for county in COUNTIES {
        let persons = population.registry_of(county);
        for chunk in persons.chunks(5_000) {
            stage
                .cluster
                .node(county)
                .store()
                .upsert_persons(chunk)
                .await
                .with_context(|| format!("filling the registry of {county}"))?;
        }
        let inflow = persons.iter().filter(|p| p.flow == Flow::Inflow).count() as u64;
        println!(
            "  {}  peers at {}  operator API at {}  registry {} persons ({} inflow, {} outflow)",
            crate::present::display::county(county),
            stage.cluster.peer_address(county),
            stage.cluster.operator_address(county),
            thousands(persons.len() as u64),
            thousands(inflow),
            thousands(persons.len() as u64 - inflow)
        );
    }
    println!(
        "  agreements 430703-431322 (鼎城区–新化县) and 430703-430582 (鼎城区–邵东市); synthetic registries filled in {:.1} s",
        filling.elapsed().as_secs_f64()
    );
    println!();
    let setup = started.elapsed();

    let county_system = push::connect_county_system(&stage.cluster).await?;
    let window = story::verify_at_the_window(&stage.cluster, &population).await?;
    story::sweep_with_maintenance(&mut stage.cluster, &population).await?;
    manual::answer_by_hand(&stage.cluster, &population).await?;
    let notified = notices::notices(&stage.cluster, &population).await?;
    summary::indicators(&stage.cluster).await?;
    let exactly_once = summary::summary(&stage.cluster).await? && notified;
    // After the count: the step breaks 新化县's database on purpose, then repairs it.
    let restored = reconcile::reconcile_overnight(&stage.cluster, &population).await?;
    let amended = amendment::amend_one_side_at_a_time(&stage.cluster, &population).await?;
    let scratch = stage.scratch.as_ref().expect("written above");
    let evidence = evidence::evidence(&stage.cluster, scratch).await?;
    let pushed = push::pushed(&stage.cluster, &county_system).await?;
    summary::elapsed(started, setup);
    let someone_to_ask = population
        .xinhua_in_dingcheng
        .iter()
        .skip(1)
        .find(|m| m.status.certificate_number.is_some())
        .map(|m| m.resident_id.as_str().to_string())
        .unwrap_or_default();
    let (arrivals, left_pending) = match (args.keep_running, &stage.scratch) {
        (true, Some(scratch)) => (
            Some(write_arrivals(&population, scratch)?),
            manual::leave_for_the_operator(&stage.cluster, &population).await?,
        ),
        _ => (None, Vec::new()),
    };
    Ok(Played {
        exactly_once,
        restored,
        amended,
        evidence,
        pushed,
        window_message: window.message_id,
        someone_to_ask,
        arrivals,
        left_pending,
    })
}

/// Writes the 新化县 people living in 鼎城区 whom 鼎城区 never registered as a registry import
/// file for 鼎城区, so that `hancha registry import` can raise its 登记率.
fn write_arrivals(population: &Population, scratch: &Scratch) -> anyhow::Result<PathBuf> {
    use crate::domain::vocabulary::StatusField;
    let path = scratch.root().join("arrivals-from-431322.csv");
    let mut writer = csv::Writer::from_path(&path).with_context(|| format!("writing {}", path.display()))?;
    let mut header = vec!["resident_id", "name", "flow", "registered_county"];
    header.extend(StatusField::ALL.iter().map(|field| field.as_str()));
    writer.write_record(&header)?;
    for migrant in population
        .xinhua_in_dingcheng
        .iter()
        .filter(|m| !m.known_at_destination)
    {
        let person = migrant.as_inflow();
        let mut row = vec![
            person.resident_id.as_str().to_string(),
            person.name.clone(),
            person.flow.as_str().to_string(),
            person.registered_county.as_str().to_string(),
        ];
        row.extend(
            StatusField::ALL
                .iter()
                .map(|field| person.status.get_string(*field).unwrap_or_default()),
        );
        writer.write_record(&row)?;
    }
    writer.flush()?;
    Ok(path)
}

/// The commands a newcomer can try against the running nodes.
fn print_commands(stage: &Stage, played: &Played) {
    let hancha = command_path();
    let node = |county: &str| stage.cluster.operator_address(county);
    let (dingcheng, shaodong, xinhua) = (node(DINGCHENG), node(SHAODONG), node(XINHUA));
    println!();
    println!(
        "The three nodes keep running. Each county's web console (控制台), in a browser on this machine:"
    );
    for county in [DINGCHENG, XINHUA, SHAODONG] {
        if let Some(url) = stage.cluster.console_url(county) {
            println!("  控制台 console {}: ", crate::present::display::county(county));
            println!("  {url}");
        }
    }
    println!("Or try from another shell (Ctrl-C here stops them and cleans up):");
    println!(
        "  # 鼎城区: {} more inquiries from 邵东市 wait for an operator; answer one from the registry",
        played.left_pending.len()
    );
    println!("  {hancha} pending --node {dingcheng}");
    if let Some(left) = played.left_pending.first() {
        let fields: String = left.fields.iter().map(|f| format!(" --field {f}")).collect();
        println!(
            "  {hancha} answer --node {dingcheng} {} --outcome found{fields}",
            left.message_id
        );
    }
    println!("  # 鼎城区's four indicators (登记率, 办证率, 持验证率, 流出人口函查率)");
    println!("  {hancha} report --node {dingcheng}");
    println!("  # 鼎城区 verifies another 新化县 woman's certificate, answered inline");
    println!(
        "  {hancha} ask --node {dingcheng} --to {XINHUA} --id {} --wait 2s",
        played.someone_to_ask
    );
    println!("  # the window inquiry of step ① with its history");
    println!("  {hancha} show --node {dingcheng} {}", played.window_message);
    if let Some(arrivals) = &played.arrivals {
        println!(
            "  # register the 新化县 people 鼎城区 did not know (the sweep's not-found), then see 登记率 rise"
        );
        println!(
            "  {hancha} registry import --node {dingcheng} {}",
            arrivals.display()
        );
    }
    println!("  # what 新化县's own systems were told (事件): the sweep's answers, from the first event;");
    println!("  # keep the last cursor and pass it back with --after to miss nothing");
    println!("  {hancha} watch --node {xinhua} --types answer.received --count 5");
    println!("  # 新化县 reconciles with 鼎城区 again (对账), then lists the runs and the persons found");
    println!("  {hancha} reconcile --with {DINGCHENG} --node {xinhua}");
    println!("  {hancha} reconcile reports --node {xinhua}");
    println!("  {hancha} reconcile reports --csv --node {xinhua}");
    println!("  # the agreements 新化县 holds; the one under which 鼎城区 answers 邵东市 by hand");
    println!("  {hancha} agreement list --node {xinhua}");
    println!("  {hancha} agreement show --node {shaodong} 430703-430582");
    println!("  # 鼎城区's audit chain checked, and what each peer showed of its own (证据)");
    println!("  {hancha} audit verify --node {dingcheng}");
    println!("  {hancha} audit peers --node {dingcheng}");
    println!("  # each node's metrics for Prometheus (alert rules and a Grafana dashboard in deploy/)");
    for county in [DINGCHENG, XINHUA, SHAODONG] {
        println!(
            "  curl -s {}   # {}",
            stage.cluster.metrics_url(county),
            crate::present::display::county(county)
        );
    }
}

/// How to run this binary from the current directory: `target/release/hancha` after
/// `cargo run --release`, the full path otherwise.
fn command_path() -> String {
    let Ok(exe) = std::env::current_exe() else {
        return "hancha".into();
    };
    let relative = std::env::current_dir()
        .ok()
        .and_then(|dir| exe.strip_prefix(dir).ok().map(PathBuf::from));
    relative.unwrap_or(exe).display().to_string()
}

/// Resolves at the first Ctrl-C or SIGTERM, naming it.
async fn interrupted() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => tokio::select! {
            _ = tokio::signal::ctrl_c() => "interrupted",
            _ = terminate.recv() => "terminated",
        },
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            "interrupted"
        }
    }
}

/// The nodes' logs go to stderr like every command's, but only errors unless `RUST_LOG` asks for
/// more: the story on stdout is what a newcomer reads.
fn init_logging() {
    super::init_tracing_with("error");
}
