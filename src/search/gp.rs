//! A Gaussian-process regression surrogate: Matérn 5/2 kernel with one length
//! scale per axis (the one-hot dimensions of a category share theirs), a
//! signal variance and a noise variance. Hyperparameters are fitted by
//! maximizing the log marginal likelihood (with weak log-normal priors that
//! keep them in sane ranges) using argmin's L-BFGS and the analytic gradient.

use argmin::core::{CostFunction, Error, Executor, Gradient};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;

const SQRT5: f64 = 2.236_067_977_499_79;

/// Log hyperparameters: `[ln σ_f, ln ℓ_1 .. ln ℓ_G, ln σ_n]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Hyper(pub Vec<f64>);

impl Hyper {
    /// A reasonable start for `groups` length scales on unit-cube inputs
    /// and standardized outputs.
    pub fn initial(groups: usize) -> Hyper {
        let mut h = vec![0.0];
        h.extend(std::iter::repeat_n(0.5f64.ln(), groups));
        h.push(0.1f64.ln());
        Hyper(h)
    }

    fn signal_var(&self) -> f64 {
        (2.0 * self.0[0]).exp()
    }

    fn noise_var(&self) -> f64 {
        (2.0 * self.0[self.0.len() - 1]).exp()
    }

    fn lengthscale(&self, group: usize) -> f64 {
        self.0[1 + group].exp()
    }
}

/// Log-normal priors on the hyperparameters: (centre, width) of the
/// logarithm of the signal sd, of every length scale, and of the noise sd,
/// on unit-cube inputs and standardized outputs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Priors {
    pub signal: (f64, f64),
    pub lengthscale: (f64, f64),
    pub noise: (f64, f64),
}

impl Priors {
    /// For measured speeds: effects can be sharp (a thread count past the
    /// cores), so short length scales stay plausible.
    pub const OBJECTIVE: Priors = Priors {
        signal: (0.0, 1.0),
        lengthscale: (-std::f64::consts::LN_2, 1.5),
        noise: (-2.995_732_273_553_991, 1.5),
    };

    /// For feasibility labels: what decides failure (memory) changes
    /// smoothly along the axes, so length scales start longer.
    pub const FEASIBILITY: Priors = Priors {
        lengthscale: (0.0, 1.5),
        ..Priors::OBJECTIVE
    };

    fn of(&self, index: usize, count: usize) -> (f64, f64) {
        match index {
            0 => self.signal,
            i if i == count - 1 => self.noise,
            _ => self.lengthscale,
        }
    }
}

/// The kernel's scaled squared distance per group, for a pair of points.
fn group_sq_dists(a: &[f64], b: &[f64], groups: &[usize], n_groups: usize) -> Vec<f64> {
    let mut d = vec![0.0; n_groups];
    for ((x, y), g) in a.iter().zip(b).zip(groups) {
        d[*g] += (x - y) * (x - y);
    }
    d
}

fn matern(h: &Hyper, sq: &[f64]) -> f64 {
    let r2: f64 = sq
        .iter()
        .enumerate()
        .map(|(g, s)| s / h.lengthscale(g).powi(2))
        .sum();
    let r = r2.sqrt();
    h.signal_var() * (1.0 + SQRT5 * r + 5.0 / 3.0 * r2) * (-SQRT5 * r).exp()
}

/// Lower-triangular Cholesky factor of a symmetric positive-definite matrix
/// (row-major n×n), adding jitter to the diagonal until it succeeds.
fn cholesky(k: &[f64], n: usize) -> Vec<f64> {
    let mut jitter = 0.0;
    loop {
        let mut l = vec![0.0; n * n];
        let mut ok = true;
        'outer: for i in 0..n {
            for j in 0..=i {
                let mut s = k[i * n + j] + if i == j { jitter } else { 0.0 };
                for p in 0..j {
                    s -= l[i * n + p] * l[j * n + p];
                }
                if i == j {
                    if s <= 0.0 {
                        ok = false;
                        break 'outer;
                    }
                    l[i * n + i] = s.sqrt();
                } else {
                    l[i * n + j] = s / l[j * n + j];
                }
            }
        }
        if ok {
            return l;
        }
        jitter = if jitter == 0.0 { 1e-9 } else { jitter * 10.0 };
    }
}

