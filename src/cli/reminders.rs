//! `hancha reminders`: issues the period's 催办通知书 through the node and writes one printable
//! page per person and the township office's CSV list into a directory only its owner can read.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::Utc;
use clap::Args;

use super::client::{NodeArgs, runtime};
use super::exit::UnusableFile;
use crate::domain::reminder::DEFAULT_DEADLINE_DAYS;
use crate::domain::report::ReportPeriod;
use crate::domain::time::china_time;
use crate::present::{display, explain, reminder};
use crate::proto::operator as pb;

/// What to issue and where to write it (the command's help is on `Command::Reminders`).
#[derive(Debug, Args)]
pub struct RemindersArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// The township (9-digit code); default the whole county (a township office: its own).
    #[arg(long, value_name = "CODE")]
    township: Option<String>,
    /// The quarter the reminders count for (2026Q4; default: the current quarter). A person is
    /// reminded once per quarter.
    /// Default: the current quarter in China Standard Time.
    #[arg(long, value_name = "PERIOD", value_parser = ReportPeriod::parse)]
    period: Option<ReportPeriod>,
    /// Days from today to the deadline printed on each notice.
    #[arg(long, value_name = "DAYS", default_value_t = DEFAULT_DEADLINE_DAYS)]
    deadline_days: u32,
    /// Also write again the reminders already issued in the period to people who still lack a
    /// certificate (same reference, same deadline: nothing new is issued), e.g. when the printed
    /// copies or the directory were lost.
    #[arg(long)]
    reissue: bool,
    /// The directory to write into (created, mode 0700).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

pub fn run(args: RemindersArgs) -> anyhow::Result<ExitCode> {
    prepare_directory(&args.out)?;
    runtime()?.block_on(async {
        let mut client = args.node.connect().await?;
        let request = pb::IssueRemindersRequest {
            period: args.period.map(|p| p.label()).unwrap_or_default(),
            township: args.township.clone().unwrap_or_default(),
            deadline_days: args.deadline_days,
            reissue: args.reissue,
        };
        let response = client
            .issue_reminders(request)
            .await
            .map_err(explain)?
            .into_inner();
        let place = args.township.clone().unwrap_or_else(|| response.county.clone());
        let written = write_files(&args.out, &response, &place).map_err(|error| {
            error.context(format!(
                "the reminders are issued but could not all be written to {}; run the command \
                 again with --reissue to write them",
                args.out.display()
            ))
        })?;
        print_summary(&args, &response, &place, written.as_deref());
        Ok(ExitCode::SUCCESS)
    })
}

/// Creates `dir` with mode 0700, or checks that an existing one is a directory no one else can
/// read or write. Refuses (exit 2, nothing issued) otherwise.
fn prepare_directory(dir: &Path) -> Result<(), UnusableFile> {
    let unusable = |why: String| UnusableFile(format!("{}: {why}; nothing was issued", dir.display()));
    match fs::symlink_metadata(dir) {
        Ok(meta) if !meta.is_dir() => Err(unusable("not a directory".into())),
        Ok(meta) if meta.permissions().mode() & 0o077 != 0 => Err(unusable(format!(
            "others may read it (mode {:o}); the reminders hold names and ID numbers: use a new \
             directory or `chmod 700` it",
            meta.permissions().mode() & 0o777
        ))),
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .and_then(|()| fs::set_permissions(dir, fs::Permissions::from_mode(0o700)))
            .map_err(|error| unusable(format!("cannot create it ({error})"))),
        Err(error) => Err(unusable(format!("cannot use it ({error})"))),
    }
}

/// Writes a page per reminder and the list; returns the list's file name (`None` when there is
/// nothing to write).
fn write_files(
    dir: &Path,
    response: &pb::IssueRemindersResponse,
    place: &str,
) -> anyhow::Result<Option<String>> {
    if response.reminders.is_empty() {
        return Ok(None);
    }
    for item in &response.reminders {
        write_private(
            &dir.join(reminder::file_name(item)),
            reminder::html(item, &response.county).as_bytes(),
        )?;
    }
    let stamp = china_time(Utc::now()).format("%Y%m%d-%H%M%S");
    let list = format!("reminders-{}-{place}-{stamp}.csv", response.period)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
        .collect::<String>();
    write_private(&dir.join(&list), &reminder::csv(&response.reminders)?)?;
    Ok(Some(list))
}

/// Writes `bytes` to `path` with mode 0600 (also when the file existed with another mode).
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?;
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}

fn print_summary(
    args: &RemindersArgs,
    response: &pb::IssueRemindersResponse,
    place: &str,
    list: Option<&str>,
) {
    let where_ = match &args.township {
        Some(code) => display::township(code),
        None => display::county(&response.county),
    };
    println!("催办通知书 {} for {where_}:", response.period);
    println!("  issued now        {}", response.issued);
    println!(
        "  already issued    {} (earlier in {}; not issued again)",
        response.already_issued, response.period
    );
    match list {
        Some(list) => {
            let pages = response.reminders.len();
            println!("  written           {pages} pages and the list {list}");
            println!("                    in {}", args.out.display());
        }
        None if response.already_issued > 0 => println!(
            "nothing new: everyone without a valid certificate in {place} was reminded in {} already \
             (--reissue writes those reminders again)",
            response.period
        ),
        None => println!("nothing to issue: no one in {place} lacks a valid certificate"),
    }
}
