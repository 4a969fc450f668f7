//! Daily call budgets, one per endpoint, kept in the store's `meta` table
//! (`budget:blacklist`, `budget:check`), and the fingerprint of a rejected API key
//! (`abuseipdb:rejected_key`).
//!
//! Invariant: a call is counted and the count committed (durably) *before* the request is
//! sent. A crash between the two loses a call from the budget, never adds one to the
//! upstream's count beyond it. The day starts at UTC midnight of the injected clock; the
//! upstream's `X-RateLimit-Remaining: 0`, `X-RateLimit-Reset` and `Retry-After` can only
//! tighten it.

use std::time::Duration;

use jiff::Timestamp;
use redb::{Durability, ReadableTable};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::tables::META;
use crate::store::{Store, StoreError};

const DAY_SECONDS: i64 = 86_400;
const BACKOFF_FIRST_SECONDS: i64 = 60;
const BACKOFF_CAP_SECONDS: i64 = 3_600;
const META_REJECTED_KEY: &str = "abuseipdb:rejected_key";

/// The two metered endpoints; each has its own upstream counter and its own budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Endpoint {
    Blacklist,
    Check,
}

impl Endpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Blacklist => "blacklist",
            Endpoint::Check => "check",
        }
    }

    fn meta_key(self) -> &'static str {
        match self {
            Endpoint::Blacklist => "budget:blacklist",
            Endpoint::Check => "budget:check",
        }
    }
}

/// One endpoint's persisted budget.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetState {
    /// The UTC midnight `used` counts from.
    pub day_start: Option<Timestamp>,
    /// Calls counted today (each committed before it was sent).
    pub used: u32,
    pub last_call: Option<Timestamp>,
    /// The upstream asked for no calls before this instant (429, or remaining 0).
    pub blocked_until: Option<Timestamp>,
    /// Consecutive failed calls, and when the back-off they caused ends.
    pub failures: u32,
    pub backoff_until: Option<Timestamp>,
    /// The last `X-RateLimit-Remaining` seen today.
    pub upstream_remaining: Option<u32>,
}

/// What a budget allows: a daily limit, optional pacing across the day and a minimum
/// interval between calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    pub limit: u32,
    /// The k-th call of a day (from 0) waits until `day_start + k × 24 h / limit`.
    pub paced: bool,
    pub min_interval: Duration,
}

/// Why no call may be made now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Refusal {
    #[error("the API key was rejected; calls resume when ABUSEIPDB_API_KEY changes")]
    KeyRejected,
    #[error("daily budget used ({used}/{limit}), resets at {reset}")]
    DailyLimit {
        used: u32,
        limit: u32,
        reset: Timestamp,
    },
    #[error("AbuseIPDB asked for no calls before {until}")]
    Upstream { until: Timestamp },
    #[error("backing off after {failures} failed calls until {until}")]
    Backoff { failures: u32, until: Timestamp },
    #[error("paced: the next call is allowed at {until}")]
    Paced { until: Timestamp },
    #[error("not a public address; it is never sent to AbuseIPDB")]
    NotPublic,
}