/// Solves L z = b (forward substitution).
fn solve_lower(l: &[f64], n: usize, b: &[f64]) -> Vec<f64> {
    let mut z = vec![0.0; n];
    for i in 0..n {
        let mut s = b[i];
        for p in 0..i {
            s -= l[i * n + p] * z[p];
        }
        z[i] = s / l[i * n + i];
    }
    z
}

/// Solves Lᵀ z = b (back substitution).
fn solve_upper(l: &[f64], n: usize, b: &[f64]) -> Vec<f64> {
    let mut z = vec![0.0; n];
    for i in (0..n).rev() {
        let mut s = b[i];
        for p in i + 1..n {
            s -= l[p * n + i] * z[p];
        }
        z[i] = s / l[i * n + i];
    }
    z
}

/// K⁻¹ from K's Cholesky factor L: L⁻¹ by forward substitution, then
/// K⁻¹ = L⁻ᵀ L⁻¹.
fn inverse_from_cholesky(l: &[f64], n: usize) -> Vec<f64> {
    let mut li = vec![0.0; n * n];
    for c in 0..n {
        li[c * n + c] = 1.0 / l[c * n + c];
        for i in c + 1..n {
            let mut s = 0.0;
            for p in c..i {
                s -= l[i * n + p] * li[p * n + c];
            }
            li[i * n + c] = s / l[i * n + i];
        }
    }
    let mut k_inv = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = (i..n).map(|k| li[k * n + i] * li[k * n + j]).sum();
            k_inv[i * n + j] = s;
            k_inv[j * n + i] = s;
        }
    }
    k_inv
}

/// Training data with the pairwise group distances computed once.
struct Data<'a> {
    y: &'a [f64],
    n: usize,
    n_groups: usize,
    /// Per pair (i, j), row-major n×n, the squared distance per group.
    sq: Vec<Vec<f64>>,
    priors: Priors,
}

impl Data<'_> {
    fn kernel_matrix(&self, h: &Hyper) -> Vec<f64> {
        let n = self.n;
        let mut k = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..=i {
                let v = matern(h, &self.sq[i * n + j]);
                k[i * n + j] = v;
                k[j * n + i] = v;
            }
            k[i * n + i] += h.noise_var();
        }
        k
    }

    /// Negative log marginal likelihood plus the priors' negative log
    /// densities, and its gradient.
    fn objective(&self, h: &Hyper) -> (f64, Vec<f64>) {
        let n = self.n;
        let k = self.kernel_matrix(h);
        let l = cholesky(&k, n);
        let alpha = solve_upper(&l, n, &solve_lower(&l, n, self.y));
        let log_det: f64 = (0..n).map(|i| l[i * n + i].ln()).sum::<f64>() * 2.0;
        let fit: f64 = self.y.iter().zip(&alpha).map(|(a, b)| a * b).sum();
        let mut cost =
            0.5 * fit + 0.5 * log_det + 0.5 * n as f64 * (2.0 * std::f64::consts::PI).ln();

        let k_inv = inverse_from_cholesky(&l, n);
        // W = ααᵀ − K⁻¹; ∂(−log p)/∂θ = −½ tr(W ∂K/∂θ), summed over the
        // lower triangle (off-diagonal pairs count twice).
        let p = h.0.len();
        let mut grad = vec![0.0; p];
        let signal = h.signal_var();
        let inv_l2: Vec<f64> = (0..self.n_groups)
            .map(|g| 1.0 / h.lengthscale(g).powi(2))
            .collect();
        for i in 0..n {
            for j in 0..=i {
                let both = if i == j { 1.0 } else { 2.0 };
                let wij = both * (alpha[i] * alpha[j] - k_inv[i * n + j]);
                let sq = &self.sq[i * n + j];
                let r2: f64 = sq.iter().zip(&inv_l2).map(|(s, il)| s * il).sum();
                let r = r2.sqrt();
                let e = (-SQRT5 * r).exp();
                grad[0] += wij * 2.0 * signal * (1.0 + SQRT5 * r + 5.0 / 3.0 * r2) * e;
                let common = wij * signal * e * 5.0 / 3.0 * (1.0 + SQRT5 * r);
                for g in 0..self.n_groups {
                    grad[1 + g] += common * sq[g] * inv_l2[g];
                }
            }
            grad[p - 1] += (alpha[i] * alpha[i] - k_inv[i * n + i]) * 2.0 * h.noise_var();
        }
        for g in grad.iter_mut() {
            *g *= -0.5;
        }
        for (i, theta) in h.0.iter().enumerate() {
            let (mu, sd) = self.priors.of(i, h.0.len());
            cost += 0.5 * ((theta - mu) / sd).powi(2);
            grad[i] += (theta - mu) / (sd * sd);
        }
        (cost, grad)
    }
}

