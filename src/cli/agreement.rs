//! `hancha agreement`: check a document locally; apply, retire, list and show the versions a
//! node holds.

use crate::present::explain;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::json;

use super::client::{NodeArgs, runtime};
use super::exit::{Exit, UnusableFile};
use crate::config::NodeConfig;
use crate::domain::agreement::{Admission, Agreement, admit};
use crate::domain::peer_status::describe_offset;
use crate::domain::time::china_date;
use crate::node::{AgreementSignatures, SignAgreementError, sign_agreement};
use crate::present::display;
use crate::proto::operator as pb;
use crate::tls::{NodeIdentity, Revocation, TrustAnchors};

#[derive(Debug, Subcommand)]
pub enum AgreementCommand {
    /// Validate an agreement (TOML): print its canonical hash, a summary and its signatures, or
    /// every error with its line. With `--trust` (or `--config`, for the node's trust anchors
    /// and CRLs) each signature is verified as a node would on `apply`. Exits 0 when valid (and, when
    /// checked, signed by every party), 2 when the file cannot be used (invalid, a version
    /// already expired, a party's signature missing or failing). Needs no node.
    Check(CheckArgs),
    /// Sign an agreement as one of its parties: append a `[[signature]]` table with this
    /// county's signature over the canonical hash (prefixed "hancha agreement v1" and the
    /// signing time, so it can never pass for anything else this key signs). The terms and the
    /// hash are untouched, so the file goes on to the other county, which signs too; a node
    /// applies a version only once every party has signed it.
    Sign(SignArgs),
    /// Install a new agreement version on the node (checked here first, then validated and
    /// hashed there). An amendment must raise `version`; it is sent under once the peer holds it
    /// too. Exits 2 when the file cannot be used (invalid, expired, older than or clashing with
    /// a version the node holds) and nothing was written.
    Apply(ApplyArgs),
    /// List the agreement versions the node holds: validity, where each stands here (in force,
    /// waiting for the peer, not yet valid, expired, retired), whether the peer holds it, which
    /// one messages go out under now; then each peer's last status (software, clock offset).
    List(ListArgs),
    /// Take a version out of force here, with an audit record: nothing new is sent or taken
    /// under it (answers to inquiries asked under it still are), and the peer hears of it at
    /// once. Messages then go under the newest other version both sides hold.
    Retire(RetireArgs),
    /// Show one agreement (newest version, or the one with this hash) with its full text.
    Show(ShowArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The agreement document (TOML).
    file: PathBuf,
    /// CA certificates (PEM) the signers' certificates must chain to: the node's trust anchors.
    #[arg(long, value_name = "CA.pem", conflicts_with = "config")]
    trust: Option<PathBuf>,
    /// A node configuration whose `tls.trust_anchors` verify the signatures, and whose
    /// `tls.crls` refuse a signature made with a revoked certificate.
    #[arg(long, value_name = "NODE.toml")]
    config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// The agreement document (TOML); the signature is appended to it.
    file: PathBuf,
    /// This county's certificate (PEM): it must name one of the agreement's parties and is
    /// copied into the signature so that the other county can check it.
    #[arg(long, value_name = "CERT.pem")]
    cert: PathBuf,
    /// The certificate's private key (PEM). Read, never copied or printed.
    #[arg(long, value_name = "KEY.pem")]
    key: PathBuf,
    /// Write the signed document here instead of replacing FILE.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// The agreement document (TOML).
    file: PathBuf,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct RetireArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// Agreement id, e.g. 430703-431322.
    id: String,
    /// The version to retire.
    #[arg(value_name = "VERSION", id = "agreement_version")]
    number: u32,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// Agreement id (e.g. 430703-431322) or a version's hash.
    id: String,
}

pub fn run(command: AgreementCommand) -> anyhow::Result<ExitCode> {
    match command {
        AgreementCommand::Check(args) => check(args),
        AgreementCommand::Sign(args) => sign(args),
        AgreementCommand::Apply(args) => apply(args),
        AgreementCommand::List(args) => list(args),
        AgreementCommand::Retire(args) => retire(args),
        AgreementCommand::Show(args) => show(args),
    }
}

fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let Some((agreement, warnings)) = checked(&args.file)? else {
        return Ok(Exit::Unusable.into());
    };
    println!("{}", agreement.summary());
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
    let anchors = match (&args.trust, &args.config) {
        (Some(path), _) => Some((path.clone(), Revocation::default())),
        (None, Some(config)) => {
            let tls = NodeConfig::load(config)?.tls;
            let revocation = Revocation::from_files(&tls.crls, tls.crl_grace)
                .context("loading the CRLs (tls.crls) to check the signatures with")?;
            Some((tls.trust_anchors, revocation))
        }
        (None, None) => None,
    };
    let Some((anchors, revocation)) = anchors else {
        for entry in agreement.signatures() {
            println!(
                "signature by {} {}, signed {} (not verified: give --trust or --config)",
                entry.county,
                entry.county.name(),
                entry.signed_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            );
        }
        if agreement.signatures().is_empty() {
            println!("no signatures");
        }
        return Ok(ExitCode::SUCCESS);
    };
    let signatures = AgreementSignatures {
        required: true,
        anchors: Some(
            TrustAnchors::from_pem_file(&anchors)
                .with_context(|| format!("loading the trust anchors {}", anchors.display()))?
                .with_revocation(revocation)
                .into(),
        ),
    };
    let report = signatures.examine(&agreement, chrono::Utc::now());
    for (entry, check) in agreement.signatures().iter().zip(&report.checks) {
        let record = report
            .records
            .iter()
            .find(|record| record.signed_at == entry.signed_at && record.signer_county == entry.county);
        println!(
            "signature by {} {}, signed {}, certificate {}: {}",
            entry.county,
            entry.county.name(),
            entry.signed_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            record
                .map(|record| &record.cert_fingerprint[..16.min(record.cert_fingerprint.len())])
                .filter(|fingerprint| !fingerprint.is_empty())
                .unwrap_or("unreadable"),
            match &check.outcome {
                Ok(_) => "verified".to_string(),
                Err(reason) => format!("REFUSED: {reason}"),
            }
        );
    }
    match report.verdict {
        Ok(()) => {
            println!("signed by every party");
            Ok(ExitCode::SUCCESS)
        }
        Err(unsigned) => {
            eprintln!("{}: {unsigned}", args.file.display());
            Ok(Exit::Unusable.into())
        }
    }
}

