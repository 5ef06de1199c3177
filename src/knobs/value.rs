//! One knob's value: an integer, a boolean, or a name. In JSON (the trial
//! protocol, the trial ids) it is the plain JSON number, boolean or string;
//! in a CSV cell, its text.

use super::{Domain, Knob};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    Int(i64),
    Bool(bool),
    /// A choice, by its canonical (lowercase) name.
    Text(String),
}

impl Value {
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(v) => Some(*v),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(v) => Some(*v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(v) => Some(v),
            _ => None,
        }
    }

    /// Whether this is a value of `knob`'s domain.
    pub fn fits(&self, knob: &Knob) -> bool {
        match (knob.domain, self) {
            (Domain::Int { min, max, .. }, Value::Int(v)) => (min..=max).contains(v),
            (Domain::Bool, Value::Bool(_)) => true,
            (Domain::Choice { names, .. }, Value::Text(v)) => names.contains(&v.as_str()),
            (Domain::Text { read, .. }, Value::Text(v)) => read(v).is_ok_and(|c| &c == v),
            _ => false,
        }
    }

    /// Reads `knob`'s value from its text (a CSV cell, the table's
    /// `before`): `None` when it is not one.
    pub fn from_cell(knob: &Knob, text: &str) -> Option<Value> {
        let text = text.trim();
        let value = match knob.domain {
            Domain::Int { .. } => Value::Int(text.parse().ok()?),
            Domain::Bool => Value::Bool(text.parse().ok()?),
            Domain::Choice { names, .. } => Value::Text(
                names
                    .iter()
                    .find(|n| n.eq_ignore_ascii_case(text))?
                    .to_string(),
            ),
            Domain::Text { read, .. } => Value::Text(read(text).ok()?),
        };
        value.fits(knob).then_some(value)
    }

    /// The value as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("values serialize")
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Bool(v)
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}

impl From<i32> for Value {
    fn from(v: i32) -> Value {
        Value::Int(v.into())
    }
}

impl From<u32> for Value {
    fn from(v: u32) -> Value {
        Value::Int(v.into())
    }
}

impl From<super::FlashAttn> for Value {
    fn from(v: super::FlashAttn) -> Value {
        Value::Text(v.name().into())
    }
}

impl From<super::KvType> for Value {
    fn from(v: super::KvType) -> Value {
        Value::Text(v.name().into())
    }
}

impl From<super::LoadMode> for Value {
    fn from(v: super::LoadMode) -> Value {
        Value::Text(v.name().into())
    }
}

impl From<super::SplitMode> for Value {
    fn from(v: super::SplitMode) -> Value {
        Value::Text(v.name().into())
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(v) => write!(f, "{v}"),
            Value::Bool(v) => write!(f, "{v}"),
            Value::Text(v) => f.write_str(v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knobs::{FLASH_ATTN, LOAD_MODE, N_CTX, N_GPU_LAYERS, OFFLOAD_KQV, TENSOR_SPLIT};

    #[test]
    fn cells_are_read_by_the_knobs_domain() {
        assert_eq!(
            Value::from_cell(N_CTX.knob(), "2048"),
            Some(Value::Int(2048))
        );
        assert_eq!(Value::from_cell(N_CTX.knob(), "0"), None, "below min");
        assert_eq!(
            Value::from_cell(N_GPU_LAYERS.knob(), "-1"),
            Some(Value::Int(-1))
        );
        assert_eq!(
            Value::from_cell(OFFLOAD_KQV.knob(), "false"),
            Some(Value::Bool(false))
        );
        assert_eq!(
            Value::from_cell(LOAD_MODE.knob(), "MMAP+MLOCK"),
            Some(Value::Text("mmap+mlock".into()))
        );
        assert_eq!(
            Value::from_cell(TENSOR_SPLIT.knob(), "3/1"),
            Some(Value::Text("3,1".into()))
        );
        assert!(
            !Value::Text("3/1".into()).fits(TENSOR_SPLIT.knob()),
            "not canonical"
        );
        assert_eq!(
            Value::from_cell(FLASH_ATTN.knob(), "ON"),
            Some(Value::Text("on".into()))
        );
        assert_eq!(Value::from_cell(FLASH_ATTN.knob(), "maybe"), None);
    }

    #[test]
    fn json_is_the_plain_value() {
        assert_eq!(serde_json::to_string(&Value::Int(-1)).unwrap(), "-1");
        assert_eq!(serde_json::to_string(&Value::Bool(true)).unwrap(), "true");
        assert_eq!(
            serde_json::to_string(&Value::Text("q8_0".into())).unwrap(),
            "\"q8_0\""
        );
        let back: Vec<Value> = serde_json::from_str(r#"[3, false, "on"]"#).unwrap();
        assert_eq!(
            back,
            [Value::Int(3), Value::Bool(false), Value::Text("on".into())]
        );
    }
}
