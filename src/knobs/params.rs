//! A trial's knob settings. [`Params`] holds the knobs a trial sets (an
//! unset knob keeps llama.cpp's default and is left out of its JSON, so a
//! knob added later does not change the ids of existing trials);
//! [`EffectiveParams`] holds every knob, once llama.cpp's defaults are
//! filled in: what the trial really ran with.

use super::choices::{FlashAttn, KvType};
use super::{Domain, FLASH_ATTN, KnobId, TABLE, Value, by_name};
use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;

/// The knobs a trial sets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Params(BTreeMap<KnobId, Value>);

/// Every knob with the value a trial ran with.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EffectiveParams(BTreeMap<KnobId, Value>);

/// llama.cpp clamps a value to its limit (n_batch to n_ctx, at least 1).
fn clamp(value: &Value, limit: &Value) -> Value {
    match (value, limit) {
        (Value::Int(v), Value::Int(limit)) => Value::Int((*v).min((*limit).max(1))),
        _ => value.clone(),
    }
}

impl Params {
    pub fn get(&self, knob: KnobId) -> Option<&Value> {
        self.0.get(&knob)
    }

    pub fn is_set(&self, knob: KnobId) -> bool {
        self.0.contains_key(&knob)
    }

    pub fn set(&mut self, knob: KnobId, value: Value) {
        self.0.insert(knob, value);
    }

    /// `self` with `knob` set to `value`.
    pub fn with(mut self, knob: KnobId, value: Value) -> Params {
        self.set(knob, value);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The set knobs, in table order.
    pub fn iter(&self) -> impl Iterator<Item = (KnobId, &Value)> {
        self.0.iter().map(|(k, v)| (*k, v))
    }

    pub fn int(&self, knob: KnobId) -> Option<i64> {
        self.get(knob).and_then(Value::as_int)
    }

    pub fn flag(&self, knob: KnobId) -> Option<bool> {
        self.get(knob).and_then(Value::as_bool)
    }

    pub fn text(&self, knob: KnobId) -> Option<&str> {
        self.get(knob).and_then(Value::as_str)
    }

    pub fn flash_attn(&self) -> Option<FlashAttn> {
        self.text(FLASH_ATTN).and_then(FlashAttn::from_name)
    }

    pub fn kv_type(&self, knob: KnobId) -> Option<KvType> {
        self.text(knob).and_then(KvType::from_name)
    }

    /// `self` with `knobs` unset.
    pub fn without(mut self, knobs: &[KnobId]) -> Params {
        for knob in knobs {
            self.0.remove(knob);
        }
        self
    }

    /// `self` with every knob of `over` set as `over` has it.
    pub fn overlaid(&self, over: &Params) -> Params {
        let mut out = self.clone();
        out.0.extend(over.0.iter().map(|(k, v)| (*k, v.clone())));
        out
    }

    /// The values llama.cpp would really use where a knob and its limit are
    /// both set: the key two settings share when they are the same trial.
    pub fn clamped(&self) -> Params {
        let mut out = self.clone();
        for knob in TABLE {
            if let Some(limit) = knob.at_most.and_then(|l| out.get(l).cloned()) {
                if let Some(v) = out.0.get_mut(&knob.id) {
                    *v = clamp(v, &limit);
                }
            }
        }
        out
    }

    /// Fills unset knobs from llama.cpp's `defaults`: a knob that follows
    /// another takes that one's value when only that one is set, as
    /// llama-bench does (n_threads_batch follows n_threads), and values are
    /// clamped as llama.cpp clamps them (n_batch to n_ctx, n_ubatch to
    /// n_batch). Returns the effective values and the names of the knobs
    /// left at llama.cpp's default.
    pub fn resolve(&self, defaults: &EffectiveParams) -> (EffectiveParams, Vec<&'static str>) {
        let mut defaulted = Vec::new();
        let mut values = BTreeMap::new();
        for knob in TABLE {
            let value = match (self.get(knob.id), knob.follows.and_then(|f| self.get(f))) {
                (Some(v), _) | (None, Some(v)) => v.clone(),
                (None, None) => {
                    defaulted.push(knob.name);
                    defaults.get(knob.id).clone()
                }
            };
            let value = match knob.at_most.and_then(|l| values.get(&l)) {
                Some(limit) => clamp(&value, limit),
                None => value,
            };
            values.insert(knob.id, value);
        }
        defaulted.sort_unstable();
        (EffectiveParams(values), defaulted)
    }
}

/// `repack=false flash_attn=off`: the set knobs, in table order.
impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (knob, value)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{knob}={value}")?;
        }
        Ok(())
    }
}

