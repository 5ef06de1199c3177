//! Turns a configuration into a point of the unit cube for the surrogate
//! model: the model variant and every knob, scaled as the parameter table
//! says — integer axes to [0, 1], batch-like axes (n_ctx, n_batch,
//! n_ubatch) on a log scale first, booleans 0/1, categories (model variant,
//! flash attention, KV types) one-hot. Axes with a single value carry no
//! information and are left out.

use crate::knobs::{self, Params, Scale, Value};
use crate::protocol::TrialSpec;
use crate::store::row::TrialRow;

/// The axes: the model variant, then every knob of the parameter table, with
/// the table's scale.
fn axes() -> impl Iterator<Item = (&'static str, Scale)> {
    std::iter::once(("model", Scale::Category))
        .chain(knobs::TABLE.iter().map(|k| (k.name, k.scale)))
}

/// One axis value of a configuration.
#[derive(Debug, Clone, PartialEq)]
pub enum AxisValue {
    Num(f64),
    Cat(String),
    /// Left at llama.cpp's default.
    Unset,
}

/// A configuration as axis values, in [`axes`] order.
pub type Point = Vec<AxisValue>;

fn axis_value(value: Option<&Value>) -> AxisValue {
    match value {
        None => AxisValue::Unset,
        Some(Value::Int(v)) => AxisValue::Num(*v as f64),
        Some(Value::Bool(b)) => AxisValue::Num(if *b { 1.0 } else { 0.0 }),
        Some(Value::Text(t)) => AxisValue::Cat(t.clone()),
    }
}

fn point(model: String, get: impl Fn(knobs::KnobId) -> Option<Value>) -> Point {
    std::iter::once(AxisValue::Cat(model))
        .chain(knobs::TABLE.iter().map(|k| axis_value(get(k.id).as_ref())))
        .collect()
}

/// The point of a planned trial.
pub fn point_of_spec(spec: &TrialSpec) -> Point {
    let p: &Params = &spec.params;
    point(format!("{} {}", spec.model.name, spec.model.variant), |k| {
        p.get(k).cloned()
    })
}

/// The point of a recorded trial (its effective values).
pub fn point_of_row(r: &TrialRow) -> Point {
    point(format!("{} {}", r.model_name, r.model_variant), |k| {
        Some(r.params.get(k).clone())
    })
}

/// How one kept axis maps to dimensions.
#[derive(Debug, Clone, PartialEq)]
enum Encoding {
    Numeric {
        axis: usize,
        log: bool,
        min: f64,
        max: f64,
    },
    OneHot {
        axis: usize,
        values: Vec<String>,
    },
}

/// Maps points to vectors in the unit cube.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoder {
    encodings: Vec<Encoding>,
}

impl Encoder {
    /// Learns the axes' ranges and categories from all candidate points.
    pub fn fit(points: &[Point]) -> Encoder {
        let mut encodings = Vec::new();
        for (axis, (_, scale)) in axes().enumerate() {
            match scale {
                Scale::Category => {
                    let mut values: Vec<String> = points
                        .iter()
                        .map(|p| match &p[axis] {
                            AxisValue::Cat(s) => s.clone(),
                            AxisValue::Num(v) => v.to_string(),
                            AxisValue::Unset => "default".into(),
                        })
                        .collect();
                    values.sort();
                    values.dedup();
                    if values.len() > 1 {
                        encodings.push(Encoding::OneHot { axis, values });
                    }
                }
                Scale::Linear | Scale::Log2 => {
                    let log = scale == Scale::Log2;
                    let xs: Vec<f64> = points
                        .iter()
                        .filter_map(|p| match p[axis] {
                            AxisValue::Num(v) => Some(if log { v.max(1.0).log2() } else { v }),
                            _ => None,
                        })
                        .collect();
                    let min = xs.iter().cloned().fold(f64::INFINITY, f64::min);
                    let max = xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    if max > min {
                        encodings.push(Encoding::Numeric {
                            axis,
                            log,
                            min,
                            max,
                        });
                    }
                }
            }
        }
        Encoder { encodings }
    }

    /// Number of dimensions of an encoded point.
    pub fn dims(&self) -> usize {
        self.encodings
            .iter()
            .map(|e| match e {
                Encoding::Numeric { .. } => 1,
                Encoding::OneHot { values, .. } => values.len(),
            })
            .sum()
    }

