//! The registry a scale run imports: N inflow persons written as a registry CSV file, and
//! imported through the real path (`hancha registry import` as a child process, over the
//! operator API, into the store's COPY).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::bench::population::synthetic_id;

use crate::domain::division::{CountyCode, townships_of};

/// Writes `persons` inflow persons living in `me`, registered round-robin in `peers` (person
/// `i` is `peers[i % P]`'s synthetic person `i / P`), as a registry CSV file.
pub(super) fn write_registry(
    file: &Path,
    me: CountyCode,
    peers: &[CountyCode],
    persons: usize,
) -> anyhow::Result<()> {
    use std::io::Write;
    let townships = townships_of(me);
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(file)?);
    writeln!(
        out,
        "resident_id,name,flow,registered_county,residence_county,township,marital_status,\
         certificate_number,certificate_valid_until,certificate_status,children_count,registered_since"
    )?;
    for index in 0..persons {
        let county = peers[index % peers.len()];
        let id = synthetic_id(county, (index / peers.len()) as u64);
        let township = townships
            .get(index % townships.len().max(1))
            .map(|t| t.as_str().to_string())
            .unwrap_or_default();
        let married = if index % 3 == 0 { "single" } else { "married" };
        writeln!(
            out,
            "{id},测试人员,inflow,{county},{me},{township},{married},{county}-{index:08},2030-05-31,valid,{},2015-03-01",
            index % 3
        )?;
    }
    out.flush()?;
    Ok(())
}

/// Imports `file` through `hancha registry import` (this very binary) against the operator API
/// at `operator`; fails unless every one of `persons` rows was imported.
pub(super) async fn import_registry(file: &Path, operator: SocketAddr, persons: usize) -> anyhow::Result<()> {
    let executable: PathBuf = std::env::current_exe().context("locating the hancha binary")?;
    let output = tokio::process::Command::new(executable)
        .args(["registry", "import", "--json", "--node"])
        .arg(operator.to_string())
        .arg(file)
        .env_remove("HANCHA_OPERATOR_CERT")
        .env_remove("HANCHA_NODE")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        // its progress lines (rows, rows/s) go with ours
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("running hancha registry import")?
        .wait_with_output()
        .await
        .context("running hancha registry import")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary: serde_json::Value = stdout
        .lines()
        .last()
        .and_then(|line| serde_json::from_str(line).ok())
        .unwrap_or_default();
    if !output.status.success() || summary["imported"] != serde_json::json!(persons) {
        bail!(
            "hancha registry import did not import every row ({}): {stdout}",
            output.status
        );
    }
    Ok(())
}