/// Most objective evaluations one fit may spend. A line search that meets a
/// numerically hopeless region could otherwise go on for ever; past this the
/// evaluations fail, which ends the solver, and the best point seen is kept.
const MAX_EVALUATIONS: usize = 400;

/// Hyperparameters are kept in this box (log scale): outside it the kernel
/// overflows or degenerates. A smooth quadratic penalty pulls the solver
/// back instead of letting it evaluate there.
const LOG_BOUNDS: (f64, f64) = (-7.0, 5.0);

/// The optimization problem. Cost and gradient come from one computation,
/// so the last one is kept for the call that asks for the other; the best
/// finite point seen is remembered whatever the solver does.
struct Problem<'a> {
    data: &'a Data<'a>,
    memo: &'a std::sync::Mutex<Memo>,
}

#[derive(Default)]
struct Memo {
    last: Option<(Vec<f64>, f64, Vec<f64>)>,
    best: Option<(f64, Vec<f64>)>,
    evaluations: usize,
}

impl Problem<'_> {
    fn evaluate(&self, p: &[f64]) -> Result<(f64, Vec<f64>), Error> {
        let mut memo = self.memo.lock().expect("not poisoned");
        if let Some((param, cost, grad)) = memo.last.as_ref() {
            if param.as_slice() == p {
                return Ok((*cost, grad.clone()));
            }
        }
        memo.evaluations += 1;
        if memo.evaluations > MAX_EVALUATIONS {
            return Err(Error::msg("evaluation budget spent"));
        }
        let (cost, grad) = bounded_objective(self.data, p);
        if cost.is_finite() && memo.best.as_ref().is_none_or(|(c, _)| cost < *c) {
            memo.best = Some((cost, p.to_vec()));
        }
        memo.last = Some((p.to_vec(), cost, grad.clone()));
        Ok((cost, grad))
    }
}

/// The objective inside [`LOG_BOUNDS`], continued outside by a quadratic
/// wall; never NaN (a failed evaluation reads as a very poor one that
/// points back to the box's centre).
fn bounded_objective(data: &Data, p: &[f64]) -> (f64, Vec<f64>) {
    let (lo, hi) = LOG_BOUNDS;
    let inside = Hyper(p.iter().map(|v| v.clamp(lo, hi)).collect());
    let (mut cost, mut grad) = data.objective(&inside);
    if !cost.is_finite() || grad.iter().any(|g| !g.is_finite()) {
        let centre = (lo + hi) / 2.0;
        cost = 1e10;
        grad = p.iter().map(|v| v - centre).collect();
    }
    for (i, v) in p.iter().enumerate() {
        let excess = if *v > hi {
            v - hi
        } else if *v < lo {
            v - lo
        } else {
            0.0
        };
        if excess != 0.0 {
            // Continue linearly with the boundary's slope, plus the wall.
            cost += grad[i] * excess + 50.0 * excess * excess;
            grad[i] += 100.0 * excess;
        }
    }
    (cost, grad)
}

impl CostFunction for Problem<'_> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, p: &Self::Param) -> Result<f64, Error> {
        Ok(self.evaluate(p)?.0)
    }
}

impl Gradient for Problem<'_> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;
    fn gradient(&self, p: &Self::Param) -> Result<Vec<f64>, Error> {
        Ok(self.evaluate(p)?.1)
    }
}

