//! results.parquet: the same rows as results.csv, typed, rewritten after every
//! trial through a temporary file and a rename, so a reader never sees a
//! half-written file.

use super::row::TrialRow;
use anyhow::Context;
use polars::prelude::{Column, DataFrame, ParquetReader, ParquetWriter, SerReader};
use std::path::Path;

/// One typed column per row field, in field order.
macro_rules! columns {
    ($rows:expr; $($field:ident: $kind:ident),* $(,)?) => {
        vec![$(columns!(@column $rows, $field, $kind)),*]
    };
    (@column $rows:expr, $field:ident, text) => {
        Column::new(stringify!($field).into(), $rows.iter().map(|r| r.$field.as_str()).collect::<Vec<&str>>())
    };
    (@column $rows:expr, $field:ident, opt_text) => {
        Column::new(stringify!($field).into(), $rows.iter().map(|r| r.$field.as_deref()).collect::<Vec<Option<&str>>>())
    };
    (@column $rows:expr, $field:ident, name) => {
        Column::new(stringify!($field).into(), $rows.iter().map(|r| r.$field.name()).collect::<Vec<&str>>())
    };
    (@column $rows:expr, $field:ident, int) => {
        Column::new(stringify!($field).into(), $rows.iter().map(|r| r.$field as i64).collect::<Vec<i64>>())
    };
    (@column $rows:expr, $field:ident, opt_int) => {
        Column::new(stringify!($field).into(), $rows.iter().map(|r| r.$field.map(|v| v as i64)).collect::<Vec<Option<i64>>>())
    };
    (@column $rows:expr, $field:ident, float) => {
        Column::new(stringify!($field).into(), $rows.iter().map(|r| r.$field).collect::<Vec<f64>>())
    };
    (@column $rows:expr, $field:ident, opt_float) => {
        Column::new(stringify!($field).into(), $rows.iter().map(|r| r.$field).collect::<Vec<Option<f64>>>())
    };
    (@column $rows:expr, $field:ident, boolean) => {
        Column::new(stringify!($field).into(), $rows.iter().map(|r| r.$field).collect::<Vec<bool>>())
    };
    (@column $rows:expr, $field:ident, opt_boolean) => {
        Column::new(stringify!($field).into(), $rows.iter().map(|r| r.$field).collect::<Vec<Option<bool>>>())
    };
}

/// Builds a DataFrame with one column per row field, in field order. The
/// schema is fixed by the field types (integers Int64, other numbers
/// Float64, booleans, text), whatever the data: a column that happens to be
/// empty keeps its type, so results of different sweeps concatenate.
pub fn to_dataframe(rows: &[TrialRow]) -> anyhow::Result<DataFrame> {
    let columns = columns!(rows;
        trial_id: text, sweep: text, seq: int, status: name, error: opt_text, exit: opt_text,
        attempts: int, model_name: text, model_variant: text, model_path: text,
        model_identity: text, model_description: opt_text, model_size_bytes: opt_int,
        model_params: opt_int, n_gpu_layers: int, n_ctx: int, n_batch: int, n_ubatch: int,
        n_threads: int, n_threads_batch: int, flash_attn: name, type_k: name, type_v: name,
        use_mmap: boolean, offload_kqv: boolean, defaulted: text, prompt_tokens: int,
        gen_tokens: int, repetitions: int, warmup: int, request_prompt_tokens: int,
        request_max_tokens: int, pp_tps_mean: opt_float, pp_tps_sd: opt_float,
        tg_tps_mean: opt_float, tg_tps_sd: opt_float, ttft_ms_mean: opt_float,
        ttft_ms_sd: opt_float, e2e_ms_mean: opt_float, e2e_ms_sd: opt_float, n_samples: opt_int,
        load_ms: opt_float, peak_rss_mib: opt_float, device_memory_mib: opt_float,
        layers_offloaded: opt_int, layers_total: opt_int, n_ctx_actual: opt_int,
        flash_attn_resolved: opt_boolean, feasible: boolean, violations: opt_text, cv: opt_float,
        noisy: boolean, drift: text, pp_tps_samples: text, tg_tps_samples: text,
        ttft_ms_samples: text, e2e_ms_samples: text, wall_s: float, started_at: text,
        finished_at: text, build: text, log_file: text, log_tail: text, ppl: opt_float,
        ppl_increase_pct: opt_float, kld: opt_float, top1_pct: opt_float, bytes_per_token: opt_int,
    );
    DataFrame::new_infer_height(columns).context("cannot assemble the results table")
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

    #[test]
    fn columns_are_the_csv_columns_in_the_same_order() {
        let df = to_dataframe(&[super::super::csv_file::example_row()]).unwrap();
        let names: Vec<String> = df
            .get_column_names()
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(names, super::super::csv_file::header());
    }
}
