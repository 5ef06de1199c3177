//! Old names of knobs that still read: `use_mmap` became llama.cpp's load
//! mode. A sweep file, a results.csv or a manifest that says `use_mmap`
//! reads as the `load_mode` it meant.

use super::{KnobId, LOAD_MODE, Value};

/// An old knob name and what its values mean in the knob that replaced it.
#[derive(Debug)]
pub struct Alias {
    pub name: &'static str,
    pub knob: KnobId,
    /// The old value's text and the new knob's value for it.
    pub values: &'static [(&'static str, &'static str)],
}

pub static ALIASES: &[Alias] = &[Alias {
    name: "use_mmap",
    knob: LOAD_MODE,
    values: &[("true", "mmap"), ("false", "none")],
}];

/// The alias called `name`.
pub fn alias(name: &str) -> Option<&'static Alias> {
    ALIASES.iter().find(|a| a.name == name)
}

impl Alias {
    /// The knob's value for an old value (its text: `true`, `false`).
    pub fn translate(&self, old: &str) -> Option<Value> {
        let old = old.trim();
        self.values
            .iter()
            .find(|(from, _)| from.eq_ignore_ascii_case(old))
            .and_then(|(_, to)| Value::from_cell(self.knob.knob(), to))
    }

    /// What the old values mean, for messages.
    pub fn describe(&self) -> String {
        let pairs: Vec<String> = self
            .values
            .iter()
            .map(|(from, to)| format!("{from} is {} = {to:?}", self.knob))
            .collect();
        format!(
            "{} is the old name of {} ({})",
            self.name,
            self.knob,
            pairs.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn use_mmap_reads_as_a_load_mode() {
        let a = alias("use_mmap").unwrap();
        assert_eq!(a.translate("false"), Some(Value::Text("none".into())));
        assert_eq!(a.translate("TRUE"), Some(Value::Text("mmap".into())));
        assert_eq!(a.translate("maybe"), None);
        for a in ALIASES {
            assert!(
                super::super::by_name(a.name).is_none(),
                "{} is a knob",
                a.name
            );
            for (from, _) in a.values {
                assert!(a.translate(from).is_some(), "{}: {from}", a.name);
            }
        }
    }
}
