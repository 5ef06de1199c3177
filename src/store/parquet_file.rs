//! results.parquet: the same rows as results.csv, typed, rewritten after every
//! trial through a temporary file and a rename, so a reader never sees a
//! half-written file.

use super::row::TrialRow;
use anyhow::Context;
use polars::prelude::{Column, DataFrame, ParquetReader, ParquetWriter, PlSmallStr, SerReader};
use serde_json::Value;
use std::path::Path;

fn as_object(row: &TrialRow) -> anyhow::Result<serde_json::Map<String, Value>> {
    match serde_json::to_value(row)? {
        Value::Object(map) => Ok(map),
        other => anyhow::bail!("row did not serialize to an object: {other:?}"),
    }
}

/// Builds a DataFrame with one column per row field, in field order. The
/// schema is fixed by the field types (integers Int64, other numbers Float64,
/// booleans, text), whatever the data: a column that happens to be empty keeps
/// its type, so results of different sweeps concatenate.
pub fn to_dataframe(rows: &[TrialRow]) -> anyhow::Result<DataFrame> {
    let objects: Vec<serde_json::Map<String, Value>> =
        rows.iter().map(as_object).collect::<anyhow::Result<_>>()?;
    let example = as_object(&super::csv_file::example_row())?;
    let mut columns = Vec::with_capacity(example.len());
    for (name, kind) in &example {
        let values: Vec<&Value> = objects
            .iter()
            .map(|o| o.get(name).unwrap_or(&Value::Null))
            .collect();
        columns.push(column(name, kind, &values));
    }
    DataFrame::new_infer_height(columns).context("cannot assemble the results table")
}

/// A column typed like `kind`, the example row's value.
fn column(name: &str, kind: &Value, values: &[&Value]) -> Column {
    let name = PlSmallStr::from(name);
    match kind {
        Value::Bool(_) => Column::new(name, values.iter().map(|v| v.as_bool()).collect::<Vec<_>>()),
        Value::Number(n) if n.is_f64() => {
            Column::new(name, values.iter().map(|v| v.as_f64()).collect::<Vec<_>>())
        }
        Value::Number(_) => {
            Column::new(name, values.iter().map(|v| v.as_i64()).collect::<Vec<_>>())
        }
        _ => Column::new(
            name,
            values
                .iter()
                .map(|v| match v {
                    Value::Null => None,
                    Value::String(s) => Some(s.clone()),
                    other => Some(other.to_string()),
                })
                .collect::<Vec<_>>(),
        ),
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
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    super::sync_parent(path)
}

/// Reads a results.parquet back (used by tests and tools).
pub fn read(path: &Path) -> anyhow::Result<DataFrame> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    ParquetReader::new(file)
        .finish()
        .with_context(|| format!("cannot read {}", path.display()))
}
