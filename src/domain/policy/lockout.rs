//! The console's login rules: when wrong passwords lock an account, and how long a session
//! lasts. Pure: the store applies [`after_attempt`] under the account's row lock with the
//! database's clock, so every replica counts the same attempts and agrees on the lock.

use chrono::{DateTime, TimeDelta, Utc};

/// Wrong passwords in a row that lock an account.
pub const MAX_FAILED_ATTEMPTS: u32 = 5;

/// How long a lock lasts (`hancha users unlock` ends it sooner).
pub const LOCKED_FOR: TimeDelta = TimeDelta::minutes(15);

/// A session unused this long ends (each page it opens counts as use).
pub const SESSION_IDLE: TimeDelta = TimeDelta::minutes(30);

/// A session ends this long after the login, used or not.
pub const SESSION_LIFETIME: TimeDelta = TimeDelta::hours(12);

/// What an account's record says about past attempts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LockState {
    /// Wrong passwords in a row since the last success, lock or unlock.
    pub failed_attempts: u32,
    /// Until when the account is locked, if it was locked.
    pub locked_until: Option<DateTime<Utc>>,
}

impl LockState {
    /// Whether the account is locked at `now`.
    pub fn locked_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.locked_until.filter(|until| *until > now)
    }
}

/// How one login attempt ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// The right password on an account that is not locked.
    LoggedIn,
    /// A wrong password; `left` more lock the account.
    WrongPassword { left: u32 },
    /// A wrong password that locked the account, until then.
    LockedNow { until: DateTime<Utc> },
    /// The account was locked: refused whatever the password (the right one too, or guessing
    /// would go on during the lock).
    Locked { until: DateTime<Utc> },
}

/// What an attempt with the right password or not (`password_ok`) at `now` does to `state`.
pub fn after_attempt(state: LockState, password_ok: bool, now: DateTime<Utc>) -> (LockState, Attempt) {
    if let Some(until) = state.locked_at(now) {
        return (state, Attempt::Locked { until });
    }
    if password_ok {
        return (LockState::default(), Attempt::LoggedIn);
    }
    let failed = state.failed_attempts + 1;
    if failed >= MAX_FAILED_ATTEMPTS {
        let until = now + LOCKED_FOR;
        // counting starts afresh once the lock has passed
        let locked = LockState {
            failed_attempts: 0,
            locked_until: Some(until),
        };
        return (locked, Attempt::LockedNow { until });
    }
    (
        LockState {
            failed_attempts: failed,
            locked_until: None,
        },
        Attempt::WrongPassword {
            left: MAX_FAILED_ATTEMPTS - failed,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap() + TimeDelta::minutes(minutes)
    }

    #[test]
    fn five_wrong_passwords_in_a_row_lock_the_account_for_fifteen_minutes() {
        let mut state = LockState::default();
        for left in (1..MAX_FAILED_ATTEMPTS).rev() {
            let (next, attempt) = after_attempt(state, false, at(0));
            assert_eq!(attempt, Attempt::WrongPassword { left });
            state = next;
        }
        let (locked, attempt) = after_attempt(state, false, at(1));
        assert_eq!(attempt, Attempt::LockedNow { until: at(16) });
        // the right password is refused during the lock, and changes nothing
        let (still, attempt) = after_attempt(locked, true, at(15));
        assert_eq!(attempt, Attempt::Locked { until: at(16) });
        assert_eq!(still, locked);
        // after it, the right password logs in
        let (cleared, attempt) = after_attempt(locked, true, at(16));
        assert_eq!(attempt, Attempt::LoggedIn);
        assert_eq!(cleared, LockState::default());
    }

    #[test]
    fn a_success_resets_the_count_and_a_passed_lock_counts_afresh() {
        let (two, _) = after_attempt(
            LockState {
                failed_attempts: 1,
                locked_until: None,
            },
            false,
            at(0),
        );
        assert_eq!(two.failed_attempts, 2);
        assert_eq!(after_attempt(two, true, at(0)).0, LockState::default());
        let passed = LockState {
            failed_attempts: 0,
            locked_until: Some(at(-1)),
        };
        assert_eq!(
            after_attempt(passed, false, at(0)).1,
            Attempt::WrongPassword {
                left: MAX_FAILED_ATTEMPTS - 1
            }
        );
    }
}
