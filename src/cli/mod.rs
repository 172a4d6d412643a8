//! The `hancha` command line: one file per subcommand, each with its `Args` and `run`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod agreement;
mod answer;
mod ask;
mod audit;
mod bench;
mod certs;
pub mod client;
mod csv_input;
mod demo;
mod dev;
pub mod exit;
mod feedback;
mod id;
mod notices;
mod notify;
mod notify_file;
mod pending;
mod pending_notices;
mod reconcile;
mod registry;
mod registry_history;
mod reminders;
mod report;
mod serve;
mod show;
mod show_notice;
mod sweep;
mod tokens;
mod users;
mod watch;
mod webhooks;
mod withdraw;

/// 函查 hancha: the gateway through which county governments exchange inquiries (函查) and
/// status confirmations (反馈) about people registered in one county and living in another.
#[derive(Debug, Parser)]
#[command(name = "hancha", version, propagate_version = true, after_help = exit::TABLE)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Three county nodes on this machine playing the exchange end to end: a certificate checked
    /// at a window, a sweep surviving a node's restart, answers by hand, indicators, a summary.
    Demo(demo::DemoArgs),
    /// Run this county's node: the peer listener and the workers.
    Serve(serve::ServeArgs),
    /// Ask another county about one person and wait briefly for the answer (a clerk's window).
    Ask(ask::AskArgs),
    /// Send a sweep (清查): inquiries about every person in a CSV file to one county.
    ///
    /// The file is read whole first (nothing is sent from a file that cannot be used), then sent a
    /// thousand rows at a time. Running the same command again with the same file adds nothing: the
    /// file's digest is the sweep key, and persons already asked under it are skipped, so a sweep the
    /// node broke off is finished by running it again.
    ///
    /// A person on more than one row is asked about once, for the first row; the others are refused
    /// by line. Each distinct reason a row is refused is printed once, with how many rows and the
    /// first lines.
    ///
    /// Exit codes: 0 every row sent, 1 some rows refused (named by line), 2 the file cannot be used
    /// (unreadable, undecodable, no resident_id column, a cell over 4 KiB, a record over 1 MiB or of
    /// more than 256 cells): nothing sent, 3 the node could not be reached or went away: run the same
    /// command again to send the rest.
    Sweep(sweep::SweepArgs),
    /// List inquiries waiting for our answer (or, with --outbound, for others'), by deadline;
    /// with --notices, the notices awaiting our feedback (or, with --outbound, the feedback we
    /// wait for).
    Pending(pending::PendingArgs),
    /// Show one inquiry with its history, or one notice with its feedback.
    Show(show::ShowArgs),
    /// Send one notice (信息通报) to another county: a birth, a pregnancy, a contraception check
    /// result (查环查孕), a departure. Checked against the agreement, queued, delivered, and
    /// acknowledged by the other county.
    Notify(notify::NotifyArgs),
    /// Give feedback (反馈) to a notice another county sent us that owes it (a birth).
    Feedback(feedback::FeedbackArgs),
    /// Answer a pending inquiry by hand.
    Answer(answer::AnswerArgs),
    /// Notices other counties sent us and what each did in our registry; apply or dismiss
    /// those that wait for an operator.
    ///
    /// Without a subcommand: the received notices, newest first (with --pending: those waiting
    /// for an operator, oldest first), with their subject's ID number masked.
    ///
    /// What a notice does at the origin is the agreement's `notice_effect`: "apply" updates the
    /// registry when the notice arrives, "operator" (the default) leaves it pending until an
    /// operator applies or dismisses it. A notice the registry cannot take by itself (the
    /// person is not registered here as outflow, a birth with no count to add to, a departure
    /// to an unknown county) waits too, with the reason. What each kind changes: README,
    /// "Effect at the origin". Every change is in `hancha registry history ID`.
    Notices(notices::NoticesArgs),
    /// Withdraw one of our inquiries the peer holds back for an agreement version mismatch
    /// (`held: waiting for …` in `hancha show`): it is never sent, and stays rejected, audited.
    Withdraw(withdraw::WithdrawArgs),
    /// The indicators (登记率, 办证率, 持验证率, 流出人口函查率, 查环查孕结果通报率) per township
    /// and for the county.
    Report(report::ReportArgs),
    /// Issue the 催办通知书 (reminder notices) of a period to inflow women without a valid
    /// certificate, once per person and period, and write them for printing.
    ///
    /// Every inflow woman aged 15–49 whom the registry shows without a marriage-and-childbearing
    /// certificate valid today (none recorded, `none`, `expired`, `revoked`, or `valid` but past
    /// its date) gets one reminder per period: running the command again in the same period
    /// issues reminders only to people who had none yet, and says so. Each page is named by its
    /// reference (`430703-2026Q4-000017.html`, which names nobody) and prints on A4 from any
    /// browser; the list for the township office is `reminders-PERIOD-PLACE-TIME.csv` (UTF-8 with
    /// a byte-order mark, for Excel).
    ///
    /// The directory is created with mode 0700 and every file with mode 0600: they hold names and
    /// ID numbers. An existing directory is used only if no one else can read it; when it cannot
    /// be used, nothing is issued (exit 2).
    Reminders(reminders::RemindersArgs),
    Reconcile(reconcile::ReconcileArgs),
    /// Follow the node's events as they happen: answers to our inquiries, inquiries and notices
    /// arriving, deadlines passing, refusals, reconciliation runs. Each event has a cursor;
    /// `--after CURSOR` resumes after the last one handled, missing nothing and repeating
    /// nothing, across node restarts. Events name messages by id only (`hancha show` reads them).
    Watch(watch::WatchArgs),
    /// The tamper-evident audit chain: verify it, see what peers showed of theirs, resume after
    /// a restore.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// The county's registry of persons: import from CSV, and each entry's history.
    #[command(subcommand)]
    Registry(registry::RegistryCommand),
    /// Check resident ID numbers (公民身份号码) by hand or from scripts.
    #[command(subcommand)]
    Id(id::IdCommand),
    /// Webhooks (推送): the county systems' endpoints that events are pushed to, signed, in
    /// order, retried until delivered. Add, list, rotate a secret, remove.
    #[command(subcommand)]
    Webhooks(webhooks::WebhooksCommand),
    /// Validate agreements (双向协议) and show their canonical hash.
    #[command(subcommand)]
    Agreement(agreement::AgreementCommand),
    /// API tokens for the county's systems calling the HTTP/JSON API (`[web]`): add, list,
    /// revoke. Run against the node's database (--config).
    #[command(subcommand)]
    Tokens(tokens::TokensCommand),
    /// Console accounts (控制台登录) for county and township staff: add, list, disable,
    /// unlock, set a password. Run against the node's database (--config).
    #[command(subcommand)]
    Users(users::UsersCommand),
    /// Print the OpenAPI 3 document of the HTTP/JSON API (JSON), made from the operator API's
    /// proto definitions; the node serves the same at /openapi.json. After changing the proto:
    /// `hancha openapi > docs/openapi.json`.
    Openapi,
    /// Create certificates for development and tests (never for production).
    #[command(subcommand)]
    Certs(certs::CertsCommand),
    /// Developer tools: a throwaway PostgreSQL for tests, demos and benchmarks.
    #[command(subcommand)]
    Dev(dev::DevCommand),
    /// Benchmarks that start their own nodes and databases.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

