//! The per-principal limit on person lookups: a token bucket per principal, in memory, bounded
//! in the number of principals it remembers.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Principals remembered at once. A county has tens of operators; beyond this, buckets that have
/// refilled completely are forgotten first (they hold nothing a fresh bucket would not), then
/// the longest idle one.
const MAX_PRINCIPALS: usize = 10_000;

/// `lookups` per `window` for each principal, refilled evenly: a principal that used up its
/// lookups gets one back every `window / lookups`.
#[derive(Debug)]
pub(super) struct LookupLimiter {
    /// Lookups a principal may make in a burst, and per window.
    lookups: u32,
    /// The window the lookups are counted over.
    window: Duration,
    /// Principal key → its bucket.
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// One principal's lookups left, as of `updated`.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    /// Lookups left (fractions accrue as time passes).
    tokens: f64,
    /// When `tokens` was last brought up to date.
    updated: Instant,
}

/// A lookup refused: when the next one will be allowed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct OverLimit {
    /// How long until one lookup is available again.
    pub retry_after: Duration,
}

impl LookupLimiter {
    /// At most `lookups` per `window` per principal (both at least 1 and non-zero, which the
    /// configuration checks).
    pub(super) fn new(lookups: u32, window: Duration) -> LookupLimiter {
        LookupLimiter {
            lookups: lookups.max(1),
            window: window.max(Duration::from_millis(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The limit as words: "120 per 1m".
    pub(super) fn describe(&self) -> String {
        format!("{} per {}", self.lookups, humantime::format_duration(self.window))
    }

    /// Takes one lookup for `principal` at `now`, or says when the next one will be allowed.
    pub(super) fn take(&self, principal: &str, now: Instant) -> Result<(), OverLimit> {
        let capacity = f64::from(self.lookups);
        let per_second = capacity / self.window.as_secs_f64();
        let refilled = |bucket: &Bucket| {
            let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
            (bucket.tokens + elapsed * per_second).min(capacity)
        };
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !buckets.contains_key(principal) && buckets.len() >= MAX_PRINCIPALS {
            buckets.retain(|_, bucket| refilled(bucket) < capacity);
            if buckets.len() >= MAX_PRINCIPALS {
                let idlest = buckets
                    .iter()
                    .min_by_key(|(_, bucket)| bucket.updated)
                    .map(|(key, _)| key.clone());
                if let Some(key) = idlest {
                    buckets.remove(&key);
                }
            }
        }
        let bucket = buckets.entry(principal.to_string()).or_insert(Bucket {
            tokens: capacity,
            updated: now,
        });
        bucket.tokens = refilled(bucket);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let missing = 1.0 - bucket.tokens;
        Err(OverLimit {
            retry_after: Duration::from_secs_f64(missing / per_second).max(Duration::from_secs(1)),
        })
    }

    /// How many principals are remembered (for tests of the bound).
    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.buckets.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_principal_gets_its_lookups_then_is_refused_until_they_come_back() {
        let limiter = LookupLimiter::new(3, Duration::from_secs(60));
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.take("clerk", start), Ok(()));
        }
        let refused = limiter.take("clerk", start).expect_err("over the limit");
        assert_eq!(refused.retry_after, Duration::from_secs(20));
        assert_eq!(limiter.take("other", start), Ok(()), "limits are per principal");
        assert!(limiter.take("clerk", start + Duration::from_secs(19)).is_err());
        assert_eq!(limiter.take("clerk", start + Duration::from_secs(21)), Ok(()));
        assert_eq!(limiter.describe(), "3 per 1m");
    }

    #[test]
    fn remembers_a_bounded_number_of_principals() {
        let limiter = LookupLimiter::new(2, Duration::from_secs(60));
        let start = Instant::now();
        for n in 0..MAX_PRINCIPALS + 10 {
            limiter.take(&format!("operator-{n}"), start).unwrap();
        }
        assert!(limiter.remembered() <= MAX_PRINCIPALS);
        // The principal just remembered keeps its count.
        limiter.take("busy", start).unwrap();
        limiter.take("busy", start).unwrap();
        assert!(limiter.take("busy", start).is_err());
    }
}