    /// For each dimension, the index of the axis it belongs to (one-hot
    /// dimensions of an axis share a length scale).
    pub fn groups(&self) -> Vec<usize> {
        let mut groups = Vec::new();
        for (g, e) in self.encodings.iter().enumerate() {
            let n = match e {
                Encoding::Numeric { .. } => 1,
                Encoding::OneHot { values, .. } => values.len(),
            };
            groups.extend(std::iter::repeat_n(g, n));
        }
        groups
    }

    /// Names of the kept axes, one per group.
    pub fn axis_names(&self) -> Vec<&'static str> {
        self.encodings
            .iter()
            .map(|e| match e {
                Encoding::Numeric { axis, .. } | Encoding::OneHot { axis, .. } => {
                    axes().nth(*axis).map_or("?", |(name, _)| name)
                }
            })
            .collect()
    }

    pub fn encode(&self, point: &Point) -> Vec<f64> {
        let mut x = Vec::with_capacity(self.dims());
        for e in &self.encodings {
            match e {
                Encoding::Numeric {
                    axis,
                    log,
                    min,
                    max,
                } => {
                    let v = match point[*axis] {
                        AxisValue::Num(v) => {
                            if *log {
                                v.max(1.0).log2()
                            } else {
                                v
                            }
                        }
                        _ => *min,
                    };
                    x.push(((v - min) / (max - min)).clamp(0.0, 1.0));
                }
                Encoding::OneHot { axis, values } => {
                    let name = match &point[*axis] {
                        AxisValue::Cat(s) => s.clone(),
                        AxisValue::Num(v) => v.to_string(),
                        AxisValue::Unset => "default".into(),
                    };
                    x.extend(values.iter().map(|v| if *v == name { 1.0 } else { 0.0 }));
                }
            }
        }
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knobs::{FLASH_ATTN, N_BATCH, N_CTX, N_THREADS, Params, Value};
    use crate::test_support::spec;

    fn with(params: Params, variant: &str) -> Point {
        let mut s = spec("x");
        s.params = params;
        s.model.variant = variant.into();
        point_of_spec(&s)
    }

    #[test]
    fn batch_axes_are_log_scaled_categories_one_hot_and_constant_axes_dropped() {
        let points: Vec<Point> = [
            (512, 1, "on", "Q4_1"),
            (1024, 2, "off", "Q8_0"),
            (2048, 3, "on", "Q4_1"),
        ]
        .into_iter()
        .map(|(b, t, fa, v)| {
            with(
                Params::default()
                    .with(N_BATCH, Value::Int(b))
                    .with(N_THREADS, Value::Int(t))
                    .with(FLASH_ATTN, Value::Text(fa.into()))
                    .with(N_CTX, Value::Int(4096)),
                v,
            )
        })
        .collect();
        let e = Encoder::fit(&points);
        assert_eq!(
            e.axis_names(),
            vec!["model", "n_batch", "n_threads", "flash_attn"]
        );
        assert_eq!(e.dims(), 2 + 1 + 1 + 2);
        assert_eq!(e.groups(), vec![0, 0, 1, 2, 3, 3]);
        // n_batch 1024 is halfway between 512 and 2048 on a log scale.
        assert_eq!(e.encode(&points[1]), vec![0.0, 1.0, 0.5, 0.5, 1.0, 0.0]);
        assert_eq!(e.encode(&points[0]), vec![1.0, 0.0, 0.0, 0.0, 0.0, 1.0]);
        assert!(e.encode(&points[2]).iter().all(|x| (0.0..=1.0).contains(x)));
    }

    #[test]
    fn rows_and_specs_of_the_same_trial_encode_alike() {
        let r = crate::test_support::row("a", &crate::runner::mock::measured(1.0, 1.0));
        let mut other = r.clone();
        other.params.set(N_BATCH, Value::Int(1024));
        let e = Encoder::fit(&[point_of_row(&r), point_of_row(&other)]);
        assert_eq!(e.axis_names(), vec!["n_batch"]);
        assert_eq!(e.encode(&point_of_row(&r)), vec![0.0]);
    }
}
