//! Summary statistics of repeated measurements: pure functions, no I/O.
//!
//! llama-bench reports the mean and the *sample* standard deviation (n − 1) of
//! the per-repetition rates; so do we, so the two can be compared directly.

/// Mean, sample standard deviation and count of a set of samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub mean: f64,
    /// Sample standard deviation (n − 1 in the denominator); 0 for one sample.
    pub stddev: f64,
    pub n: usize,
}

impl Summary {
    /// Summarises `samples`; `None` when there are none or any is not finite.
    pub fn of(samples: &[f64]) -> Option<Summary> {
        if samples.is_empty() || samples.iter().any(|x| !x.is_finite()) {
            return None;
        }
        let n = samples.len();
        let mean = samples.iter().sum::<f64>() / n as f64;
        let stddev = if n < 2 {
            0.0
        } else {
            let ss: f64 = samples.iter().map(|x| (x - mean).powi(2)).sum();
            (ss / (n - 1) as f64).sqrt()
        };
        Some(Summary { mean, stddev, n })
    }

    /// Coefficient of variation (stddev / mean), `None` when the mean is 0.
    pub fn cv(&self) -> Option<f64> {
        (self.mean != 0.0).then(|| self.stddev / self.mean.abs())
    }
}

/// The `q`-quantile (0 to 1) of `samples`, interpolated between the two
/// closest ranks (numpy's default); `None` without finite samples.
pub fn quantile(samples: &[f64], q: f64) -> Option<f64> {
    let mut sorted: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let rank = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_between_ranks() {
        let xs = [5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(quantile(&xs, 0.5), Some(3.0));
        assert_eq!(quantile(&xs, 0.0), Some(1.0));
        assert_eq!(quantile(&xs, 1.0), Some(5.0));
        assert!((quantile(&xs, 0.95).unwrap() - 4.8).abs() < 1e-12);
        assert_eq!(quantile(&[7.0], 0.95), Some(7.0));
        assert_eq!(quantile(&[], 0.5), None);
    }

    /// A tiny deterministic generator for property tests.
    struct SplitMix(u64);
    impl SplitMix {
        fn next_f64(&mut self) -> f64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        }
        fn samples(&mut self) -> Vec<f64> {
            let n = 1 + (self.next_f64() * 20.0) as usize;
            (0..n).map(|_| self.next_f64() * 1000.0 - 100.0).collect()
        }
    }

    #[test]
    fn known_values() {
        let s = Summary::of(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).unwrap();
        assert_eq!(s.mean, 5.0);
        // sample variance = 32 / 7
        assert!((s.stddev - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        assert_eq!(s.n, 8);
    }

    #[test]
    fn single_sample_has_zero_spread_and_empty_has_no_summary() {
        assert_eq!(Summary::of(&[3.5]).unwrap().stddev, 0.0);
        assert!(Summary::of(&[]).is_none());
        assert!(Summary::of(&[1.0, f64::NAN]).is_none());
    }

    #[test]
    fn property_mean_between_min_and_max_and_stddev_nonnegative() {
        let mut rng = SplitMix(7);
        for _ in 0..500 {
            let xs = rng.samples();
            let s = Summary::of(&xs).unwrap();
            let min = xs.iter().cloned().fold(f64::INFINITY, f64::min);
            let max = xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            assert!(s.mean >= min - 1e-9 && s.mean <= max + 1e-9);
            assert!(s.stddev >= 0.0);
            assert!(s.stddev <= (max - min) + 1e-9);
        }
    }

    #[test]
    fn property_shift_moves_mean_and_keeps_spread() {
        let mut rng = SplitMix(11);
        for _ in 0..500 {
            let xs = rng.samples();
            let shift = rng.next_f64() * 50.0;
            let a = Summary::of(&xs).unwrap();
            let shifted: Vec<f64> = xs.iter().map(|x| x + shift).collect();
            let b = Summary::of(&shifted).unwrap();
            assert!((b.mean - a.mean - shift).abs() < 1e-9);
            assert!((b.stddev - a.stddev).abs() < 1e-7);
        }
    }

    #[test]
    fn property_scale_scales_mean_and_spread() {
        let mut rng = SplitMix(13);
        for _ in 0..500 {
            let xs = rng.samples();
            let k = 0.5 + rng.next_f64() * 4.0;
            let a = Summary::of(&xs).unwrap();
            let scaled: Vec<f64> = xs.iter().map(|x| x * k).collect();
            let b = Summary::of(&scaled).unwrap();
            assert!((b.mean - a.mean * k).abs() < 1e-7);
            assert!((b.stddev - a.stddev * k).abs() < 1e-7);
        }
    }

    #[test]
    fn cv_is_relative_spread() {
        let s = Summary::of(&[90.0, 110.0]).unwrap();
        assert!((s.cv().unwrap() - s.stddev / 100.0).abs() < 1e-12);
        assert!(Summary::of(&[0.0, 0.0]).unwrap().cv().is_none());
    }
}

/// The 97.5% quantile of Student's t distribution with `df` degrees of
/// freedom (two-sided 95% intervals), exact for any real `df` (Welch's
/// degrees of freedom are rarely whole numbers).
pub fn t_quantile_975(df: f64) -> f64 {
    t_quantile_two_sided(0.05, df)
}

/// The 1 − `alpha`/2 quantile of Student's t distribution with `df` degrees
/// of freedom: the half-width, in standard errors, of a two-sided interval
/// that misses with probability `alpha`.
pub fn t_quantile_two_sided(alpha: f64, df: f64) -> f64 {
    use statrs::distribution::{ContinuousCDF, Normal, StudentsT};
    let p = 1.0 - alpha.clamp(1e-12, 1.0) / 2.0;
    match StudentsT::new(0.0, 1.0, df.max(0.5)) {
        Ok(t) => t.inverse_cdf(p),
        // Only for a NaN df: the normal quantile.
        Err(_) => Normal::standard().inverse_cdf(p),
    }
}

/// Welch's 95% confidence interval for mean(a) − mean(b): (difference, low,
/// high). `None` with fewer than two values on a side.
pub fn welch_interval(a: &[f64], b: &[f64]) -> Option<(f64, f64, f64)> {
    welch_interval_at(a, b, 0.05)
}

/// [`welch_interval`] at the confidence 1 − `alpha`.
pub fn welch_interval_at(a: &[f64], b: &[f64], alpha: f64) -> Option<(f64, f64, f64)> {
    let (sa, sb) = (Summary::of(a)?, Summary::of(b)?);
    if sa.n < 2 || sb.n < 2 {
        return None;
    }
    let (va, vb) = (
        sa.stddev.powi(2) / sa.n as f64,
        sb.stddev.powi(2) / sb.n as f64,
    );
    let se = (va + vb).sqrt();
    let diff = sa.mean - sb.mean;
    if se == 0.0 {
        return Some((diff, diff, diff));
    }
    let df = (va + vb).powi(2) / (va * va / (sa.n - 1) as f64 + vb * vb / (sb.n - 1) as f64);
    let half = t_quantile_two_sided(alpha, df) * se;
    Some((diff, diff - half, diff + half))
}

#[cfg(test)]
mod interval_tests {
    use super::*;

    /// Reference values from scipy.stats.t.ppf(0.975, df). Between whole
    /// degrees of freedom a linear interpolation of the table is far off
    /// (8.50 instead of 6.02 at df 1.5: 41% too wide).
    #[test]
    fn t_quantiles_are_exact_also_between_whole_degrees_of_freedom() {
        for (df, q) in [
            (1.0, 12.706_204_736_174_694),
            (1.5, 6.016_663_104_427_929),
            (2.0, 4.302_652_729_749_462),
            (4.0, 2.776_445_105_197_793),
            (4.5, 2.658_912_347_204_403),
            (30.0, 2.042_272_456_301_238),
            (60.0, 2.000_297_822_014_26),
            (1e6, 1.959_966_356_814_107),
        ] {
            let got = t_quantile_975(df);
            assert!((got - q).abs() < 1e-4 * q, "df {df}: {got} vs {q}");
        }
    }

    #[test]
    fn welch_separates_clear_differences_and_not_noise() {
        let (d, lo, hi) = welch_interval(&[10.0, 10.2, 9.9, 10.1], &[9.0, 9.1, 8.9, 9.05]).unwrap();
        assert!(d > 0.9 && lo > 0.0 && hi > lo);
        let (_, lo, hi) = welch_interval(&[10.0, 10.5, 9.6], &[10.1, 9.8, 10.3]).unwrap();
        assert!(lo < 0.0 && hi > 0.0);
        assert!(welch_interval(&[1.0], &[2.0, 3.0]).is_none());
    }
}

/// A ratio of two sets of positive measurements (geometric means) with its
/// 95% confidence interval, from Welch's interval on their logarithms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RatioInterval {
    pub ratio: f64,
    /// `None` with fewer than two values on a side.
    pub low: Option<f64>,
    pub high: Option<f64>,
}

impl RatioInterval {
    /// Whether the interval excludes 1 (a real difference).
    pub fn significant(&self) -> bool {
        matches!((self.low, self.high), (Some(l), Some(h)) if l > 1.0 || h < 1.0)
    }

    /// The same comparison the other way round (b / a).
    pub fn inverted(&self) -> RatioInterval {
        RatioInterval {
            ratio: 1.0 / self.ratio,
            low: self.high.map(|h| 1.0 / h),
            high: self.low.map(|l| 1.0 / l),
        }
    }

    /// `2.70× (95% CI 2.61–2.80×)`, or `2.70× (too few runs for an interval)`.
    pub fn describe(&self) -> String {
        match (self.low, self.high) {
            (Some(l), Some(h)) => format!("{:.2}× (95% CI {l:.2}–{h:.2}×)", self.ratio),
            _ => format!("{:.2}× (too few runs for an interval)", self.ratio),
        }
    }
}

/// geomean(a) / geomean(b) with a 95% interval, from the logarithms of the
/// values (`a_logs`, `b_logs`). `None` when a side is empty.
pub fn ratio_of_logs(a_logs: &[f64], b_logs: &[f64]) -> Option<RatioInterval> {
    ratio_of_logs_at(a_logs, b_logs, 0.05)
}

/// [`ratio_of_logs`] with an interval at the confidence 1 − `alpha`.
pub fn ratio_of_logs_at(a_logs: &[f64], b_logs: &[f64], alpha: f64) -> Option<RatioInterval> {
    let (sa, sb) = (Summary::of(a_logs)?, Summary::of(b_logs)?);
    let d = sa.mean - sb.mean;
    let (low, high) = match welch_interval_at(a_logs, b_logs, alpha) {
        Some((_, lo, hi)) => (Some(lo.exp()), Some(hi.exp())),
        None => (None, None),
    };
    Some(RatioInterval {
        ratio: d.exp(),
        low,
        high,
    })
}

/// geomean(a) / geomean(b) of positive values; non-positive values are
/// ignored.
pub fn ratio_of(a: &[f64], b: &[f64]) -> Option<RatioInterval> {
    let logs = |xs: &[f64]| -> Vec<f64> {
        xs.iter()
            .filter(|x| **x > 0.0 && x.is_finite())
            .map(|x| x.ln())
            .collect()
    };
    ratio_of_logs(&logs(a), &logs(b))
}

#[cfg(test)]
mod ratio_tests {
    use super::*;

    #[test]
    fn ratio_of_clearly_different_sets_is_significant() {
        let r = ratio_of(&[270.0, 272.0, 268.0, 271.0], &[100.0, 101.0, 99.0, 100.5]).unwrap();
        assert!((r.ratio - 2.7).abs() < 0.02, "{r:?}");
        assert!(r.significant());
        assert!(r.low.unwrap() < r.ratio && r.ratio < r.high.unwrap());
        assert!(
            r.describe().starts_with("2.70× (95% CI 2.6"),
            "{}",
            r.describe()
        );
        let back = r.inverted();
        assert!((back.ratio * r.ratio - 1.0).abs() < 1e-12);
        assert!(back.high.unwrap() < 1.0);
    }

    #[test]
    fn overlapping_noise_is_not_significant_and_one_run_has_no_interval() {
        let r = ratio_of(&[100.0, 104.0, 97.0], &[101.0, 98.0, 103.0]).unwrap();
        assert!(!r.significant(), "{r:?}");
        let single = ratio_of(&[100.0], &[50.0, 51.0]).unwrap();
        assert!((single.ratio - 100.0 / (50.0f64 * 51.0).sqrt()).abs() < 1e-9);
        assert!(single.low.is_none() && !single.significant());
        assert!(single.describe().contains("too few runs"));
        assert!(ratio_of(&[], &[1.0]).is_none());
    }
}

/// a/b of paired measurements, each pair measured side by side (in one
/// round, minutes apart): the geometric mean of the per-pair ratios with a
/// 95% Student t interval over the pairs (df = pairs − 1). A slow minute of
/// the machine hits both sides of a pair alike and cancels in its ratio,
/// where an interval over independent runs (Welch) would widen. Pairs with
/// a non-positive or non-finite side are left out; `None` without a pair.
pub fn paired_ratio(pairs: &[(f64, f64)]) -> Option<RatioInterval> {
    paired_ratio_at(pairs, 0.05)
}

/// [`paired_ratio`] with an interval at the confidence 1 − `alpha`.
pub fn paired_ratio_at(pairs: &[(f64, f64)], alpha: f64) -> Option<RatioInterval> {
    let logs: Vec<f64> = pairs
        .iter()
        .filter(|(a, b)| *a > 0.0 && *b > 0.0 && a.is_finite() && b.is_finite())
        .map(|(a, b)| a.ln() - b.ln())
        .collect();
    let s = Summary::of(&logs)?;
    let (low, high) = if s.n < 2 {
        (None, None)
    } else {
        let half = t_quantile_two_sided(alpha, (s.n - 1) as f64) * s.stddev / (s.n as f64).sqrt();
        (Some((s.mean - half).exp()), Some((s.mean + half).exp()))
    };
    Some(RatioInterval {
        ratio: s.mean.exp(),
        low,
        high,
    })
}

/// The ratio of `a` to `b` from their log values by confirmation round
/// (`None`: not measured in that round), and how many rounds it pairs:
/// within each round where both were measured, minutes apart, the ratio
/// ([`paired_ratio`]), when there are at least two such rounds; else
/// Welch's interval over all their runs ([`ratio_of_logs`]), with 0 paired.
/// The interval misses with probability `alpha` (0.05: a 95% interval).
pub fn ratio_by_rounds(
    a: &[Option<f64>],
    b: &[Option<f64>],
    alpha: f64,
) -> Option<(RatioInterval, usize)> {
    let pairs: Vec<(f64, f64)> = a
        .iter()
        .zip(b)
        .filter_map(|(x, y)| Some((x.as_ref()?.exp(), y.as_ref()?.exp())))
        .collect();
    if pairs.len() >= 2 {
        return paired_ratio_at(&pairs, alpha).map(|r| (r, pairs.len()));
    }
    let measured = |v: &[Option<f64>]| v.iter().flatten().copied().collect::<Vec<f64>>();
    ratio_of_logs_at(&measured(a), &measured(b), alpha).map(|r| (r, 0))
}

#[cfg(test)]
mod paired_tests {
    use super::*;
    use crate::rng::SplitMix64;

    #[test]
    fn rounds_pair_where_both_were_measured_and_fall_back_to_welch() {
        let ln = |v: f64| Some(f64::ln(v));
        // Round 2 failed for `a`: rounds 1 and 3 pair.
        let a = [ln(110.0), None, ln(88.0)];
        let b = [ln(100.0), ln(90.0), ln(80.0)];
        let (r, paired) = ratio_by_rounds(&a, &b, 0.05).unwrap();
        assert_eq!(paired, 2);
        assert!((r.ratio - 1.1).abs() < 1e-9, "{r:?}");
        // One common round: no pairs to speak of, all runs unpaired.
        let a = [ln(110.0), None, None];
        let b = [None, ln(90.0), ln(80.0)];
        let (r, paired) = ratio_by_rounds(&a, &b, 0.05).unwrap();
        assert_eq!(paired, 0);
        assert!(
            (r.ratio - 110.0 / (90.0f64 * 80.0).sqrt()).abs() < 1e-9,
            "{r:?}"
        );
        assert_eq!(r.low, None, "one run on a side has no interval");
    }

    #[test]
    fn a_swing_common_to_a_round_cancels_in_the_pairs() {
        // Round speeds swing by ±15%, the true ratio is 1.10 with 1% noise.
        let rounds = [1.0, 0.85, 1.15, 0.9, 1.1];
        let pairs: Vec<(f64, f64)> = rounds
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let wobble = 1.0 + 0.01 * (i as f64 - 2.0) / 2.0;
                (110.0 * r * wobble, 100.0 * r)
            })
            .collect();
        let paired = paired_ratio(&pairs).unwrap();
        assert!((paired.ratio - 1.10).abs() < 0.01, "{paired:?}");
        assert!(paired.significant(), "{paired:?}");
        let (a, b): (Vec<f64>, Vec<f64>) = pairs.iter().copied().unzip();
        let unpaired = ratio_of(&a, &b).unwrap();
        assert!(!unpaired.significant(), "Welch cannot see it: {unpaired:?}");
    }

    #[test]
    fn one_pair_has_no_interval_and_bad_values_are_left_out() {
        let r = paired_ratio(&[(90.0, 100.0), (0.0, 5.0), (f64::NAN, 1.0)]).unwrap();
        assert!((r.ratio - 0.9).abs() < 1e-12);
        assert!(r.low.is_none() && !r.significant());
        assert!(paired_ratio(&[]).is_none());
    }

    /// The 95% interval covers the true ratio in about 95% of simulated
    /// experiments of 3 and of 6 rounds, with round effects far larger than
    /// the noise within a pair.
    #[test]
    fn the_interval_covers_the_true_ratio_95_percent_of_the_time() {
        let mut rng = SplitMix64::new(7);
        let truth = 0.93_f64;
        for rounds in [3, 6] {
            let trials = 4000;
            let mut covered = 0;
            for _ in 0..trials {
                let pairs: Vec<(f64, f64)> = (0..rounds)
                    .map(|_| {
                        let round = (0.2 * rng.normal()).exp();
                        let a = truth * round * (0.03 * rng.normal()).exp();
                        let b = round * (0.03 * rng.normal()).exp();
                        (100.0 * a, 100.0 * b)
                    })
                    .collect();
                let r = paired_ratio(&pairs).unwrap();
                if r.low.unwrap() <= truth && truth <= r.high.unwrap() {
                    covered += 1;
                }
            }
            let rate = covered as f64 / trials as f64;
            assert!((0.935..=0.965).contains(&rate), "{rounds} rounds: {rate}");
        }
    }
}
