//! One axis of the search space as written in sweep.toml: a single value, a
//! list, or a numeric range `{ min, max, step }` / `{ min, max, mul }`,
//! expanded into the list of values it stands for and checked against the
//! knob's domain in the parameter table.

use crate::knobs::{Alias, Domain, Knob, Value};
use toml::Value as Toml;

/// Ranges longer than this are almost certainly a typo (a missing `mul`).
const MAX_AXIS_VALUES: i64 = 4096;

/// What a single value of `domain` looks like, for error messages.
fn expected(domain: &Domain) -> String {
    match domain {
        Domain::Int { min, .. } if *min >= 0 => "a non-negative integer".into(),
        Domain::Int { .. } => "an integer".into(),
        Domain::Bool => "true or false".into(),
        Domain::Choice { names, .. } => {
            let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
            match quoted.split_last() {
                Some((last, rest)) if !rest.is_empty() => {
                    format!("one of {} or {last}", rest.join(", "))
                }
                _ => quoted.join(""),
            }
        }
        Domain::Text { expected, .. } => expected.to_string(),
    }
}

/// A scalar's text as a text knob reads it (a number of a tensor split).
fn scalar_text(value: &Toml) -> Option<String> {
    match value {
        Toml::String(s) => Some(s.clone()),
        Toml::Integer(i) => Some(i.to_string()),
        Toml::Float(f) => Some(f.to_string()),
        _ => None,
    }
}

/// One value of a text knob: a string, a number, or a list of them joined
/// with commas (a tensor split `[3, 1]`, override rules `["a=CPU", "b=CPU"]`
/// as one value).
fn text_value(read: fn(&str) -> Result<String, String>, value: &Toml) -> Result<Value, String> {
    let text = match value {
        Toml::Array(items) => items
            .iter()
            .map(|item| scalar_text(item).ok_or(()))
            .collect::<Result<Vec<_>, ()>>()
            .map(|parts| parts.join(","))
            .map_err(|()| "a list inside a value holds only strings and numbers".to_string())?,
        other => scalar_text(other).ok_or_else(|| format!("found {}", describe(other)))?,
    };
    read(&text).map(Value::Text)
}

/// The values of a text knob's axis: a list of lists (or of strings) is one
/// value per item; a list of numbers, a string or a number is one value.
fn text_values(knob: &Knob, value: &Toml) -> Result<Vec<Value>, String> {
    let Domain::Text { read, expected } = knob.domain else {
        unreachable!("only text knobs")
    };
    let one = |v: &Toml| text_value(read, v).map_err(|e| format!("expected {expected}: {e}"));
    match value {
        Toml::Array(items)
            if !items.is_empty()
                && items
                    .iter()
                    .all(|i| matches!(i, Toml::Array(_) | Toml::String(_))) =>
        {
            items.iter().map(one).collect()
        }
        other => Ok(vec![one(other)?]),
    }
}

/// Expands an axis written with a knob's old name (`use_mmap = [true,
/// false]`) into the values of the knob that replaced it.
pub fn expand_alias(alias: &Alias, value: &Toml) -> Result<Vec<Value>, String> {
    let one = |item: &Toml| {
        let old = match item {
            Toml::Boolean(b) => b.to_string(),
            other => format!("{other}"),
        };
        alias
            .translate(&old)
            .ok_or_else(|| format!("{}; found {}", alias.describe(), describe(item)))
    };
    let values = match value {
        Toml::Array(items) => items.iter().map(one).collect::<Result<Vec<_>, _>>()?,
        single => vec![one(single)?],
    };
    if values.is_empty() {
        return Err("empty axis: give at least one value".into());
    }
    Ok(values)
}

/// One value of `knob`, without its range check.
fn single(knob: &Knob, value: &Toml) -> Option<Value> {
    match (knob.domain, value) {
        (Domain::Int { .. }, Toml::Integer(i)) => Some(Value::Int(*i)),
        (Domain::Bool, Toml::Boolean(b)) => Some(Value::Bool(*b)),
        (Domain::Choice { names, .. }, Toml::String(s)) => names
            .iter()
            .find(|n| n.eq_ignore_ascii_case(s))
            .map(|n| Value::Text(n.to_string())),
        (
            Domain::Choice {
                from_bool: Some((yes, no)),
                ..
            },
            Toml::Boolean(b),
        ) => Some(Value::Text(if *b { yes } else { no }.to_string())),
        _ => None,
    }
}

/// Expands an axis value of `knob` into its list of values. The error is a
/// message without the key (the caller adds it).
pub fn expand(knob: &Knob, value: &Toml) -> Result<Vec<Value>, String> {
    let ranges = matches!(knob.domain, Domain::Int { .. });
    let one = |item: &Toml| single(knob, item).ok_or_else(|| wrong_type(knob, item));
    let values = match value {
        _ if matches!(knob.domain, Domain::Text { .. }) => text_values(knob, value)?,
        Toml::Array(items) => items.iter().map(one).collect::<Result<Vec<_>, _>>()?,
        Toml::Table(table) if ranges => expand_range(table)?.into_iter().map(Value::Int).collect(),
        single_value => vec![one(single_value)?],
    };
    if values.is_empty() {
        return Err(
            "empty axis: give at least one value, or remove the key to keep llama.cpp's default"
                .into(),
        );
    }
    let mut unique = Vec::with_capacity(values.len());
    for v in values {
        if let (Domain::Int { min, max, meaning }, Value::Int(i)) = (knob.domain, &v) {
            if !(min..=max).contains(i) {
                return Err(format!("{i} is out of range: {meaning}"));
            }
        }
        if !unique.contains(&v) {
            unique.push(v);
        }
    }
    Ok(unique)
}