/// `at` plus `seconds`, saturating at the ends of the timestamp range.
pub fn plus_seconds(at: Timestamp, seconds: i64) -> Timestamp {
    let micros = at
        .as_microsecond()
        .saturating_add(seconds.saturating_mul(1_000_000));
    Timestamp::from_microsecond(micros).unwrap_or(if seconds < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

/// UTC midnight at or before `now`.
pub fn day_start(now: Timestamp) -> Timestamp {
    let s = now.as_second();
    Timestamp::from_second(s - s.rem_euclid(DAY_SECONDS)).unwrap_or(now)
}

/// The next UTC midnight after `now`: when the daily counters reset.
pub fn next_reset(now: Timestamp) -> Timestamp {
    plus_seconds(day_start(now), DAY_SECONDS)
}

fn seconds(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// A one-way fingerprint of an API key: enough to notice that the key changed, useless
/// for recovering it.
pub fn fingerprint(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

impl BudgetState {
    /// Starts a new day's count when `now` is past the stored day.
    pub fn roll(&mut self, now: Timestamp) {
        let today = day_start(now);
        if self.day_start != Some(today) {
            self.day_start = Some(today);
            self.used = 0;
            self.upstream_remaining = None;
        }
    }

    /// Whether a call is allowed at `now` (after [`BudgetState::roll`]).
    ///
    /// # Errors
    /// The [`Refusal`] that applies first.
    pub fn allows(&self, now: Timestamp, rules: Rules) -> Result<(), Refusal> {
        if let Some(until) = self.blocked_until.filter(|u| *u > now) {
            return Err(Refusal::Upstream { until });
        }
        if let Some(until) = self.backoff_until.filter(|u| *u > now) {
            let failures = self.failures;
            return Err(Refusal::Backoff { failures, until });
        }
        if self.used >= rules.limit {
            let (used, limit, reset) = (self.used, rules.limit, next_reset(now));
            return Err(Refusal::DailyLimit { used, limit, reset });
        }
        if let Some(until) = self.paced_until(now, rules).filter(|u| *u > now) {
            return Err(Refusal::Paced { until });
        }
        Ok(())
    }

    fn paced_until(&self, now: Timestamp, rules: Rules) -> Option<Timestamp> {
        let spaced = self
            .last_call
            .map(|last| plus_seconds(last, seconds(rules.min_interval)));
        let slot = rules.paced.then(|| {
            let offset = i64::from(self.used) * DAY_SECONDS / i64::from(rules.limit.max(1));
            plus_seconds(day_start(now), offset)
        });
        spaced.max(slot)
    }

    /// A call went through: the back-off ends and the upstream's own count is noted.
    pub fn succeeded(&mut self, now: Timestamp, remaining: Option<u32>, reset: Option<Timestamp>) {
        self.failures = 0;
        self.backoff_until = None;
        self.upstream_remaining = remaining;
        if remaining == Some(0) {
            self.blocked_until = Some(reset.unwrap_or_else(|| next_reset(now)));
        }
    }

    /// A call failed: the back-off doubles from one minute up to one hour, and an upstream
    /// wait (`upstream_until`) blocks calls until then.
    pub fn failed(&mut self, now: Timestamp, upstream_until: Option<Timestamp>) {
        self.failures = self.failures.saturating_add(1);
        let exponent = self.failures.saturating_sub(1).min(16);
        let wait = (BACKOFF_FIRST_SECONDS << exponent).min(BACKOFF_CAP_SECONDS);
        self.backoff_until = Some(plus_seconds(now, wait));
        if let Some(until) = upstream_until {
            self.blocked_until = Some(self.blocked_until.map_or(until, |b| b.max(until)));
        }
    }
}

/// Counts one call against `endpoint` if `rules` allow it, and commits durably before
/// returning. Refuses every call while the stored rejected-key fingerprint equals `key_print`.
///
/// # Errors
/// Storage failures; the inner `Err` is the refusal.
pub fn reserve(
    store: &Store,
    endpoint: Endpoint,
    now: Timestamp,
    rules: Rules,
    key_print: &str,
) -> Result<Result<BudgetState, Refusal>, StoreError> {
    let mut txn = store.db().begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    let decision = {
        let mut table = txn.open_table(META)?;
        let rejected = read_json::<String>(&table, META_REJECTED_KEY)?;
        let mut state: BudgetState = read_json(&table, endpoint.meta_key())?.unwrap_or_default();
        state.roll(now);
        let allowed = match rejected {
            Some(print) if print == key_print => Err(Refusal::KeyRejected),
            _ => state.allows(now, rules),
        };
        if allowed.is_ok() {
            state.used += 1;
            state.last_call = Some(now);
            write_json(&mut table, endpoint.meta_key(), &state)?;
        }
        allowed.map(|()| state)
    };
    if decision.is_ok() {
        txn.commit()?;
    }
    Ok(decision)
}

/// Applies `change` to the stored state of `endpoint` in one transaction.
///
/// # Errors
/// Storage failures.
pub fn update(
    store: &Store,
    endpoint: Endpoint,
    now: Timestamp,
    change: impl FnOnce(&mut BudgetState),
) -> Result<BudgetState, StoreError> {
    let txn = store.db().begin_write()?;
    let state = {
        let mut table = txn.open_table(META)?;
        let mut state: BudgetState = read_json(&table, endpoint.meta_key())?.unwrap_or_default();
        state.roll(now);
        change(&mut state);
        write_json(&mut table, endpoint.meta_key(), &state)?;
        state
    };
    txn.commit()?;
    Ok(state)
}

/// The stored state of `endpoint` as of `now` (a new day reads as unused).
///
/// # Errors
/// Storage failures.
pub fn load(store: &Store, endpoint: Endpoint, now: Timestamp) -> Result<BudgetState, StoreError> {
    let mut state: BudgetState = store.meta_json(endpoint.meta_key())?.unwrap_or_default();
    state.roll(now);
    Ok(state)
}

/// Remembers that the key with fingerprint `key_print` was rejected.
///
/// # Errors
/// Storage failures.
pub fn reject_key(store: &Store, key_print: &str) -> Result<(), StoreError> {
    store.put_meta(META_REJECTED_KEY, &key_print)
}

/// True when the configured key (by fingerprint) is the one that was rejected.
///
/// # Errors
/// Storage failures.
pub fn key_rejected(store: &Store, key_print: &str) -> Result<bool, StoreError> {
    let stored: Option<String> = store.meta_json(META_REJECTED_KEY)?;
    Ok(stored.as_deref() == Some(key_print))
}

fn read_json<T: serde::de::DeserializeOwned>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<T>, StoreError> {
    let value = table.get(key)?;
    Ok(value.and_then(|v| serde_json::from_slice(v.value()).ok()))
}

fn write_json<T: Serialize>(
    table: &mut redb::Table<'_, &'static str, &'static [u8]>,
    key: &str,
    value: &T,
) -> Result<(), StoreError> {
    let json = serde_json::to_vec(value).map_err(|e| StoreError::Encode(e.to_string()))?;
    table.insert(key, json.as_slice())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    const PACED: Rules = Rules {
        limit: 5,
        paced: true,
        min_interval: Duration::from_secs(3600),
    };

    #[test]
    fn pacing_spreads_calls_across_the_day() {
        let mut state = BudgetState::default();
        let now = at("2026-03-01T00:10:00Z");
        state.roll(now);
        assert_eq!(state.allows(now, PACED), Ok(()));
        state.used = 1;
        state.last_call = Some(now);
        let second = at("2026-03-01T04:48:00Z");
        assert_eq!(
            state.allows(at("2026-03-01T04:47:59Z"), PACED),
            Err(Refusal::Paced { until: second })
        );
        assert_eq!(state.allows(second, PACED), Ok(()));
    }

    #[test]
    fn the_day_rolls_at_utc_midnight() {
        let mut state = BudgetState::default();
        state.roll(at("2026-03-01T23:59:59Z"));
        state.used = 5;
        state.roll(at("2026-03-01T23:59:59.9Z"));
        assert_eq!(state.used, 5);
        state.roll(at("2026-03-02T00:00:00Z"));
        assert_eq!(state.used, 0);
    }

    #[test]
    fn backoff_doubles_to_a_cap() {
        let now = at("2026-03-01T12:00:00Z");
        let mut state = BudgetState::default();
        let waits: Vec<i64> = (0..9)
            .map(|_| {
                state.failed(now, None);
                state.backoff_until.unwrap().as_second() - now.as_second()
            })
            .collect();
        assert_eq!(waits, [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
        state.succeeded(now, Some(3), None);
        assert_eq!((state.failures, state.backoff_until), (0, None));
    }

    #[test]
    fn fingerprints_differ_per_key_and_hide_it() {
        assert_ne!(fingerprint("a"), fingerprint("b"));
        assert_eq!(fingerprint("secret").len(), 16);
        assert!(!fingerprint("secret").contains("secret"));
    }
}
