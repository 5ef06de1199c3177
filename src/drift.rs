//! Drift: a long sweep heats the machine and shares it with neighbours, and a
//! slowed measurement looks like a slow configuration. An anchor trial is
//! measured again every few trials; when its objective value moves more than
//! a threshold from its first measurement, the rows measured since the last
//! good check are suspect. This module is the pure bookkeeping; the sweep
//! loop does the measuring.

use crate::config::DriftSettings;

/// What an anchor check says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// Within the threshold of the first value.
    Steady { change: f64 },
    /// Moved by `change` (relative, signed) beyond the threshold.
    Drifted { change: f64 },
}

/// The anchor's first value and the trials measured since the last good
/// check.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftMonitor {
    settings: DriftSettings,
    /// (anchor trial id, its first value).
    anchor: Option<(String, f64)>,
    since_check: usize,
    suspects: Vec<String>,
}

impl DriftMonitor {
    pub fn new(settings: DriftSettings) -> Self {
        DriftMonitor {
            settings,
            anchor: None,
            since_check: 0,
            suspects: Vec::new(),
        }
    }

    pub fn settings(&self) -> &DriftSettings {
        &self.settings
    }

    pub fn anchor(&self) -> Option<(&str, f64)> {
        self.anchor.as_ref().map(|(id, v)| (id.as_str(), *v))
    }

    /// Records a measured trial; `value` is its objective value when it is
    /// feasible. The first feasible trial (or the named one) becomes the
    /// anchor. Returns true when it is time to check the anchor.
    pub fn recorded(&mut self, trial_id: &str, value: Option<f64>) -> bool {
        if self.settings.every == 0 {
            return false;
        }
        if self.anchor.is_none() {
            let wanted = self
                .settings
                .anchor
                .as_deref()
                .is_none_or(|a| a == trial_id);
            if let (true, Some(v)) = (wanted, value.filter(|v| *v != 0.0)) {
                self.anchor = Some((trial_id.to_string(), v));
                return false;
            }
        }
        if self.anchor.is_none() {
            return false;
        }
        self.suspects.push(trial_id.to_string());
        self.since_check += 1;
        self.since_check >= self.settings.every
    }

    /// Judges a new measurement of the anchor.
    pub fn judge(&self, value: f64) -> Option<Verdict> {
        let (_, first) = self.anchor.as_ref()?;
        let change = value / first - 1.0;
        Some(if change.abs() > self.settings.threshold {
            Verdict::Drifted { change }
        } else {
            Verdict::Steady { change }
        })
    }

    /// After a check: the trials measured since the last good one (to mark
    /// when the check found drift), and a fresh count.
    pub fn take_suspects(&mut self) -> Vec<String> {
        self.since_check = 0;
        std::mem::take(&mut self.suspects)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn monitor(every: usize) -> DriftMonitor {
        DriftMonitor::new(DriftSettings {
            every,
            ..DriftSettings::default()
        })
    }

    #[test]
    fn the_first_feasible_trial_is_the_anchor_and_checks_come_every_n() {
        let mut m = monitor(3);
        assert!(!m.recorded("failed", None));
        assert!(!m.recorded("a", Some(100.0)));
        assert_eq!(m.anchor(), Some(("a", 100.0)));
        assert!(!m.recorded("b", Some(90.0)));
        assert!(!m.recorded("c", None));
        assert!(m.recorded("d", Some(80.0)), "third trial after the anchor");
        assert_eq!(m.take_suspects(), vec!["b", "c", "d"]);
        assert!(!m.recorded("e", Some(1.0)));
    }

    #[test]
    fn verdicts_use_the_relative_change() {
        let mut m = monitor(1);
        m.recorded("a", Some(200.0));
        match m.judge(190.0) {
            Some(Verdict::Steady { change }) => assert!((change + 0.05).abs() < 1e-12),
            other => panic!("{other:?}"),
        }
        match m.judge(170.0) {
            Some(Verdict::Drifted { change }) => assert!((change + 0.15).abs() < 1e-12),
            other => panic!("{other:?}"),
        }
        assert!(matches!(m.judge(221.0), Some(Verdict::Drifted { .. })));
    }

    #[test]
    fn a_named_anchor_waits_for_its_trial_and_zero_disables() {
        let mut m = DriftMonitor::new(DriftSettings {
            every: 2,
            anchor: Some("x".into()),
            ..DriftSettings::default()
        });
        m.recorded("a", Some(1.0));
        assert_eq!(m.anchor(), None);
        m.recorded("x", Some(5.0));
        assert_eq!(m.anchor(), Some(("x", 5.0)));
        let mut off = monitor(0);
        assert!(!off.recorded("a", Some(1.0)));
        assert_eq!(off.anchor(), None);
    }
}