/// A fitted Gaussian process.
#[derive(Debug, Clone)]
pub struct Gp {
    x: Vec<Vec<f64>>,
    groups: Vec<usize>,
    n_groups: usize,
    hyper: Hyper,
    chol: Vec<f64>,
    alpha: Vec<f64>,
    y_mean: f64,
    y_sd: f64,
}

impl Gp {
    /// Fits to inputs `x` (unit cube, dimensions grouped by `groups`) and
    /// outputs `y`. Outputs are standardized internally. The hyperparameter
    /// search always starts from the same point, so a fit depends on the
    /// data alone.
    pub fn fit(x: &[Vec<f64>], y: &[f64], groups: &[usize]) -> Gp {
        Gp::fit_with(x, y, groups, Priors::OBJECTIVE)
    }

    /// [`Gp::fit`] with other priors on the hyperparameters.
    pub fn fit_with(x: &[Vec<f64>], y: &[f64], groups: &[usize], priors: Priors) -> Gp {
        let n = x.len();
        let n_groups = groups.iter().max().map_or(0, |g| g + 1);
        let y_mean = y.iter().sum::<f64>() / n.max(1) as f64;
        let var = y.iter().map(|v| (v - y_mean).powi(2)).sum::<f64>() / n.max(1) as f64;
        let y_sd = var.sqrt().max(1e-9);
        let ys: Vec<f64> = y.iter().map(|v| (v - y_mean) / y_sd).collect();
        let sq: Vec<Vec<f64>> = (0..n * n)
            .map(|ij| group_sq_dists(&x[ij / n], &x[ij % n], groups, n_groups))
            .collect();
        let data = Data {
            y: &ys,
            n,
            n_groups,
            sq,
            priors,
        };
        let initial = Hyper::initial(n_groups);
        let hyper = if n >= 2 {
            optimize(&data, initial)
        } else {
            initial
        };
        let k = data.kernel_matrix(&hyper);
        let chol = cholesky(&k, n);
        let alpha = solve_upper(&chol, n, &solve_lower(&chol, n, &ys));
        Gp {
            x: x.to_vec(),
            groups: groups.to_vec(),
            n_groups,
            hyper,
            chol,
            alpha,
            y_mean,
            y_sd,
        }
    }

    #[cfg(test)]
    pub fn hyper(&self) -> &Hyper {
        &self.hyper
    }

    /// Posterior mean and standard deviation of the latent function at `x`
    /// (observation noise excluded), in the units of `y`.
    pub fn predict(&self, x: &[f64]) -> (f64, f64) {
        let n = self.x.len();
        let k_star: Vec<f64> = self
            .x
            .iter()
            .map(|xi| {
                matern(
                    &self.hyper,
                    &group_sq_dists(x, xi, &self.groups, self.n_groups),
                )
            })
            .collect();
        let mean: f64 = k_star.iter().zip(&self.alpha).map(|(a, b)| a * b).sum();
        let v = solve_lower(&self.chol, n, &k_star);
        let var = (self.hyper.signal_var() - v.iter().map(|a| a * a).sum::<f64>()).max(1e-12);
        (self.y_mean + mean * self.y_sd, var.sqrt() * self.y_sd)
    }
}

