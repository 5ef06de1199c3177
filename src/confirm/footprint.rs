//! The memory a configuration uses, for the tie-break between configurations
//! the confirmation round cannot tell apart. Like is weighed with like:
//! device memory against device memory, host memory against host memory. A
//! model held on the GPU and one held in RAM use different resources, so
//! neither is the lighter, and there is no tie-break between them.

use crate::store::row::TrialRow;

/// The memory a trial used, MiB.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Footprint {
    /// On GPU devices (the trial offloaded something).
    Device(f64),
    /// Peak resident memory of the process (nothing on a device).
    Host(f64),
}

impl Footprint {
    pub fn of(row: &TrialRow) -> Option<Footprint> {
        match row.device_memory_mib.filter(|m| *m > 0.0) {
            Some(mib) => Some(Footprint::Device(mib)),
            None => row.peak_rss_mib.map(Footprint::Host),
        }
    }

    /// "device memory" or "host memory".
    pub fn kind(self) -> &'static str {
        match self {
            Footprint::Device(_) => "device memory",
            Footprint::Host(_) => "host memory",
        }
    }

    pub fn mib(self) -> f64 {
        match self {
            Footprint::Device(mib) | Footprint::Host(mib) => mib,
        }
    }

    fn same_kind(self, other: Footprint) -> bool {
        self.kind() == other.kind()
    }
}

/// Which of `rows` uses the least memory: its index (the first of equals)
/// and the footprint of each. When their memory is not of one kind, or one
/// was not measured, why they cannot be compared: "a's is device memory,
/// b's host memory".
pub fn lightest(rows: &[&TrialRow]) -> Result<(usize, Vec<Footprint>), String> {
    let mut footprints: Vec<Footprint> = Vec::with_capacity(rows.len());
    for row in rows {
        let Some(footprint) = Footprint::of(row) else {
            return Err(format!("{}'s was not measured", row.trial_id));
        };
        if let Some(first) = footprints.first().filter(|f| !f.same_kind(footprint)) {
            return Err(format!(
                "{}'s is {}, {}'s {}",
                rows[0].trial_id,
                first.kind(),
                row.trial_id,
                footprint.kind()
            ));
        }
        footprints.push(footprint);
    }
    let least = footprints
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.mib().total_cmp(&b.1.mib()))
        .map(|(i, _)| i)
        .ok_or("there is nothing to compare")?;
    Ok((least, footprints))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::mock;
    use crate::test_support::row;

    fn using(id: &str, device: Option<f64>, rss: Option<f64>) -> TrialRow {
        let mut r = row(id, &mock::measured(100.0, 100.0));
        r.device_memory_mib = device;
        r.peak_rss_mib = rss;
        r
    }

    #[test]
    fn device_memory_is_weighed_against_device_memory_only() {
        let gpu = using("gpu", Some(3000.0), Some(400.0));
        let smaller_gpu = using("smaller", Some(2000.0), Some(900.0));
        let cpu = using("cpu", Some(0.0), Some(2500.0));
        assert_eq!(
            lightest(&[&gpu, &smaller_gpu]),
            Ok((
                1,
                vec![Footprint::Device(3000.0), Footprint::Device(2000.0)]
            ))
        );
        assert_eq!(
            lightest(&[&gpu, &smaller_gpu, &cpu]),
            Err("gpu's is device memory, cpu's host memory".into())
        );
    }

    #[test]
    fn host_memory_is_weighed_against_host_memory() {
        let a = using("a", None, Some(400.0));
        let b = using("b", Some(0.0), Some(150.0));
        let c = using("c", None, Some(150.0));
        assert_eq!(lightest(&[&a, &b, &c]).unwrap().0, 1, "the first of equals");
    }

    #[test]
    fn memory_not_measured_cannot_be_compared() {
        let a = using("a", None, Some(400.0));
        let b = using("b", None, None);
        assert_eq!(lightest(&[&a, &b]), Err("b's was not measured".into()));
        assert!(lightest(&[]).is_err());
    }
}