fn wrong_type(knob: &Knob, found: &Toml) -> String {
    let shape = if matches!(knob.domain, Domain::Int { .. }) {
        ", a list of them, or a range { min, max, step } / { min, max, mul }"
    } else {
        " or a list of them"
    };
    format!(
        "expected {}{shape}; found {}",
        expected(&knob.domain),
        describe(found)
    )
}

fn describe(value: &Toml) -> String {
    match value {
        Toml::String(s) => format!("the string {s:?}"),
        Toml::Integer(i) => format!("the integer {i}"),
        Toml::Float(f) => format!("the number {f}"),
        Toml::Boolean(b) => format!("the boolean {b}"),
        Toml::Datetime(d) => format!("the date {d}"),
        Toml::Array(_) => "a list".into(),
        Toml::Table(_) => "a table".into(),
    }
}

fn expand_range(table: &toml::Table) -> Result<Vec<i64>, String> {
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
            Some(Toml::Integer(i)) => Ok(Some(*i)),
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
    let mut values = Vec::new();
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
                values.push(v);
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
            values.extend((min..=max).step_by(step as usize));
        }
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knobs::{FLASH_ATTN, KnobId, N_BATCH, N_GPU_LAYERS, OFFLOAD_KQV, TYPE_K};

    fn parse(src: &str) -> Toml {
        let table: toml::Table = toml::from_str(&format!("v = {src}")).unwrap();
        table["v"].clone()
    }

    fn ints(knob: KnobId, src: &str) -> Result<Vec<i64>, String> {
        expand(knob.knob(), &parse(src)).map(|v| v.iter().map(|v| v.as_int().unwrap()).collect())
    }

    fn names(knob: KnobId, src: &str) -> Result<Vec<String>, String> {
        expand(knob.knob(), &parse(src)).map(|v| v.iter().map(|v| v.to_string()).collect())
    }

    #[test]
    fn single_list_and_ranges() {
        assert_eq!(ints(N_BATCH, "512").unwrap(), vec![512]);
        assert_eq!(ints(N_BATCH, "[512, 1024]").unwrap(), vec![512, 1024]);
        assert_eq!(
            ints(N_BATCH, "{ min = 512, max = 2048, mul = 2 }").unwrap(),
            vec![512, 1024, 2048]
        );
        assert_eq!(
            ints(N_BATCH, "{ min = 1024, max = 4096, step = 1024 }").unwrap(),
            vec![1024, 2048, 3072, 4096]
        );
        assert_eq!(
            ints(N_GPU_LAYERS, "{ min = -1, max = 1 }").unwrap(),
            vec![-1, 0, 1]
        );
    }

    #[test]
    fn range_stops_at_max_even_when_step_overshoots() {
        assert_eq!(
            ints(N_BATCH, "{ min = 1, max = 10, step = 4 }").unwrap(),
            vec![1, 5, 9]
        );
        assert_eq!(
            ints(N_BATCH, "{ min = 3, max = 20, mul = 2 }").unwrap(),
            vec![3, 6, 12]
        );
    }

    #[test]
    fn duplicates_are_removed_in_order() {
        assert_eq!(ints(N_BATCH, "[2, 1, 2]").unwrap(), vec![2, 1]);
    }

    #[test]
    fn choices_and_booleans() {
        assert_eq!(
            names(FLASH_ATTN, r#"["on", "OFF", "auto"]"#).unwrap(),
            ["on", "off", "auto"]
        );
        assert_eq!(names(FLASH_ATTN, "true").unwrap(), ["on"]);
        assert_eq!(names(TYPE_K, r#""Q8_0""#).unwrap(), ["q8_0"]);
        assert_eq!(
            names(OFFLOAD_KQV, "[true, false]").unwrap(),
            ["true", "false"]
        );
    }

    #[test]
    fn bad_axes_explain_themselves() {
        let err = |src: &str| ints(N_BATCH, src).unwrap_err();
        assert!(err("[]").contains("empty axis"));
        assert!(err(r#""512""#).contains("found the string \"512\""));
        assert!(err("-1").contains("must be at least 1"));
        assert!(err("{ min = 4, max = 2 }").contains("greater than max"));
        assert!(err("{ min = 1, max = 8, step = 1, mul = 2 }").contains("not both"));
        assert!(err("{ min = 1, max = 8, mul = 1 }").contains("at least 2"));
        assert!(err("{ min = 1, max = 8, stride = 2 }").contains("unknown range key"));
        assert!(err("{ min = 1, max = 100000000 }").contains("more than"));
        assert!(err("{ max = 8 }").contains("needs both"));
        let e = ints(N_GPU_LAYERS, "-2").unwrap_err();
        assert!(e.contains("use -1 for all layers"), "{e}");
        let e = names(OFFLOAD_KQV, "{ min = 1, max = 2 }").unwrap_err();
        assert!(e.contains("true or false"), "{e}");
        let e = names(TYPE_K, r#""q7""#).unwrap_err();
        assert!(e.contains("\"q8_0\"") && e.contains("or \"q5_1\""), "{e}");
    }
}