impl FromIterator<(KnobId, Value)> for Params {
    fn from_iter<I: IntoIterator<Item = (KnobId, Value)>>(iter: I) -> Params {
        Params(iter.into_iter().collect())
    }
}

/// Placeholders for building a row column by column: the value trials ran
/// with before a knob existed, else the knob's smallest value.
impl Default for EffectiveParams {
    fn default() -> EffectiveParams {
        let values = TABLE
            .iter()
            .map(|k| {
                if let Some(before) = k.before.and_then(|text| Value::from_cell(k, text)) {
                    return (k.id, before);
                }
                let value = match k.domain {
                    Domain::Int { min, .. } => Value::Int(min),
                    Domain::Bool => Value::Bool(false),
                    Domain::Choice { names, .. } => Value::Text(names[0].to_string()),
                    Domain::Text { read, .. } => Value::Text(read("").unwrap_or_default()),
                };
                (k.id, value)
            })
            .collect();
        EffectiveParams(values)
    }
}

impl EffectiveParams {
    /// Every knob's value from `values`, or the first knob it lacks.
    pub fn complete(values: Params) -> Result<EffectiveParams, &'static str> {
        match TABLE.iter().find(|k| !values.is_set(k.id)) {
            Some(missing) => Err(missing.name),
            None => Ok(EffectiveParams(values.0)),
        }
    }

    pub fn get(&self, knob: KnobId) -> &Value {
        self.0
            .get(&knob)
            .expect("effective parameters hold every knob")
    }

    pub fn set(&mut self, knob: KnobId, value: Value) {
        self.0.insert(knob, value);
    }

    pub fn int(&self, knob: KnobId) -> i64 {
        self.get(knob).as_int().unwrap_or_default()
    }

    pub fn flag(&self, knob: KnobId) -> bool {
        self.get(knob).as_bool().unwrap_or_default()
    }

    pub fn text(&self, knob: KnobId) -> &str {
        self.get(knob).as_str().unwrap_or_default()
    }

    pub fn flash_attn(&self) -> FlashAttn {
        FlashAttn::from_name(self.text(FLASH_ATTN)).unwrap_or(FlashAttn::Auto)
    }

    pub fn kv_type(&self, knob: KnobId) -> KvType {
        KvType::from_name(self.text(knob)).unwrap_or(KvType::F16)
    }

    /// Every knob, in table order.
    pub fn iter(&self) -> impl Iterator<Item = (KnobId, &Value)> {
        self.0.iter().map(|(k, v)| (*k, v))
    }

    /// The same values as settings of a trial.
    pub fn to_params(&self) -> Params {
        Params(self.0.clone())
    }
}

fn serialize_map<S: Serializer>(
    values: &BTreeMap<KnobId, Value>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(values.len()))?;
    for (knob, value) in values {
        map.serialize_entry(knob.name(), value)?;
    }
    map.end()
}

impl Serialize for Params {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_map(&self.0, serializer)
    }
}

impl Serialize for EffectiveParams {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_map(&self.0, serializer)
    }
}

/// Reads a map of knob names to values. `strict`: an unknown name is an
/// error (a trial's settings); otherwise it is skipped (the knob columns of
/// a row, which share the row's map with its other columns).
struct KnobMap {
    strict: bool,
}

impl<'de> Visitor<'de> for KnobMap {
    type Value = BTreeMap<KnobId, Value>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map of llama.cpp parameters to their values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut values = BTreeMap::new();
        while let Some(name) = map.next_key::<String>()? {
            if let Some(alias) = super::alias(&name) {
                let old: Value = map.next_value()?;
                let value = alias.translate(&old.to_string()).ok_or_else(|| {
                    de::Error::custom(format!("{old} is not a value of {}", alias.name))
                })?;
                values.entry(alias.knob).or_insert(value);
                continue;
            }
            let Some(knob) = by_name(&name) else {
                if self.strict {
                    return Err(de::Error::unknown_field(&name, known_names()));
                }
                map.next_value::<de::IgnoredAny>()?;
                continue;
            };
            let value: Value = map.next_value()?;
            if !value.fits(knob) {
                return Err(de::Error::custom(format!(
                    "{value} is not a value of {}",
                    knob.name
                )));
            }
            values.insert(knob.id, value);
        }
        Ok(values)
    }
}

