//! results.parquet: the same rows as results.csv, typed, rewritten after every
//! trial through a temporary file and a rename, so a reader never sees a
//! half-written file.

use super::row::TrialRow;
use anyhow::Context;
use polars::prelude::{Column, DataFrame, ParquetReader, ParquetWriter, PlSmallStr, SerReader};
use serde_json::Value;
use std::path::Path;

/// Builds a DataFrame with one column per row field, in field order: integers
/// as Int64, other numbers as Float64, booleans, and text.
pub fn to_dataframe(rows: &[TrialRow]) -> anyhow::Result<DataFrame> {
    let objects: Vec<serde_json::Map<String, Value>> = rows
        .iter()
        .map(|row| match serde_json::to_value(row) {
            Ok(Value::Object(map)) => Ok(map),
            other => anyhow::bail!("row did not serialize to an object: {other:?}"),
        })
        .collect::<anyhow::Result<_>>()?;
    let names: Vec<String> = super::csv_file::header();
    let mut columns = Vec::with_capacity(names.len());
    for name in &names {
        let values: Vec<&Value> = objects
            .iter()
            .map(|o| o.get(name).unwrap_or(&Value::Null))
            .collect();
        columns.push(column(name, &values));
    }
    DataFrame::new_infer_height(columns).context("cannot assemble the results table")
}

fn column(name: &str, values: &[&Value]) -> Column {
    let present = || values.iter().filter(|v| !v.is_null());
    let name = PlSmallStr::from(name);
    if present().next().is_some() && present().all(|v| v.is_boolean()) {
        let data: Vec<Option<bool>> = values.iter().map(|v| v.as_bool()).collect();
        Column::new(name, data)
    } else if present().next().is_some() && present().all(|v| v.is_i64() || v.is_u64()) {
        let data: Vec<Option<i64>> = values.iter().map(|v| v.as_i64()).collect();
        Column::new(name, data)
    } else if present().next().is_some() && present().all(|v| v.is_number()) {
        let data: Vec<Option<f64>> = values.iter().map(|v| v.as_f64()).collect();
        Column::new(name, data)
    } else {
        let data: Vec<Option<String>> = values
            .iter()
            .map(|v| match v {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                other => Some(other.to_string()),
            })
            .collect();
        Column::new(name, data)
    }
}

/// Writes all rows to `path` atomically.
pub fn write(path: &Path, rows: &[TrialRow]) -> anyhow::Result<()> {
    let mut df = to_dataframe(rows)?;
    let tmp = path.with_extension("parquet.tmp");
    {
        let file = std::fs::File::create(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        ParquetWriter::new(&file)
            .finish(&mut df)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        file.sync_all()
            .with_context(|| format!("cannot sync {}", tmp.display()))?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))
}

/// Reads a results.parquet back (used by tests and tools).
pub fn read(path: &Path) -> anyhow::Result<DataFrame> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    ParquetReader::new(file)
        .finish()
        .with_context(|| format!("cannot read {}", path.display()))
}