fn sign(args: SignArgs) -> anyhow::Result<ExitCode> {
    let text = read(&args.file)?;
    let identity = NodeIdentity::from_pem_files(&args.cert, &args.key)
        .context("loading the signing certificate and key")?;
    let signed = match sign_agreement(&text, &identity, chrono::Utc::now()) {
        Ok(signed) => signed,
        Err(error @ SignAgreementError::Sign(_)) => return Err(error.into()),
        Err(refusal) => {
            eprintln!("{}: {refusal}", args.file.display());
            return Ok(Exit::Unusable.into());
        }
    };
    let out = args.out.as_ref().unwrap_or(&args.file);
    std::fs::write(out, &signed).with_context(|| format!("writing {}", out.display()))?;
    let agreement = Agreement::parse(&signed).map_err(|errors| anyhow::anyhow!("{errors}"))?;
    let signers: Vec<String> = agreement
        .signatures()
        .iter()
        .map(|entry| entry.county.to_string())
        .collect();
    println!(
        "signed {} version {} (hash {}) as {}: {} now carries the signatures of {}",
        agreement.id(),
        agreement.version(),
        agreement.canonical_hash(),
        identity.county(),
        out.display(),
        signers.join(", ")
    );
    let missing: Vec<String> = agreement
        .parties()
        .iter()
        .filter(|party| {
            !agreement
                .signatures()
                .iter()
                .any(|e| e.county.current() == party.current())
        })
        .map(|party| format!("{party} {}", party.name()))
        .collect();
    if !missing.is_empty() {
        println!(
            "still to sign: {} (send them this file; a node applies the version once every party has signed)",
            missing.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The agreement in `path`, checked as far as it can be without a node: parsed, and admitted
/// as a node would admit it on `apply` (an expired version is refused; one not valid yet is
/// installed with a warning, returned). `None` after printing why the file cannot be used:
/// each error with its line, the line itself and a caret at its column.
fn checked(path: &PathBuf) -> anyhow::Result<Option<(Agreement, Vec<String>)>> {
    let text = read(path)?;
    match Agreement::parse(&text) {
        Ok(agreement) => match admit(&agreement, &[], china_date(chrono::Utc::now())) {
            Err(refusal) => {
                eprintln!("{}: {refusal}", path.display());
                Ok(None)
            }
            Ok(Admission::New { warnings }) => Ok(Some((agreement, warnings))),
            Ok(Admission::AlreadyInstalled) => Ok(Some((agreement, Vec::new()))),
        },
        Err(errors) => {
            eprintln!("{}: not a valid agreement", path.display());
            // The file is the operator's own: show the line at fault under each error, with a
            // caret at its column (errors themselves never quote values; see domain::privacy).
            let lines: Vec<&str> = text.lines().collect();
            for error in errors.iter() {
                eprintln!("  {error}");
                if let Some(source) = error.line.checked_sub(1).and_then(|index| lines.get(index)) {
                    eprintln!("    | {source}");
                    let caret = source.chars().take(error.column.saturating_sub(1)).count();
                    eprintln!("    | {}^", " ".repeat(caret));
                }
            }
            Ok(None)
        }
    }
}

fn apply(args: ApplyArgs) -> anyhow::Result<ExitCode> {
    // checked here first, so that a file no node would take is named with its lines, and
    // nothing is sent
    let Some((agreement, _)) = checked(&args.file)? else {
        return Ok(Exit::Unusable.into());
    };
    let text = agreement.source_text().to_string();
    runtime()?.block_on(async {
        let mut client = args.node.connect().await?;
        let applied = client
            .apply_agreement(pb::ApplyAgreementRequest { text })
            .await
            .map_err(|status| match status.code() {
                // the node refused this version (older than one it holds, another version's
                // number, not a party): the file cannot be used there, and nothing was written
                tonic::Code::FailedPrecondition | tonic::Code::InvalidArgument => anyhow::Error::new(
                    UnusableFile(format!("{}: {}", args.file.display(), explain(status))),
                ),
                _ => explain(status),
            })?
            .into_inner();
        let info = applied.agreement.unwrap_or_default();
        let what = if applied.new_version {
            "installed"
        } else {
            "already installed"
        };
        println!(
            "{what}: {} version {} (hash {})",
            info.id, info.version, info.hash
        );
        println!("{}", info.summary);
        for warning in &applied.warnings {
            eprintln!("warning: {warning}");
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let mut client = args.node.connect().await?;
        let list = client.list_agreements(pb::ListAgreementsRequest {}).await.map_err(explain)?.into_inner();
        let peer_of = |code: &str| list.peers.iter().find(|peer| peer.peer_county == code);
        if args.json {
            for a in &list.agreements {
                let peer = peer_of(&a.peer_county);
                println!(
                    "{}",
                    json!({ "id": a.id, "version": a.version, "hash": a.hash, "peer_county": a.peer_county,
                            "valid_from": a.valid_from, "valid_until": a.valid_until, "in_force": a.in_force,
                            "stage": a.stage, "held_by_peer": a.held_by_peer, "sending": a.sending,
                            "retired_at": a.retired_at.as_ref().map(|at| display::rfc3339(Some(at))),
                            "signatures": a.signatures.iter().map(|sig| json!({
                                "county": sig.county, "signed_at": display::rfc3339(sig.signed_at.as_ref()),
                                "cert_fingerprint": sig.cert_fingerprint,
                                "verified_at": display::rfc3339(sig.verified_at.as_ref()), "outcome": sig.outcome,
                            })).collect::<Vec<_>>(),
                            "peer_clock_offset_ms": peer.map(|p| p.clock_offset_ms),
                            "peer_status_at": peer.map(|p| display::rfc3339(p.checked_at.as_ref())) })
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
        let rows: Vec<Vec<String>> = list
            .agreements
            .iter()
            .map(|a| {
                vec![
                    a.id.clone(),
                    a.version.to_string(),
                    display::county(&a.peer_county),
                    format!("{} … {}", a.valid_from, a.valid_until),
                    display::stage(&a.stage).to_string(),
                    a.held_by_peer.clone(),
                    signed_by(&a.signatures),
                    if a.sending { "← sending".into() } else { String::new() },
                    a.hash[..12.min(a.hash.len())].to_string(),
                ]
            })
            .collect();
        println!(
            "{}",
            display::table(
                &["agreement", "version", "peer", "valid", "here", "peer holds", "signed by", "", "hash"],
                &rows
            )
        );
        for peer in &list.peers {
            let offset = peer.clock_offset_ms;
            println!(
                "peer {}: last status {}, hancha {}, clock {}{}",
                display::county(&peer.peer_county),
                display::time(peer.checked_at.as_ref()),
                if peer.software_version.is_empty() { "?" } else { &peer.software_version },
                if offset >= 0 { "+" } else { "-" },
                describe_offset(offset.unsigned_abs()),
            );
            if peer.clock_skewed {
                println!(
                    "!! the clock of {} differs from ours by {}: deadlines, validity periods and message order \
                     depend on both clocks; check time synchronisation (NTP) on both nodes",
                    peer.peer_county,
                    describe_offset(offset.unsigned_abs())
                );
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn retire(args: RetireArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let mut client = args.node.connect().await?;
        let retired = client
            .retire_agreement(pb::RetireAgreementRequest {
                id: args.id.clone(),
                version: args.number,
            })
            .await
            .map_err(explain)?
            .into_inner();
        let info = retired.agreement.unwrap_or_default();
        if retired.newly_retired {
            println!(
                "retired: {} version {}; nothing new is sent or taken under it",
                info.id, info.version
            );
        } else {
            println!(
                "already retired: {} version {} (on {})",
                info.id,
                info.version,
                display::time(info.retired_at.as_ref())
            );
        }
        for warning in &retired.warnings {
            eprintln!("warning: {warning}");
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn show(args: ShowArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let mut client = args.node.connect().await?;
        let shown = client
            .show_agreement(pb::ShowAgreementRequest { id: args.id.clone() })
            .await
            .map_err(explain)?;
        let shown = shown.into_inner();
        let info = shown.agreement.unwrap_or_default();
        println!("{}", info.summary);
        println!(
            "{}; the peer holds it: {}{}\n",
            display::stage(&info.stage),
            info.held_by_peer,
            if info.sending {
                "; messages go out under it now"
            } else {
                ""
            }
        );
        if info.signatures.is_empty() {
            println!("no signatures recorded\n");
        }
        for signature in &info.signatures {
            println!(
                "signature by {}, signed {}, certificate {}: {} (checked {})",
                display::county(&signature.county),
                display::time(signature.signed_at.as_ref()),
                &signature.cert_fingerprint[..16.min(signature.cert_fingerprint.len())],
                signature.outcome,
                display::time(signature.verified_at.as_ref()),
            );
        }
        if !info.signatures.is_empty() {
            println!();
        }
        print!("{}", shown.text);
        Ok(ExitCode::SUCCESS)
    })
}

/// The counties whose signatures verified when the version was applied, with the day each
/// signed, for the list; "nobody" when none did.
fn signed_by(signatures: &[pb::AgreementSignatureInfo]) -> String {
    let verified: Vec<String> = signatures
        .iter()
        .filter(|signature| signature.outcome == crate::store::agreements::SIGNATURE_VERIFIED)
        .map(|signature| {
            let day = display::rfc3339(signature.signed_at.as_ref());
            format!("{} ({})", signature.county, day.get(..10).unwrap_or(&day))
        })
        .collect();
    if verified.is_empty() {
        "nobody".into()
    } else {
        verified.join(", ")
    }
}

fn read(path: &PathBuf) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}
