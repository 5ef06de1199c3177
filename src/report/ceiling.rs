//! The ceiling memory bandwidth puts on generation speed: a generated token
//! reads every weight once, so on the CPU tokens/s cannot pass host RAM
//! bandwidth ÷ bytes per token. Known only for trials that ran all on the
//! CPU: a GPU's own bandwidth is not measured.

use crate::bandwidth::{Bandwidth, generation_ceiling_tps};
use crate::objective::{Measured, Metric};
use crate::store::manifest::Manifest;
use crate::store::row::TrialRow;

/// Why a speed can pass 100% of the ceiling, for the page.
pub const ABOVE_CEILING: &str = "above the RAM ceiling: part of the weights is served from CPU caches, which are faster than RAM";

/// The generation ceiling of one trial, or why it has none.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ceiling {
    Known {
        tps: f64,
        gb_per_s: f64,
        bytes_per_token: u64,
    },
    /// The sweep did not measure host memory bandwidth.
    NoBandwidth,
    /// The bytes a token reads are not known for the row's model.
    NoBytesPerToken,
    /// Layers ran (or may have run) on a GPU, whose bandwidth is not measured.
    Offloaded {
        layers: Option<u32>,
        total: Option<u32>,
    },
}

impl Ceiling {
    /// The ceiling of a trial on a machine with `bandwidth` (when measured)
    /// whose llama.cpp build can offload to a GPU or not.
    pub fn of(row: &TrialRow, bandwidth: Option<&Bandwidth>, gpu_build: bool) -> Ceiling {
        let on_cpu = match row.layers_offloaded {
            Some(layers) => layers == 0,
            // n_gpu_layers may be -1 on a CPU-only build: nothing offloads.
            None => !gpu_build || row.params.int(crate::knobs::N_GPU_LAYERS) == 0,
        };
        if !on_cpu {
            return Ceiling::Offloaded {
                layers: row.layers_offloaded,
                total: row.layers_total,
            };
        }
        let Some(bandwidth) = bandwidth else {
            return Ceiling::NoBandwidth;
        };
        let Some(bytes_per_token) = row.bytes_per_token.filter(|b| *b > 0) else {
            return Ceiling::NoBytesPerToken;
        };
        Ceiling::Known {
            tps: generation_ceiling_tps(bandwidth.gb_per_s, bytes_per_token),
            gb_per_s: bandwidth.gb_per_s,
            bytes_per_token,
        }
    }

    /// The ceiling of a trial of the sweep `manifest` describes.
    pub fn in_sweep(row: &TrialRow, manifest: &Manifest) -> Ceiling {
        Ceiling::of(
            row,
            manifest.memory_bandwidth.as_ref(),
            manifest.llama_cpp.supports_gpu_offload,
        )
    }

    /// Tokens per second, when known.
    pub fn tps(&self) -> Option<f64> {
        match self {
            Ceiling::Known { tps, .. } => Some(*tps),
            _ => None,
        }
    }

    /// A row's generation speed as a percentage of this ceiling.
    pub fn percent_of(&self, row: &TrialRow) -> Option<f64> {
        let tg = row.mean_of(Metric::TgTps)?;
        self.tps()
            .filter(|c| c.is_finite() && *c > 0.0)
            .map(|c| tg / c * 100.0)
    }

    /// `371 t/s: 37.1 GB/s memory bandwidth ÷ 100 MB read per token`, or why
    /// there is no ceiling.
    pub fn describe(&self) -> String {
        match *self {
            Ceiling::Known {
                tps,
                gb_per_s,
                bytes_per_token,
            } => format!(
                "{} t/s: {gb_per_s:.1} GB/s memory bandwidth ÷ {} MB read per token",
                super::plots::format_value(tps),
                megabytes(bytes_per_token)
            ),
            Ceiling::NoBandwidth => {
                "not known: this sweep did not measure the memory bandwidth".into()
            }
            Ceiling::NoBytesPerToken => {
                "not known: the bytes a token reads are not known for this model".into()
            }
            Ceiling::Offloaded { layers, total } => format!(
                "not measured: {} layers ran on the GPU, whose memory bandwidth llama-sweep does not measure",
                match (layers, total) {
                    (Some(l), Some(t)) => format!("{l}/{t}"),
                    (Some(l), None) => l.to_string(),
                    _ => "some".into(),
                }
            ),
        }
    }
}

/// Bytes in MB (10⁶, like GB/s), with the digits that help.
pub fn megabytes(bytes: u64) -> String {
    let mb = bytes as f64 / 1e6;
    if mb >= 100.0 {
        format!("{mb:.0}")
    } else if mb >= 10.0 {
        format!("{mb:.1}")
    } else {
        format!("{mb:.2}")
    }
}

#[cfg(test)]
pub(crate) fn bandwidth(gb_per_s: f64) -> Bandwidth {
    Bandwidth {
        gb_per_s,
        median_gb_per_s: gb_per_s,
        threads: 2,
        buffer_mib: 1024,
        runs: 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::mock;
    use crate::test_support::row;

    fn cpu_row(tg: f64) -> TrialRow {
        let mut r = row("a", &mock::measured(tg, 500.0));
        r.tg_tps_mean = Some(tg);
        r.layers_offloaded = Some(0);
        r.layers_total = Some(31);
        r.bytes_per_token = Some(100_000_000);
        r
    }

    #[test]
    fn a_cpu_row_has_bandwidth_over_bytes_per_token() {
        let r = cpu_row(50.0);
        let c = Ceiling::of(&r, Some(&bandwidth(20.0)), true);
        assert_eq!(c.tps(), Some(200.0));
        assert_eq!(c.percent_of(&r), Some(25.0));
        assert_eq!(
            c.describe(),
            "200.0 t/s: 20.0 GB/s memory bandwidth ÷ 100 MB read per token"
        );
        // Unknown offload on a CPU-only build (n_gpu_layers -1): the CPU.
        let mut unknown = r.clone();
        unknown.layers_offloaded = None;
        unknown.params.set(crate::knobs::N_GPU_LAYERS, (-1).into());
        assert!(
            Ceiling::of(&unknown, Some(&bandwidth(20.0)), false)
                .tps()
                .is_some()
        );
        // ... but on a GPU build it may have offloaded.
        assert!(matches!(
            Ceiling::of(&unknown, Some(&bandwidth(20.0)), true),
            Ceiling::Offloaded { layers: None, .. }
        ));
    }

    #[test]
    fn offloaded_unknown_bandwidth_and_unknown_bytes_have_no_ceiling() {
        let mut gpu = cpu_row(50.0);
        gpu.layers_offloaded = Some(31);
        let c = Ceiling::of(&gpu, Some(&bandwidth(20.0)), true);
        assert_eq!(c.tps(), None);
        assert_eq!(c.percent_of(&gpu), None);
        assert!(c.describe().contains("31/31 layers ran on the GPU"));
        assert_eq!(
            Ceiling::of(&cpu_row(50.0), None, false),
            Ceiling::NoBandwidth
        );
        let mut no_bytes = cpu_row(50.0);
        no_bytes.bytes_per_token = None;
        assert_eq!(
            Ceiling::of(&no_bytes, Some(&bandwidth(20.0)), false),
            Ceiling::NoBytesPerToken
        );
    }
}
