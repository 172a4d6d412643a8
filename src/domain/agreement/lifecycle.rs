//! Where an installed version of an agreement stands, beyond its terms: the version state
//! machine.
//!
//! A version is **signed** by every party (each county's signature verified against this
//! node's trust anchors when it is applied: [`assess_signatures`](super::assess_signatures)),
//! **installed** (admitted by [`admit`](super::admit)), then **held by the peer**
//! once the peer's status says it holds the same hash, and **in force** for sending from then
//! until it expires or an operator **retires** it. Until the peer holds the newest version,
//! both sides keep sending under the newest version they share; a receiver honours every
//! version it holds that is not retired and is valid when the message arrives. A version that
//! lacks a party's signature is refused when applied; one installed while signatures were not
//! required ([`VersionState::unsigned`]) is never sent under nor honoured once they are.
//! ([`Stage`] names where a version stands, for `hancha agreement list`.)

use chrono::NaiveDate;

use super::Agreement;

/// What this node knows about one installed version besides its terms.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VersionState {
    /// An operator took it out of force here: nothing new is sent or taken under it (answers
    /// to inquiries asked under it still are).
    pub retired: bool,
    /// Whether the peer holds it (not retired there), from the peer's last status; `None`
    /// until the peer has told us.
    pub held_by_peer: Option<bool>,
    /// Signatures are required and not every party's verified when it was applied (it was
    /// installed while they were not required): nothing is sent or taken under it.
    pub unsigned: bool,
}

/// Where a version stands on one day, for people.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Retired here by an operator.
    Retired,
    /// Not signed by every party, while signatures are required.
    Unsigned,
    /// Its validity ended.
    Expired,
    /// Its first day is still to come.
    NotYetValid,
    /// Valid here, but the peer does not hold it (or has not said): messages go under an
    /// older version both hold until it does.
    WaitingForPeer,
    /// Valid here and held by the peer.
    InForce,
}

impl Stage {
    /// Where `agreement` in `state` stands on `today` (China Standard Time).
    pub fn of(agreement: &Agreement, state: VersionState, today: NaiveDate) -> Stage {
        if state.retired {
            Stage::Retired
        } else if state.unsigned {
            Stage::Unsigned
        } else if today > agreement.valid_until() {
            Stage::Expired
        } else if today < agreement.valid_from() {
            Stage::NotYetValid
        } else if state.held_by_peer == Some(true) {
            Stage::InForce
        } else {
            Stage::WaitingForPeer
        }
    }

    /// Its name in lists and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Retired => "retired",
            Stage::Unsigned => "unsigned",
            Stage::Expired => "expired",
            Stage::NotYetValid => "not_yet_valid",
            Stage::WaitingForPeer => "waiting_for_peer",
            Stage::InForce => "in_force",
        }
    }
}

