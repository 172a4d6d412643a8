//! What a received notice does at the origin: the agreement's `notice_effect` setting.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::UnknownName;

vocabulary_enum! {
    /// What a notice received under a direction does to the receiver's registry. The agreement
    /// names it per direction and notice kind (`notice_effect`); a kind it does not name waits
    /// for an operator, so nothing in the registry changes silently.
    pub enum NoticeEffect ("notice effect") {
        /// The registry is updated at once, in the transaction that stores the notice
        /// (see [`crate::domain::notice_effect`]); a notice the registry cannot take (no such
        /// outflow person, a value missing) waits for an operator instead.
        Apply => "apply", "自动更新";
        /// The notice waits for an operator: `hancha notices apply` or `dismiss`.
        Operator => "operator", "人工处理";
    }
}

impl Default for NoticeEffect {
    /// What an agreement that names no effect for a kind means.
    fn default() -> Self {
        NoticeEffect::Operator
    }
}
