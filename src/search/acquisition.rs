//! How promising an unmeasured configuration is: expected improvement over
//! the best feasible score so far, weighted by the probability that the
//! configuration runs at all and meets the constraints.

use super::gp::{Gp, Priors};

/// Standard normal density.
pub fn normal_pdf(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// Standard normal distribution function (Abramowitz–Stegun 7.1.26 erf,
/// |error| < 1.5e-7).
pub fn normal_cdf(z: f64) -> f64 {
    let x = z / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-x * x).exp();
    0.5 * (1.0 + if x >= 0.0 { erf } else { -erf })
}

/// Expected improvement of a Gaussian prediction (`mean`, `sd`) over
/// `best` + `margin` (higher is better).
pub fn expected_improvement(mean: f64, sd: f64, best: f64, margin: f64) -> f64 {
    let gain = mean - best - margin;
    if sd <= 1e-12 {
        return gain.max(0.0);
    }
    let z = gain / sd;
    gain * normal_cdf(z) + sd * normal_pdf(z)
}

/// The probability that a configuration runs and meets the constraints,
/// learned from every trial seen: a Gaussian process fitted to the outcomes
/// as labels (1 = ran and feasible, 0 = failed or broke a constraint), read
/// as the chance that the latent label is above ½. It has its own length
/// scales, so it learns which axes decide failure (a big model with many GPU
/// layers runs out of memory whatever the thread count). Until both a
/// success and a failure have been seen there is nothing to tell apart, and
/// everything counts as feasible.
pub struct Feasibility {
    gp: Option<Gp>,
}

impl Feasibility {
    /// `x`: the points seen; `feasible`: their outcomes.
    pub fn fit(x: &[Vec<f64>], feasible: &[bool], groups: &[usize]) -> Feasibility {
        let labels: Vec<f64> = feasible
            .iter()
            .map(|&f| if f { 1.0 } else { 0.0 })
            .collect();
        let mixed = feasible.iter().any(|f| *f) && feasible.iter().any(|f| !*f);
        Feasibility {
            gp: mixed.then(|| Gp::fit_with(x, &labels, groups, Priors::FEASIBILITY)),
        }
    }

    pub fn probability(&self, x: &[f64]) -> f64 {
        match &self.gp {
            None => 1.0,
            Some(gp) => {
                let (mean, sd) = gp.predict(x);
                normal_cdf((mean - 0.5) / sd.max(1e-6))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_functions_match_known_values() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(1.96) - 0.975).abs() < 1e-4);
        assert!((normal_cdf(-1.0) - 0.158_655).abs() < 1e-5);
        assert!((normal_pdf(0.0) - 0.398_942_3).abs() < 1e-6);
    }

    #[test]
    fn expected_improvement_grows_with_mean_and_with_uncertainty() {
        let ei = |m, s| expected_improvement(m, s, 1.0, 0.0);
        assert!(ei(1.2, 0.1) > ei(1.0, 0.1));
        assert!(ei(1.0, 0.5) > ei(1.0, 0.1));
        assert!(ei(0.0, 1e-15) == 0.0);
        assert!((ei(1.5, 0.0) - 0.5).abs() < 1e-12);
        // Never negative.
        assert!(ei(-5.0, 0.3) >= 0.0);
    }

    #[test]
    fn feasibility_is_learned_from_the_outcomes_seen() {
        // One axis decides: everything above 0.6 fails; the other is noise.
        let x: Vec<Vec<f64>> = (0..20)
            .map(|i| vec![i as f64 / 19.0, ((i * 7) % 5) as f64 / 4.0])
            .collect();
        let feasible: Vec<bool> = x.iter().map(|p| p[0] <= 0.6).collect();
        let model = Feasibility::fit(&x, &feasible, &[0, 1]);
        assert!(
            model.probability(&[0.2, 0.5]) > 0.8,
            "{}",
            model.probability(&[0.2, 0.5])
        );
        assert!(
            model.probability(&[0.95, 0.5]) < 0.2,
            "{}",
            model.probability(&[0.95, 0.5])
        );
        // Nothing failed yet: no penalty anywhere.
        let all_ok = Feasibility::fit(&x, &[true; 20], &[0, 1]);
        assert_eq!(all_ok.probability(&[0.9, 0.9]), 1.0);
    }
}
