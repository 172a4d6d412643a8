//! The `hancha` binary as a county system or operator runs it against a cluster node.

use assert_cmd::Command;

use super::Cluster;

/// `hancha` aimed at `county`'s operator API (through `HANCHA_NODE`).
pub fn operator_cli(cluster: &Cluster, county: &str) -> Command {
    let mut command = Command::cargo_bin("hancha").expect("the hancha binary is built");
    command.env("HANCHA_NODE", cluster.operator_address(county).to_string());
    command
}

/// Runs `command` off the async runtime and returns its output.
pub async fn output_of(mut command: Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

/// Output bytes as text.
pub fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
