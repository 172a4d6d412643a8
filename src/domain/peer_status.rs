//! What two nodes tell each other about themselves: the agreement versions each holds, its
//! software version and its clock. Either node calls the other with its own status and gets the
//! other's back (on connect, periodically, and after an operator applies or retires a
//! version); later features add their fields to this one exchange rather than new calls.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// One node's status, as sent to one peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    /// The versions of our agreements with that peer which this node holds and has not
    /// retired.
    pub versions: Vec<HeldVersion>,
    /// The node's software version.
    pub software_version: String,
    /// The node's clock when it sent the status.
    pub clock: DateTime<Utc>,
    /// Its audit chain: the checkpoint it shows the peer, and which of the peer's it holds.
    pub audit: crate::domain::audit_chain::AuditStatus,
    /// Why the audit part the peer sent was dropped as malformed (the fields and what is wrong
    /// with them); `None` when it was taken.
    pub audit_dropped: Option<String>,
}

/// One agreement version a node holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldVersion {
    /// The agreement's id.
    pub agreement_id: String,
    /// Its version number.
    pub version: u32,
    /// Its canonical hash, 64 hex characters.
    pub hash: String,
}

/// How far a peer's clock is from ours, as measured at one status exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockReading {
    /// The peer's clock minus ours, in milliseconds.
    pub offset_ms: i64,
    /// The round trip of the call that measured it, when we made the call (the offset is then
    /// taken against the midpoint); `None` when the peer called us.
    pub round_trip_ms: Option<i64>,
}

impl ClockReading {
    /// Measured by a call we made: sent at `sent`, answered at `answered`, the peer's clock
    /// reading `peer_clock` in between.
    pub fn round_trip(
        sent: DateTime<Utc>,
        answered: DateTime<Utc>,
        peer_clock: DateTime<Utc>,
    ) -> ClockReading {
        let round_trip = (answered - sent).num_milliseconds().max(0);
        let midpoint = sent + chrono::Duration::milliseconds(round_trip / 2);
        ClockReading {
            offset_ms: (peer_clock - midpoint).num_milliseconds(),
            round_trip_ms: Some(round_trip),
        }
    }

    /// Measured from a call the peer made: its clock read `peer_clock` when it sent the
    /// status, and it arrived at `received` (the transit time counts as offset).
    pub fn one_way(received: DateTime<Utc>, peer_clock: DateTime<Utc>) -> ClockReading {
        ClockReading {
            offset_ms: (peer_clock - received).num_milliseconds(),
            round_trip_ms: None,
        }
    }

    /// A warning for the operator when the offset is larger than `limit`; `None` otherwise.
    pub fn skew_warning(&self, limit: Duration) -> Option<String> {
        let limit_ms = i64::try_from(limit.as_millis()).unwrap_or(i64::MAX);
        (self.offset_ms.abs() > limit_ms).then(|| {
            format!(
                "the peer's clock is {} ours by {}: deadlines, validity periods and message-id \
                 order depend on the two clocks agreeing; check time synchronisation (NTP) on both nodes",
                if self.offset_ms > 0 { "ahead of" } else { "behind" },
                describe_offset(self.offset_ms.unsigned_abs())
            )
        })
    }
}

/// An offset for people: `850 ms`, `12.3 s`, `4 min 10 s`.
pub fn describe_offset(ms: u64) -> String {
    if ms < 1_000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1_000.0)
    } else {
        format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_800_000_000_000 + ms).unwrap()
    }

    #[test]
    fn a_round_trip_measures_against_its_midpoint() {
        let reading = ClockReading::round_trip(at(0), at(200), at(100 + 7_000));
        assert_eq!(reading.offset_ms, 7_000);
        assert_eq!(reading.round_trip_ms, Some(200));
        let behind = ClockReading::round_trip(at(0), at(40), at(20 - 300));
        assert_eq!(behind.offset_ms, -300);
    }

    #[test]
    fn only_an_offset_beyond_the_limit_warns_and_it_says_which_way() {
        let limit = Duration::from_secs(5);
        assert_eq!(ClockReading::one_way(at(0), at(4_900)).skew_warning(limit), None);
        let ahead = ClockReading::one_way(at(0), at(12_345))
            .skew_warning(limit)
            .unwrap();
        assert!(ahead.contains("ahead of ours by 12.3 s"), "{ahead}");
        let behind = ClockReading::one_way(at(0), at(-250_000))
            .skew_warning(limit)
            .unwrap();
        assert!(behind.contains("behind ours by 4 min 10 s"), "{behind}");
    }
}