/// Parses the command line, runs the command and returns the process exit code.
///
/// Exit codes ([`exit`]): 0 done, 1 something refused or invalid, 2 an unusable file (nothing
/// sent) or a usage error, 3 the node could not be reached or went away.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Ask(args) => ask::run(args),
        Command::Sweep(args) => sweep::run(args),
        Command::Pending(args) => pending::run(args),
        Command::Show(args) => show::run(args),
        Command::Notify(args) => notify::run(args),
        Command::Feedback(args) => feedback::run(args),
        Command::Answer(args) => answer::run(args),
        Command::Notices(args) => notices::run(args),
        Command::Withdraw(args) => withdraw::run(args),
        Command::Report(args) => report::run(args),
        Command::Reminders(args) => reminders::run(args),
        Command::Reconcile(args) => reconcile::run(args),
        Command::Watch(args) => watch::run(args),
        Command::Audit(command) => audit::run(command),
        Command::Registry(command) => registry::run(command),
        Command::Id(command) => id::run(command),
        Command::Webhooks(command) => webhooks::run(command),
        Command::Agreement(command) => agreement::run(command),
        Command::Tokens(command) => tokens::run(command),
        Command::Users(command) => users::run(command),
        Command::Openapi => crate::web::openapi::document().map(|document| {
            print!("{document}");
            ExitCode::SUCCESS
        }),
        Command::Certs(command) => certs::run(command),
        Command::Dev(command) => dev::run(command),
        Command::Bench(command) => bench::run(command),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            // A certificate refused in the handshake fails the call with a bare "operation was
            // canceled"; the alert the node sent says why.
            let code = exit::of_error(&error);
            match client::handshake_refusal() {
                Some(refusal) => eprintln!("error: {refusal}"),
                None => match error.downcast_ref::<crate::present::NodeWentAway>() {
                    Some(gone) => eprintln!("error: {}", went_away_during_call(gone)),
                    None => eprintln!("error: {error:#}"),
                },
            }
            code.into()
        }
    }
}

/// What a command that is not a file command says when the node went away during its call:
/// whether the call took effect is not known here, so the operator looks before repeating it.
fn went_away_during_call(gone: &crate::present::NodeWentAway) -> String {
    let node = client::node_address().unwrap_or("the node's operator API");
    format!(
        "the node at {node} went away before it answered ({}); once it serves again, run the command again \
         (after a change such as ask or answer, look first with `hancha pending` or `hancha show`)",
        gone.cause
    )
}

/// Logs to stderr; `RUST_LOG` filters (default `info`), `RUST_LOG_FORMAT=json` switches to JSON.
pub(crate) fn init_tracing() {
    init_tracing_with("info");
}

/// [`init_tracing`] with another default level when `RUST_LOG` is not set. Colours only on a
/// terminal (and never with `NO_COLOR`): a log file or the journal gets plain lines.
pub(crate) fn init_tracing_with(default_level: &str) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let colours = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colours)
        .with_writer(std::io::stderr);
    let _ = if std::env::var("RUST_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