/// Of the versions of one agreement (any order) with their states, the one to send under on
/// `today`: the newest that is signed, valid, not retired and held by the peer; when the peer holds
/// none of them (or has not said yet), the newest valid one not retired, which the peer will
/// hold the message for until it holds that version too. `None` when no version may be sent
/// under.
pub fn sending_version<'a, A: AsRef<Agreement>>(
    versions: impl IntoIterator<Item = (&'a A, VersionState)>,
    today: NaiveDate,
) -> Option<&'a A> {
    let mut usable: Vec<(&A, VersionState)> = versions
        .into_iter()
        .filter(|(agreement, state)| {
            !state.retired && !state.unsigned && (*agreement).as_ref().is_valid_on(today)
        })
        .collect();
    usable.sort_by_key(|(agreement, _)| std::cmp::Reverse((*agreement).as_ref().version()));
    usable
        .iter()
        .find(|(_, state)| state.held_by_peer == Some(true))
        .or_else(|| usable.first())
        .map(|(agreement, _)| *agreement)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agreement(version: u32, from: &str, until: &str) -> Agreement {
        let text = include_str!("../../../examples/agreements/430703-431322.toml")
            .replacen("version = 1", &format!("version = {version}"), 1)
            .lines()
            .map(|line| {
                if line.starts_with("valid_from") {
                    format!("valid_from = {from}")
                } else if line.starts_with("valid_until") {
                    format!("valid_until = {until}")
                } else {
                    line.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        Agreement::parse(&text).expect("the variant parses")
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 1).unwrap()
    }

    fn state(retired: bool, held_by_peer: Option<bool>) -> VersionState {
        VersionState {
            retired,
            held_by_peer,
            unsigned: false,
        }
    }

    fn chosen(versions: &[(Agreement, VersionState)]) -> Option<u32> {
        sending_version(versions.iter().map(|(a, s)| (a, *s)), today()).map(Agreement::version)
    }

    #[test]
    fn messages_go_under_the_newest_version_both_hold() {
        let v1 = agreement(1, "2026-01-01", "2030-12-31");
        let v2 = agreement(2, "2026-06-01", "2030-12-31");
        // only this side holds version 2: version 1 until the peer holds it too
        assert_eq!(
            chosen(&[
                (v1.clone(), state(false, Some(true))),
                (v2.clone(), state(false, Some(false)))
            ]),
            Some(1)
        );
        // a version installed since the peer's last status is not assumed held
        assert_eq!(
            chosen(&[
                (v1.clone(), state(false, Some(true))),
                (v2.clone(), state(false, None))
            ]),
            Some(1)
        );
        assert_eq!(
            chosen(&[
                (v1.clone(), state(false, Some(true))),
                (v2.clone(), state(false, Some(true)))
            ]),
            Some(2)
        );
        // before the peer has said anything: the newest
        assert_eq!(
            chosen(&[(v1.clone(), state(false, None)), (v2.clone(), state(false, None))]),
            Some(2)
        );
        // the peer holds nothing we may send under: the newest, which it will hold for us
        assert_eq!(
            chosen(&[
                (v1.clone(), state(true, Some(true))),
                (v2.clone(), state(false, Some(false)))
            ]),
            Some(2)
        );
    }

    #[test]
    fn retired_expired_and_future_versions_are_never_sent_under() {
        let old = agreement(1, "2020-01-01", "2026-11-30");
        let retired = agreement(2, "2026-01-01", "2030-12-31");
        let future = agreement(3, "2027-01-01", "2030-12-31");
        let versions = [
            (old.clone(), state(false, Some(true))),
            (retired.clone(), state(true, Some(true))),
            (future.clone(), state(false, Some(true))),
        ];
        assert_eq!(chosen(&versions), None);
        assert_eq!(Stage::of(&old, versions[0].1, today()), Stage::Expired);
        assert_eq!(Stage::of(&retired, versions[1].1, today()), Stage::Retired);
        assert_eq!(Stage::of(&future, versions[2].1, today()), Stage::NotYetValid);
    }

    #[test]
    fn an_unsigned_version_is_never_sent_under() {
        let v1 = agreement(1, "2026-01-01", "2030-12-31");
        let v2 = agreement(2, "2026-01-01", "2030-12-31");
        let unsigned = VersionState {
            unsigned: true,
            ..state(false, Some(true))
        };
        assert_eq!(
            chosen(&[(v1.clone(), state(false, Some(true))), (v2.clone(), unsigned)]),
            Some(1)
        );
        assert_eq!(chosen(&[(v2.clone(), unsigned)]), None);
        assert_eq!(Stage::of(&v2, unsigned, today()), Stage::Unsigned);
    }

    #[test]
    fn a_version_is_in_force_once_the_peer_holds_it() {
        let v1 = agreement(1, "2026-01-01", "2030-12-31");
        assert_eq!(Stage::of(&v1, state(false, None), today()), Stage::WaitingForPeer);
        assert_eq!(
            Stage::of(&v1, state(false, Some(false)), today()),
            Stage::WaitingForPeer
        );
        assert_eq!(Stage::of(&v1, state(false, Some(true)), today()), Stage::InForce);
    }
}
