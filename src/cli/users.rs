//! `hancha users`: the web console's accounts (控制台登录) for county and township staff. Run
//! against the node's database (`--config`, like `hancha tokens`): making an account is an act
//! of whoever runs the node, not something a console visitor can do. Passwords are read from
//! standard input (one line), or asked twice without echo on a terminal, and kept only as
//! Argon2id hashes.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::bail;
use clap::{Args, Subcommand};

use super::client::runtime;
use super::exit::{Exit, NodeUnavailable};
use super::tokens::{ConfigArg, TokenRole, connect};
use crate::domain::policy::Principal;
use crate::store::StoreError;
use crate::web::logins::{MIN_PASSWORD_CHARS, check_new_password, hash_password};

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Make a console account. The password is read from standard input (one line), or asked
    /// twice without echo when standard input is a terminal; at least 10 characters.
    ///
    /// A county account sees and acts for the whole county; a township account (--role
    /// township --township CODE) sees that township's persons and inquiries only, like a
    /// township office's operator certificate. Audit records name the account's NAME.
    Add(AddArgs),
    /// List the accounts: name, scope, when made, locked or disabled (never the password
    /// hashes).
    List(ListArgs),
    /// Disable an account: it cannot log in, and its open sessions stop working at once. Its
    /// name stays taken, so that audit records naming it keep their meaning.
    Disable(NameArgs),
    /// End an account's lock (5 wrong passwords in a row lock it for 15 minutes) and clear
    /// its count of wrong passwords.
    Unlock(NameArgs),
    /// Set an account's password (read as for `add`): its open sessions end and a lock ends.
    Password(NameArgs),
}

#[derive(Debug, Args)]
pub struct AddArgs {
    #[command(flatten)]
    node: ConfigArg,
    /// The account's name, as audit records name the person: 1 to 64 letters, digits, '.',
    /// '-', '_' or '@' (e.g. wang.fang, township-101-clerk); never an ID number.
    #[arg(value_name = "NAME")]
    name: String,
    /// County-wide or one township's.
    #[arg(long, value_enum)]
    role: TokenRole,
    /// The township's 9-digit code (with --role township).
    #[arg(long, value_name = "CODE")]
    township: Option<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    node: ConfigArg,
    /// One JSON object per account instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct NameArgs {
    #[command(flatten)]
    node: ConfigArg,
    /// The account's name.
    #[arg(value_name = "NAME")]
    name: String,
}

pub fn run(command: UsersCommand) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        match command {
            UsersCommand::Add(args) => add(args).await,
            UsersCommand::List(args) => list(args).await,
            UsersCommand::Disable(args) => disable(args).await,
            UsersCommand::Unlock(args) => unlock(args).await,
            UsersCommand::Password(args) => password(args).await,
        }
    })
}

/// A store failure, saying what to do when the tables are missing (a node never started).
fn explained(error: StoreError) -> anyhow::Error {
    let text = error.to_string();
    if text.contains("console_") && text.contains("does not exist") {
        return anyhow::anyhow!(
            "the node's database has no console accounts table yet: start the node once with this version (it applies its migrations)"
        );
    }
    NodeUnavailable(format!("the node's database: {text}")).into()
}