/// The table's names as the `'static` list `unknown_field` wants.
fn known_names() -> &'static [&'static str] {
    static NAMES: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| super::names().collect())
}

impl<'de> Deserialize<'de> for Params {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Params, D::Error> {
        deserializer
            .deserialize_map(KnobMap { strict: true })
            .map(Params)
    }
}

impl<'de> Deserialize<'de> for EffectiveParams {
    /// A knob missing from the map (a row or manifest written before the
    /// knob existed) takes the value trials ran with then.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<EffectiveParams, D::Error> {
        let mut values = deserializer.deserialize_map(KnobMap { strict: false })?;
        for knob in TABLE {
            if values.contains_key(&knob.id) {
                continue;
            }
            let before = knob
                .before
                .and_then(|text| Value::from_cell(knob, text))
                .ok_or_else(|| de::Error::missing_field(knob.name))?;
            values.insert(knob.id, before);
        }
        Ok(EffectiveParams(values))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knobs::{N_BATCH, N_CTX, N_THREADS, N_THREADS_BATCH, N_UBATCH};

    fn defaults() -> EffectiveParams {
        crate::test_support::defaults()
    }

    #[test]
    fn unset_knobs_take_defaults_and_are_named() {
        let params = Params::default().with(N_BATCH, Value::Int(256));
        let (eff, defaulted) = params.resolve(&defaults());
        assert_eq!(eff.int(N_BATCH), 256);
        assert_eq!(eff.int(N_CTX), 512);
        assert_eq!(
            eff.int(N_UBATCH),
            256,
            "the default n_ubatch is clamped to n_batch"
        );
        assert!(!defaulted.contains(&"n_batch"));
        assert!(defaulted.contains(&"n_ctx"));
        assert_eq!(defaulted.len(), TABLE.len() - 1);
    }

    #[test]
    fn batch_sizes_are_clamped_like_llama_cpp_does() {
        let params = Params::default()
            .with(N_CTX, Value::Int(256))
            .with(N_BATCH, Value::Int(1024));
        let (eff, _) = params.resolve(&defaults());
        assert_eq!((eff.int(N_BATCH), eff.int(N_UBATCH)), (256, 256));
        assert_eq!(params.clamped().int(N_BATCH), Some(256));
        assert_eq!(params.clamped().int(N_UBATCH), None, "unset stays unset");
    }

    #[test]
    fn threads_batch_follows_threads() {
        let params = Params::default().with(N_THREADS, Value::Int(2));
        let (eff, defaulted) = params.resolve(&defaults());
        assert_eq!((eff.int(N_THREADS), eff.int(N_THREADS_BATCH)), (2, 2));
        assert!(!defaulted.contains(&"n_threads_batch"));
    }

    #[test]
    fn unset_knobs_are_omitted_from_json_in_table_order() {
        let params = Params::default()
            .with(N_THREADS, Value::Int(2))
            .with(N_CTX, Value::Int(2048));
        let json = serde_json::to_string(&params).unwrap();
        assert_eq!(json, r#"{"n_ctx":2048,"n_threads":2}"#);
        assert_eq!(serde_json::from_str::<Params>(&json).unwrap(), params);
        let e = serde_json::from_str::<Params>(r#"{"n_ctxx":1}"#).unwrap_err();
        assert!(e.to_string().contains("n_ctxx"), "{e}");
        let e = serde_json::from_str::<Params>(r#"{"n_ctx":"big"}"#).unwrap_err();
        assert!(e.to_string().contains("n_ctx"), "{e}");
    }

    #[test]
    fn effective_params_round_trip_and_fill_knobs_added_later() {
        let eff = defaults();
        let json = serde_json::to_value(&eff).unwrap();
        assert_eq!(
            serde_json::from_value::<EffectiveParams>(json.clone()).unwrap(),
            eff
        );
        let mut older = json.as_object().unwrap().clone();
        let later: Vec<&crate::knobs::Knob> = TABLE.iter().filter(|k| k.before.is_some()).collect();
        for knob in &later {
            older.remove(knob.name);
        }
        older.insert("not_a_knob".into(), serde_json::json!(1));
        let back: EffectiveParams = serde_json::from_value(older.into()).unwrap();
        for knob in later {
            assert_eq!(
                Some(back.get(knob.id).clone()),
                Value::from_cell(knob, knob.before.unwrap())
            );
        }
    }
}
