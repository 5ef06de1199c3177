//! One axis of the search space as written in sweep.toml: a single value, a
//! list, or a numeric range `{ min, max, step }` / `{ min, max, mul }`,
//! expanded into the list of values it stands for.

use crate::protocol::{FlashAttn, KvType};
use toml::Value;

/// Ranges longer than this are almost certainly a typo (a missing `mul`).
const MAX_AXIS_VALUES: i64 = 4096;

/// A value type that an axis can hold.
pub trait AxisValue: Copy + PartialEq + Sized {
    /// What a single value looks like, for error messages.
    const EXPECTED: &'static str;
    /// Whether `{ min, max, step }` ranges make sense for this type.
    const RANGES: bool = false;

    fn from_toml(value: &Value) -> Option<Self>;

    fn from_i64(_: i64) -> Option<Self> {
        None
    }
}

impl AxisValue for u32 {
    const EXPECTED: &'static str = "a non-negative integer";
    const RANGES: bool = true;
    fn from_toml(value: &Value) -> Option<Self> {
        value.as_integer().and_then(Self::from_i64)
    }
    fn from_i64(v: i64) -> Option<Self> {
        u32::try_from(v).ok()
    }
}

impl AxisValue for i32 {
    const EXPECTED: &'static str = "an integer";
    const RANGES: bool = true;
    fn from_toml(value: &Value) -> Option<Self> {
        value.as_integer().and_then(Self::from_i64)
    }
    fn from_i64(v: i64) -> Option<Self> {
        i32::try_from(v).ok()
    }
}

impl AxisValue for bool {
    const EXPECTED: &'static str = "true or false";
    fn from_toml(value: &Value) -> Option<Self> {
        value.as_bool()
    }
}

impl AxisValue for FlashAttn {
    const EXPECTED: &'static str = "\"on\", \"off\" or \"auto\"";
    fn from_toml(value: &Value) -> Option<Self> {
        match value {
            Value::String(s) => FlashAttn::ALL.into_iter().find(|f| f.name() == s),
            Value::Boolean(true) => Some(FlashAttn::On),
            Value::Boolean(false) => Some(FlashAttn::Off),
            _ => None,
        }
    }
}

impl AxisValue for KvType {
    const EXPECTED: &'static str = "a KV-cache type: \"f32\", \"f16\", \"bf16\", \"q8_0\", \"q4_0\", \"q4_1\", \"iq4_nl\", \"q5_0\" or \"q5_1\"";
    fn from_toml(value: &Value) -> Option<Self> {
        value.as_str().and_then(KvType::from_name)
    }
}

/// Expands an axis value into its list of values. The error is a message
/// without the key (the caller adds it).
pub fn expand<T: AxisValue>(value: &Value) -> Result<Vec<T>, String> {
    let values = match value {
        Value::Array(items) => items
            .iter()
            .map(|item| T::from_toml(item).ok_or_else(|| wrong_type::<T>(item)))
            .collect::<Result<Vec<T>, String>>()?,
        Value::Table(table) if T::RANGES => expand_range::<T>(table)?,
        single => vec![T::from_toml(single).ok_or_else(|| wrong_type::<T>(single))?],
    };
    if values.is_empty() {
        return Err(
            "empty axis: give at least one value, or remove the key to keep llama.cpp's default"
                .into(),
        );
    }
    let mut unique = Vec::with_capacity(values.len());
    for v in values {
        if !unique.contains(&v) {
            unique.push(v);
        }
    }
    Ok(unique)
}

fn wrong_type<T: AxisValue>(found: &Value) -> String {
    let shape = if T::RANGES {
        ", a list of them, or a range { min, max, step } / { min, max, mul }"
    } else {
        " or a list of them"
    };
    format!("expected {}{shape}; found {}", T::EXPECTED, describe(found))
}

fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => format!("the string {s:?}"),
        Value::Integer(i) => format!("the integer {i}"),
        Value::Float(f) => format!("the number {f}"),
        Value::Boolean(b) => format!("the boolean {b}"),
        Value::Datetime(d) => format!("the date {d}"),
        Value::Array(_) => "a list".into(),
        Value::Table(_) => "a table".into(),
    }
}