/// The new password: one line of standard input, or asked twice without echo on a terminal;
/// `Err` names why it is refused.
fn read_password() -> anyhow::Result<Result<String, String>> {
    let password = if std::io::stdin().is_terminal() {
        let first =
            rpassword::prompt_password(format!("password (at least {MIN_PASSWORD_CHARS} characters): "))?;
        let second = rpassword::prompt_password("the same password again: ")?;
        if first != second {
            return Ok(Err("the two passwords differ".into()));
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    Ok(check_new_password(&password).map(|()| password))
}

/// The password read and hashed (on the blocking pool); `None` when refused (said on stderr).
async fn new_password_hash() -> anyhow::Result<Option<String>> {
    let password = match read_password()? {
        Ok(password) => password,
        Err(why) => {
            eprintln!("error: {why}");
            return Ok(None);
        }
    };
    let hash = tokio::task::spawn_blocking(move || hash_password(&password)).await??;
    Ok(Some(hash))
}

async fn add(args: AddArgs) -> anyhow::Result<ExitCode> {
    let township = match (args.role, &args.township) {
        (TokenRole::County, None) => None,
        (TokenRole::County, Some(_)) => bail!("--township goes with --role township only"),
        (TokenRole::Township, Some(code)) => Some(code.as_str()),
        (TokenRole::Township, None) => bail!("--role township needs --township CODE (9 digits)"),
    };
    let (config, store) = connect(&args.node).await?;
    // the very check a login with the account will pass: a name fit for the audit log, a
    // township of this county
    if let Err(refusal) = Principal::staff(&args.name, config.county, township) {
        eprintln!("error: {}", refusal.reason);
        return Ok(Exit::Refused.into());
    }
    let Some(hash) = new_password_hash().await? else {
        return Ok(Exit::Refused.into());
    };
    match store.add_console_account(&args.name, township, &hash).await {
        Ok(_) => {}
        Err(StoreError::AlreadyExists) => {
            eprintln!(
                "error: an account named {} exists (disabled ones keep their names): choose another name",
                args.name
            );
            return Ok(Exit::Refused.into());
        }
        Err(error) => return Err(explained(error)),
    }
    println!(
        "account {} made ({}): it logs in to the web console",
        args.name,
        match township {
            Some(code) => format!("township {code}"),
            None => format!("county {}", config.county),
        }
    );
    Ok(Exit::Done.into())
}

async fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let (config, store) = connect(&args.node).await?;
    let accounts = store.console_accounts().await.map_err(explained)?;
    let now = chrono::Utc::now();
    let time = |at: Option<chrono::DateTime<chrono::Utc>>| {
        at.map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    };
    for account in &accounts {
        let scope = match &account.township {
            Some(code) => format!("township:{code}"),
            None => format!("county:{}", config.county),
        };
        let locked_until = account.lock.locked_at(now);
        if args.json {
            println!(
                "{}",
                serde_json::json!({
                    "name": account.name,
                    "scope": scope,
                    "created_at": time(Some(account.created_at)),
                    "disabled_at": time(account.disabled_at),
                    "locked_until": time(locked_until),
                    "failed_attempts": account.lock.failed_attempts,
                })
            );
        } else {
            println!(
                "{:<24} {:<20} made {}{}{}",
                account.name,
                scope,
                time(Some(account.created_at)).unwrap_or_default(),
                time(locked_until)
                    .map(|at| format!("  LOCKED until {at}"))
                    .unwrap_or_default(),
                time(account.disabled_at)
                    .map(|at| format!("  DISABLED {at}"))
                    .unwrap_or_default()
            );
        }
    }
    if accounts.is_empty() && !args.json {
        println!("no console accounts (make one with `hancha users add NAME --role county|township`)");
    }
    Ok(Exit::Done.into())
}

/// What a command on one account says when there is none.
fn no_account(name: &str) -> ExitCode {
    eprintln!("error: no console account named {name}");
    Exit::Refused.into()
}

async fn disable(args: NameArgs) -> anyhow::Result<ExitCode> {
    let (_, store) = connect(&args.node).await?;
    match store.disable_console_account(&args.name).await {
        Ok(true) => println!("account {} disabled; its sessions ended", args.name),
        Ok(false) => println!("account {} was disabled already", args.name),
        Err(StoreError::NotFound) => return Ok(no_account(&args.name)),
        Err(error) => return Err(explained(error)),
    }
    Ok(Exit::Done.into())
}

async fn unlock(args: NameArgs) -> anyhow::Result<ExitCode> {
    let (_, store) = connect(&args.node).await?;
    match store.unlock_console_account(&args.name).await {
        Ok(()) => println!("account {} unlocked", args.name),
        Err(StoreError::NotFound) => return Ok(no_account(&args.name)),
        Err(error) => return Err(explained(error)),
    }
    Ok(Exit::Done.into())
}

async fn password(args: NameArgs) -> anyhow::Result<ExitCode> {
    let (_, store) = connect(&args.node).await?;
    let Some(hash) = new_password_hash().await? else {
        return Ok(Exit::Refused.into());
    };
    match store.set_console_password(&args.name, &hash).await {
        Ok(()) => println!("account {}: password set; its sessions ended", args.name),
        Err(StoreError::NotFound) => return Ok(no_account(&args.name)),
        Err(error) => return Err(explained(error)),
    }
    Ok(Exit::Done.into())
}