/// L-BFGS from `start`; fewer iterations as the data grow (each costs
/// O(n³)). Whatever ends
/// the solver (convergence, the iteration cap, the evaluation budget, a
/// failed line search), the best point it evaluated is the answer, and the
/// start when it found nothing better.
fn optimize(data: &Data, start: Hyper) -> Hyper {
    let iters = if data.n <= 60 {
        60
    } else if data.n <= 120 {
        40
    } else {
        25
    };
    let solver = LBFGS::new(MoreThuenteLineSearch::new(), 7);
    let memo = std::sync::Mutex::new(Memo::default());
    let problem = Problem { data, memo: &memo };
    let start_cost = bounded_objective(data, &start.0).0;
    let _ = Executor::new(problem, solver)
        .configure(|state| state.param(start.0.clone()).max_iters(iters))
        .run();
    let best = memo.into_inner().expect("not poisoned").best;
    match best {
        Some((cost, param)) if cost < start_cost => {
            let (lo, hi) = LOG_BOUNDS;
            Hyper(param.iter().map(|v| v.clamp(lo, hi)).collect())
        }
        _ => start,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid_1d(n: usize) -> Vec<Vec<f64>> {
        (0..n).map(|i| vec![i as f64 / (n - 1) as f64]).collect()
    }

    #[test]
    fn interpolates_a_smooth_function() {
        let x = grid_1d(12);
        let f = |t: f64| (3.0 * t).sin() + 0.5 * t;
        let y: Vec<f64> = x.iter().map(|p| f(p[0])).collect();
        let gp = Gp::fit(&x, &y, &[0]);
        for t in [0.13, 0.41, 0.77] {
            let (mean, sd) = gp.predict(&[t]);
            assert!((mean - f(t)).abs() < 0.05, "at {t}: {mean} vs {}", f(t));
            assert!(sd < 0.2, "{sd}");
        }
    }

    #[test]
    fn uncertainty_shrinks_at_observed_points_and_grows_away_from_them() {
        let x = vec![vec![0.1], vec![0.2], vec![0.3]];
        let y = vec![1.0, 2.0, 1.5];
        let gp = Gp::fit(&x, &y, &[0]);
        let (_, at_data) = gp.predict(&[0.2]);
        let (_, far) = gp.predict(&[0.95]);
        assert!(at_data < far / 3.0, "{at_data} vs {far}");
    }

    #[test]
    fn an_irrelevant_axis_gets_a_long_length_scale() {
        let mut rng = crate::rng::SplitMix64::new(5);
        let x: Vec<Vec<f64>> = (0..30)
            .map(|_| vec![rng.next_f64(), rng.next_f64()])
            .collect();
        let y: Vec<f64> = x.iter().map(|p| (4.0 * p[0]).sin()).collect();
        let gp = Gp::fit(&x, &y, &[0, 1]);
        let (l0, l1) = (gp.hyper().0[1].exp(), gp.hyper().0[2].exp());
        assert!(l1 > 2.0 * l0, "relevant {l0}, irrelevant {l1}");
    }

    #[test]
    fn the_gradient_matches_finite_differences() {
        let x = [
            vec![0.1, 0.0, 1.0],
            vec![0.5, 1.0, 0.0],
            vec![0.9, 0.0, 1.0],
            vec![0.3, 1.0, 0.0],
        ];
        let y = [0.3, -1.0, 0.8, 0.1];
        let groups = [0, 1, 1];
        let sq: Vec<Vec<f64>> = (0..16)
            .map(|ij| group_sq_dists(&x[ij / 4], &x[ij % 4], &groups, 2))
            .collect();
        let data = Data {
            y: &y,
            n: 4,
            n_groups: 2,
            sq,
            priors: Priors::OBJECTIVE,
        };
        let h = Hyper(vec![0.2, -0.5, 0.3, -1.5]);
        let (_, grad) = data.objective(&h);
        for (i, analytic) in grad.iter().enumerate() {
            let (mut up, mut down) = (h.clone(), h.clone());
            up.0[i] += 1e-5;
            down.0[i] -= 1e-5;
            let numeric = (data.objective(&up).0 - data.objective(&down).0) / 2e-5;
            assert!(
                (numeric - analytic).abs() < 1e-4 * (1.0 + numeric.abs()),
                "{i}: {numeric} vs {analytic}"
            );
        }
    }

    #[test]
    fn cholesky_solves_linear_systems() {
        let k = vec![4.0, 2.0, 0.6, 2.0, 5.0, 1.0, 0.6, 1.0, 3.0];
        let l = cholesky(&k, 3);
        let b = vec![1.0, 2.0, 3.0];
        let z = solve_upper(&l, 3, &solve_lower(&l, 3, &b));
        for i in 0..3 {
            let kz: f64 = (0..3).map(|j| k[i * 3 + j] * z[j]).sum();
            assert!((kz - b[i]).abs() < 1e-12);
        }
    }
}
