//! The speeds a trial measured with the KV cache filled (workload.n_depth),
//! held in one column of results.csv and results.parquet as JSON: a list
//! of `{"depth", "pp_tps_mean", "pp_tps_sd", "tg_tps_mean", "tg_tps_sd",
//! "pp_tps", "tg_tps"}` objects, the last two the raw samples.

use crate::objective::Speed;
use crate::protocol::DepthSamples;
use crate::stats::Summary;
use serde::{Deserialize, Serialize};

/// pp and tg at one depth: means, sample standard deviations and samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DepthStat {
    pub depth: u32,
    pub pp_tps_mean: Option<f64>,
    pub pp_tps_sd: Option<f64>,
    pub tg_tps_mean: Option<f64>,
    pub tg_tps_sd: Option<f64>,
    pub pp_tps: Vec<f64>,
    pub tg_tps: Vec<f64>,
}

impl DepthStat {
    pub fn of(samples: &DepthSamples) -> DepthStat {
        let (pp, tg) = (Summary::of(&samples.pp_tps), Summary::of(&samples.tg_tps));
        DepthStat {
            depth: samples.depth,
            pp_tps_mean: pp.map(|s| s.mean),
            pp_tps_sd: pp.map(|s| s.stddev),
            tg_tps_mean: tg.map(|s| s.mean),
            tg_tps_sd: tg.map(|s| s.stddev),
            pp_tps: samples.pp_tps.clone(),
            tg_tps: samples.tg_tps.clone(),
        }
    }
}

impl DepthStat {
    /// The mean, sd and samples of `speed` at this depth; with n_parallel
    /// sequences the aggregate is n_parallel × one sequence's tg.
    pub fn speed(&self, speed: Speed, n_parallel: f64) -> (Option<f64>, Option<f64>, Vec<f64>) {
        let scaled = |v: Option<f64>| v.map(|v| v * n_parallel);
        match speed {
            Speed::Pp => (self.pp_tps_mean, self.pp_tps_sd, self.pp_tps.clone()),
            Speed::Tg => (self.tg_tps_mean, self.tg_tps_sd, self.tg_tps.clone()),
            Speed::Aggregate => (
                scaled(self.tg_tps_mean),
                scaled(self.tg_tps_sd),
                self.tg_tps.iter().map(|v| v * n_parallel).collect(),
            ),
        }
    }
}

/// Every depth of a row, shallowest first; empty when the workload has no
/// depths (an empty cell).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DepthStats(pub Vec<DepthStat>);

impl DepthStats {
    pub fn at(&self, depth: u32) -> Option<&DepthStat> {
        self.0.iter().find(|d| d.depth == depth)
    }

    /// The cell's text: JSON, or nothing.
    pub fn to_cell(&self) -> String {
        if self.0.is_empty() {
            String::new()
        } else {
            serde_json::to_string(&self.0).expect("depth stats serialize")
        }
    }

    pub fn from_cell(text: &str) -> Result<DepthStats, String> {
        if text.trim().is_empty() {
            return Ok(DepthStats::default());
        }
        serde_json::from_str(text)
            .map(DepthStats)
            .map_err(|e| format!("not a list of depths: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_round_trips_and_empty_is_nothing() {
        let stats = DepthStats(vec![DepthStat::of(&DepthSamples {
            depth: 512,
            pp_tps: vec![100.0, 110.0],
            tg_tps: vec![50.0, 52.0],
        })]);
        let at = stats.at(512).unwrap();
        assert_eq!(at.pp_tps_mean, Some(105.0));
        assert!((at.tg_tps_sd.unwrap() - 2f64.sqrt()).abs() < 1e-12);
        assert!(stats.at(0).is_none());
        let cell = stats.to_cell();
        assert!(cell.starts_with(r#"[{"depth":512,"#), "{cell}");
        assert_eq!(DepthStats::from_cell(&cell).unwrap(), stats);
        assert_eq!(DepthStats::default().to_cell(), "");
        assert_eq!(DepthStats::from_cell("").unwrap(), DepthStats::default());
        assert!(DepthStats::from_cell("512:100").is_err());
    }
}