fn expand_range<T: AxisValue>(table: &toml::Table) -> Result<Vec<T>, String> {
    for key in table.keys() {
        if !["min", "max", "step", "mul"].contains(&key.as_str()) {
            return Err(format!(
                "unknown range key `{key}`: a range is {{ min, max, step }} or {{ min, max, mul }}"
            ));
        }
    }
    let int = |key: &str| -> Result<Option<i64>, String> {
        match table.get(key) {
            None => Ok(None),
            Some(Value::Integer(i)) => Ok(Some(*i)),
            Some(other) => Err(format!(
                "range `{key}` must be an integer; found {}",
                describe(other)
            )),
        }
    };
    let (Some(min), Some(max)) = (int("min")?, int("max")?) else {
        return Err("a range needs both `min` and `max`".into());
    };
    if min > max {
        return Err(format!("range min ({min}) is greater than max ({max})"));
    }
    let mut raw = Vec::new();
    match (int("step")?, int("mul")?) {
        (Some(_), Some(_)) => return Err("a range takes `step` or `mul`, not both".into()),
        (None, Some(mul)) => {
            if mul < 2 {
                return Err(format!("range `mul` must be at least 2; found {mul}"));
            }
            if min < 1 {
                return Err(format!("a `mul` range needs min ≥ 1; found {min}"));
            }
            let mut v = min;
            while v <= max {
                raw.push(v);
                v = v.saturating_mul(mul);
            }
        }
        (step, None) => {
            let step = step.unwrap_or(1);
            if step < 1 {
                return Err(format!("range `step` must be at least 1; found {step}"));
            }
            if (max - min) / step + 1 > MAX_AXIS_VALUES {
                return Err(format!(
                    "range gives more than {MAX_AXIS_VALUES} values; use a larger step or `mul`"
                ));
            }
            raw.extend((min..=max).step_by(step as usize));
        }
    }
    raw.into_iter()
        .map(|v| {
            T::from_i64(v)
                .ok_or_else(|| format!("range value {v} is out of range: expected {}", T::EXPECTED))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Value {
        let table: toml::Table = toml::from_str(&format!("v = {src}")).unwrap();
        table["v"].clone()
    }

    #[test]
    fn single_list_and_ranges() {
        assert_eq!(expand::<u32>(&parse("512")).unwrap(), vec![512]);
        assert_eq!(
            expand::<u32>(&parse("[512, 1024]")).unwrap(),
            vec![512, 1024]
        );
        assert_eq!(
            expand::<u32>(&parse("{ min = 512, max = 2048, mul = 2 }")).unwrap(),
            vec![512, 1024, 2048]
        );
        assert_eq!(
            expand::<u32>(&parse("{ min = 1024, max = 4096, step = 1024 }")).unwrap(),
            vec![1024, 2048, 3072, 4096]
        );
        assert_eq!(
            expand::<i32>(&parse("{ min = 1, max = 3 }")).unwrap(),
            vec![1, 2, 3]
        );
    }

    #[test]
    fn range_stops_at_max_even_when_step_overshoots() {
        assert_eq!(
            expand::<u32>(&parse("{ min = 1, max = 10, step = 4 }")).unwrap(),
            vec![1, 5, 9]
        );
        assert_eq!(
            expand::<u32>(&parse("{ min = 3, max = 20, mul = 2 }")).unwrap(),
            vec![3, 6, 12]
        );
    }

    #[test]
    fn duplicates_are_removed_in_order() {
        assert_eq!(expand::<u32>(&parse("[2, 1, 2]")).unwrap(), vec![2, 1]);
    }

    #[test]
    fn categorical_axes() {
        assert_eq!(
            expand::<FlashAttn>(&parse(r#"["on", "off", "auto"]"#)).unwrap(),
            FlashAttn::ALL.to_vec()
        );
        assert_eq!(
            expand::<FlashAttn>(&parse("true")).unwrap(),
            vec![FlashAttn::On]
        );
        assert_eq!(
            expand::<KvType>(&parse(r#""q8_0""#)).unwrap(),
            vec![KvType::Q8_0]
        );
        assert_eq!(
            expand::<bool>(&parse("[true, false]")).unwrap(),
            vec![true, false]
        );
    }

    #[test]
    fn bad_axes_explain_themselves() {
        let err = |src: &str| expand::<u32>(&parse(src)).unwrap_err();
        assert!(err("[]").contains("empty axis"));
        assert!(err(r#""512""#).contains("found the string \"512\""));
        assert!(err("-1").contains("non-negative integer"));
        assert!(err("{ min = 4, max = 2 }").contains("greater than max"));
        assert!(err("{ min = 1, max = 8, step = 1, mul = 2 }").contains("not both"));
        assert!(err("{ min = 1, max = 8, mul = 1 }").contains("at least 2"));
        assert!(err("{ min = 1, max = 8, stride = 2 }").contains("unknown range key"));
        assert!(err("{ min = 1, max = 100000000 }").contains("more than"));
        assert!(err("{ max = 8 }").contains("needs both"));
        let e = expand::<bool>(&parse("{ min = 1, max = 2 }")).unwrap_err();
        assert!(e.contains("true or false"), "{e}");
        let e = expand::<KvType>(&parse(r#""q7""#)).unwrap_err();
        assert!(e.contains("KV-cache type"), "{e}");
    }
}
