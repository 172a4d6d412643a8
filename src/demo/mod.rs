//! `hancha demo`: three county nodes in one process, over real mutual TLS on 127.0.0.1, each on
//! its own PostgreSQL database, playing the exchange described in the project's domain notes:
//! a certificate checked at a township window, a quarterly sweep that survives a node's
//! maintenance stop, inquiries answered by hand, the indicators, a count on both sides that
//! every inquiry was answered exactly once, the night's reconciliation repairing what a
//! restored backup lost, an agreement amendment applied one county at a time, and the evidence
//! a county operator can stand behind: signed agreements, tamper-evident audit chains witnessed
//! by the peers, a certificate renewed without a restart, and personal data kept no longer than
//! agreed.
//!
//! The command (`src/cli/demo.rs`) provisions a [`Stage`] step by step and always tears it down;
//! the steps themselves live in [`story`], [`manual`], [`summary`], [`reconcile`],
//! [`amendment`] and [`evidence`] (with [`audit`] and [`rotation`]).

pub mod amendment;
pub mod audit;
pub mod cluster;
pub mod evidence;
pub mod files;
pub mod manual;
pub mod notices;
pub mod population;
pub mod push;
pub mod reconcile;
pub mod rotation;
pub mod story;
pub mod summary;

use crate::domain::division::CountyCode;
use crate::domain::vocabulary::{
    CertificatePresented, CertificateStatus, ContraceptionStatus, MaritalStatus, StatusField,
};

/// 鼎城区 (Changde): the district the project was first described for.
pub const DINGCHENG: &str = "430703";
/// 邵东市 (Shaoyang): a county whose answers 鼎城区 reviews by hand.
pub const SHAODONG: &str = "430582";
/// 新化县 (Loudi): the county whose quarterly sweep the story follows.
pub const XINHUA: &str = "431322";

/// The three counties in the order the demo presents them.
pub const COUNTIES: [&str; 3] = [DINGCHENG, SHAODONG, XINHUA];

/// Everything the demo starts, held so that it can be taken down in order whatever happens:
/// nodes first, then their databases, then the files they read.
#[derive(Debug, Default)]
pub struct Stage {
    /// The certificates and agreements written for the nodes.
    pub scratch: Option<files::Scratch>,
    /// The three databases and the server they live on.
    pub databases: Option<crate::devdb::Databases>,
    /// The running nodes.
    pub cluster: cluster::Cluster,
}

impl Stage {
    /// Stops the nodes, removes the databases (or the throwaway server) and the scratch files.
    pub async fn tear_down(mut self) {
        let stopped = self.cluster.stop_all().await;
        if stopped > 0 {
            eprintln!("demo: stopped the county nodes ({stopped})");
        }
        if let Some(databases) = self.databases.take() {
            databases.remove().await;
        }
        if let Some(scratch) = self.scratch.take() {
            scratch.remove();
        }
    }
}

/// The county's name alone, `新化县`.
pub fn county_name(code: &str) -> &'static str {
    CountyCode::parse(code).map(|c| c.name()).unwrap_or("?")
}

/// `5,000` (the one formatting of counts, shared with the CLI).
pub use crate::present::display::thousands;

/// An answer field's value as an operator reads it: the value, then its Chinese term where
/// there is one (`valid 有效`, `430703101 玉霞街道`).
pub fn field_value(field: StatusField, value: &str) -> String {
    let term = match field {
        StatusField::MaritalStatus => value.parse::<MaritalStatus>().ok().map(|v| v.label_zh()),
        StatusField::CertificateStatus => value.parse::<CertificateStatus>().ok().map(|v| v.label_zh()),
        StatusField::ContraceptionStatus => value.parse::<ContraceptionStatus>().ok().map(|v| v.label_zh()),
        StatusField::CertificatePresented => value.parse::<CertificatePresented>().ok().map(|v| v.label_zh()),
        StatusField::Pregnant => match value {
            "true" => Some("是"),
            "false" => Some("否"),
            _ => None,
        },
        StatusField::Township => crate::domain::division::TownshipCode::parse(value)
            .ok()
            .map(|t| t.name()),
        _ => None,
    };
    match term {
        Some(term) => format!("{value} {term}"),
        None => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(thousands(0u32), "0");
        assert_eq!(thousands(999u32), "999");
        assert_eq!(thousands(5_000u32), "5,000");
        assert_eq!(thousands(1_234_567u32), "1,234,567");
    }

    #[test]
    fn field_values_carry_their_chinese_terms() {
        assert_eq!(field_value(StatusField::CertificateStatus, "valid"), "valid 有效");
        assert_eq!(field_value(StatusField::ChildrenCount, "1"), "1");
        assert_eq!(field_value(StatusField::Pregnant, "false"), "false 否");
    }
}
