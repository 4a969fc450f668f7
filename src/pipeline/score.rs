//! The final confidence of an IOC from its local and AbuseIPDB scores.
//!
//! Local detections are the primary truth: AbuseIPDB can raise a local score but never lower
//! it (providers it whitelists score 0 there). With `T = MINIMUM_FINAL_CONFIDENCE −
//! LOCAL_CONFIDENCE_BOOST`:
//!
//! | case | final |
//! | --- | --- |
//! | local only | `L`, raised to at least `MINIMUM_FINAL_CONFIDENCE` when `L ≥ T` |
//! | AbuseIPDB only | `floor(E × external weight)` |
//! | both | `max(floor(L × local weight + E × external weight), local-only score)` |
//!
//! Invariants: the result is within 0–100; it never decreases when `L` or `E` increases; a
//! dual-source score is never below the local-only score of the same `L`.

use crate::config::ScoringSettings;

/// Products like `75 × 0.2` land a hair above or below an integer in binary floating point;
/// this keeps `floor` on the intended side.
const EPSILON: f64 = 1e-9;

/// Final confidence, or 0 when neither source knows the address.
pub fn final_confidence(local: Option<u8>, external: Option<u8>, s: &ScoringSettings) -> u8 {
    let score = match (local, external) {
        (Some(l), None) => local_only(l, s),
        (None, Some(e)) => weighted(f64::from(e) * s.external_weight),
        (Some(l), Some(e)) => {
            let blended = f64::from(l) * s.local_weight + f64::from(e) * s.external_weight;
            weighted(blended).max(local_only(l, s))
        }
        (None, None) => 0,
    };
    score.min(100)
}

fn local_only(local: u8, s: &ScoringSettings) -> u8 {
    let local = local.min(100);
    let threshold = s.minimum_final.saturating_sub(s.local_boost);
    if local >= threshold {
        local.max(s.minimum_final)
    } else {
        local
    }
}

fn weighted(value: f64) -> u8 {
    (value + EPSILON).floor().clamp(0.0, 100.0) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn score(local: Option<u8>, external: Option<u8>) -> u8 {
        final_confidence(local, external, &ScoringSettings::default())
    }

    #[test]
    fn local_only_examples() {
        assert_eq!(score(Some(85), None), 85);
        assert_eq!(score(Some(76), None), 85);
        assert_eq!(score(Some(74), None), 74);
        assert_eq!(score(Some(100), None), 100);
        assert_eq!(score(Some(0), None), 0);
    }

    #[test]
    fn boost_threshold_edges() {
        assert_eq!(score(Some(74), None), 74);
        assert_eq!(score(Some(75), None), 85);
        assert_eq!(score(Some(76), None), 85);
    }

    #[test]
    fn abuseipdb_only_examples() {
        assert_eq!(score(None, Some(75)), 15);
        assert_eq!(score(None, Some(100)), 20);
        assert_eq!(score(None, Some(0)), 0);
        assert_eq!(score(None, Some(35)), 7);
    }

    #[test]
    fn dual_source_examples() {
        assert_eq!(score(Some(85), Some(75)), 85);
        assert_eq!(score(Some(60), Some(90)), 66);
        assert_eq!(score(Some(70), Some(10)), 70);
        assert_eq!(score(Some(100), Some(100)), 100);
        assert_eq!(score(Some(80), Some(0)), 85);
    }

    #[test]
    fn results_are_clamped() {
        let generous = ScoringSettings {
            local_weight: 0.5,
            external_weight: 0.5,
            minimum_final: 100,
            local_boost: 0,
            ..ScoringSettings::default()
        };
        assert_eq!(final_confidence(Some(250), Some(250), &generous), 100);
        assert_eq!(score(None, None), 0);
    }

    proptest! {
        #[test]
        fn corroboration_never_lowers_a_score(l in 0u8..=100, e in 0u8..=100) {
            prop_assert!(score(Some(l), Some(e)) >= score(Some(l), None));
            prop_assert!(score(Some(l), Some(e)) <= 100);
        }

        #[test]
        fn score_is_monotonic(l in 0u8..100, e in 0u8..100) {
            prop_assert!(score(Some(l + 1), Some(e)) >= score(Some(l), Some(e)));
            prop_assert!(score(Some(l), Some(e + 1)) >= score(Some(l), Some(e)));
            prop_assert!(score(Some(l + 1), None) >= score(Some(l), None));
            prop_assert!(score(None, Some(e + 1)) >= score(None, Some(e)));
        }
    }
}
