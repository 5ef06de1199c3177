//! results.parquet: the same rows as results.csv, typed, rewritten after every
//! trial through a temporary file and a rename, so a reader never sees a
//! half-written file.

use super::columns::{self, Cell, Kind};
use super::row::TrialRow;
use anyhow::Context;
use polars::prelude::{Column, DataFrame, ParquetReader, ParquetWriter, SerReader};
use std::path::Path;

/// Builds a DataFrame with one column per results.csv column, in order.
/// The schema is fixed by the column kinds (integers Int64, other numbers
/// Float64, booleans, text), whatever the data: a column that happens to be
/// empty keeps its type, so results of different sweeps concatenate.
pub fn to_dataframe(rows: &[TrialRow]) -> anyhow::Result<DataFrame> {
    let frame_columns: Vec<Column> = columns::columns()
        .iter()
        .map(|c| {
            let name = c.name().into();
            let cells = rows.iter().map(|r| c.cell(r));
            match c.kind() {
                Kind::Text => Column::new(
                    name,
                    cells
                        .map(|cell| match cell {
                            Cell::Text(t) => t.map(|t| t.into_owned()),
                            _ => None,
                        })
                        .collect::<Vec<Option<String>>>(),
                ),
                Kind::Int => Column::new(
                    name,
                    cells
                        .map(|cell| match cell {
                            Cell::Int(v) => v,
                            _ => None,
                        })
                        .collect::<Vec<Option<i64>>>(),
                ),
                Kind::Float => Column::new(
                    name,
                    cells
                        .map(|cell| match cell {
                            Cell::Float(v) => v,
                            _ => None,
                        })
                        .collect::<Vec<Option<f64>>>(),
                ),
                Kind::Bool => Column::new(
                    name,
                    cells
                        .map(|cell| match cell {
                            Cell::Bool(v) => v,
                            _ => None,
                        })
                        .collect::<Vec<Option<bool>>>(),
                ),
            }
        })
        .collect();
    DataFrame::new_infer_height(frame_columns).context("cannot assemble the results table")
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::mock;

    #[test]
    fn columns_are_the_csv_columns_in_the_same_order() {
        let df = to_dataframe(&[crate::test_support::row("a", &mock::measured(1.0, 2.0))]).unwrap();
        let names: Vec<String> = df
            .get_column_names()
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(names, super::super::csv_file::header());
    }
}
