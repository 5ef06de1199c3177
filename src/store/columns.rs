//! The columns of results.csv and results.parquet, in order: the row's own
//! fields, with one column per knob of the parameter table after the
//! model's. Both files are written from this one list, so they always have
//! the same columns with the same types; reading looks columns up by name,
//! so a file written before a column existed reads with that column empty
//! (or, for a knob, with the value trials ran with then).

use super::depths::DepthStats;
use super::row::TrialRow;
use crate::knobs::{self, Domain, Knob, Value};
use crate::runner::TrialStatus;
use std::borrow::Cow;
use std::sync::OnceLock;

/// The type of a column's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Int,
    Float,
    Bool,
}

/// One value of a row, `None` when empty.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    Text(Option<Cow<'a, str>>),
    Int(Option<i64>),
    Float(Option<f64>),
    Bool(Option<bool>),
}

impl Cell<'_> {
    /// The cell's text in a CSV file (empty for no value).
    pub fn text(&self) -> Cow<'_, str> {
        match self {
            Cell::Text(t) => t.as_deref().map_or(Cow::Borrowed(""), Cow::Borrowed),
            Cell::Int(v) => v.map_or(Cow::Borrowed(""), |v| Cow::Owned(v.to_string())),
            Cell::Float(v) => v.map_or(Cow::Borrowed(""), |v| Cow::Owned(format!("{v:?}"))),
            Cell::Bool(v) => v.map_or(Cow::Borrowed(""), |v| Cow::Owned(v.to_string())),
        }
    }
}

/// A type a row field can have.
trait Field: Sized {
    const KIND: Kind;
    fn cell(&self) -> Cell<'_>;
    /// Reads the field from its cell text; `None` is an empty cell or a
    /// column the file does not have.
    fn from_text(text: Option<&str>) -> Result<Self, String>;
}

fn parse<T: std::str::FromStr>(text: Option<&str>) -> Result<T, String> {
    let text = text.ok_or("empty")?;
    text.trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))
}

fn parse_opt<T: std::str::FromStr>(text: Option<&str>) -> Result<Option<T>, String> {
    match text {
        None => Ok(None),
        Some("") => Ok(None),
        some => parse(some).map(Some),
    }
}

impl Field for String {
    const KIND: Kind = Kind::Text;
    fn cell(&self) -> Cell<'_> {
        Cell::Text(Some(Cow::Borrowed(self)))
    }
    fn from_text(text: Option<&str>) -> Result<Self, String> {
        Ok(text.unwrap_or_default().to_string())
    }
}

impl Field for Option<String> {
    const KIND: Kind = Kind::Text;
    fn cell(&self) -> Cell<'_> {
        Cell::Text(self.as_deref().map(Cow::Borrowed))
    }
    fn from_text(text: Option<&str>) -> Result<Self, String> {
        Ok(text.filter(|t| !t.is_empty()).map(str::to_string))
    }
}

macro_rules! int_field {
    ($($t:ty),*) => {$(
        impl Field for $t {
            const KIND: Kind = Kind::Int;
            fn cell(&self) -> Cell<'_> {
                Cell::Int(Some(*self as i64))
            }
            fn from_text(text: Option<&str>) -> Result<Self, String> {
                parse(text)
            }
        }
        impl Field for Option<$t> {
            const KIND: Kind = Kind::Int;
            fn cell(&self) -> Cell<'_> {
                Cell::Int(self.map(|v| v as i64))
            }
            fn from_text(text: Option<&str>) -> Result<Self, String> {
                parse_opt(text)
            }
        }
    )*};
}
int_field!(u32, i32, u64);

impl Field for f64 {
    const KIND: Kind = Kind::Float;
    fn cell(&self) -> Cell<'_> {
        Cell::Float(Some(*self))
    }
    fn from_text(text: Option<&str>) -> Result<Self, String> {
        parse(text)
    }
}

impl Field for Option<f64> {
    const KIND: Kind = Kind::Float;
    fn cell(&self) -> Cell<'_> {
        Cell::Float(*self)
    }
    fn from_text(text: Option<&str>) -> Result<Self, String> {
        parse_opt(text)
    }
}

impl Field for bool {
    const KIND: Kind = Kind::Bool;
    fn cell(&self) -> Cell<'_> {
        Cell::Bool(Some(*self))
    }
    fn from_text(text: Option<&str>) -> Result<Self, String> {
        parse(text)
    }
}

impl Field for Option<bool> {
    const KIND: Kind = Kind::Bool;
    fn cell(&self) -> Cell<'_> {
        Cell::Bool(*self)
    }
    fn from_text(text: Option<&str>) -> Result<Self, String> {
        parse_opt(text)
    }
}

impl Field for TrialStatus {
    const KIND: Kind = Kind::Text;
    fn cell(&self) -> Cell<'_> {
        Cell::Text(Some(Cow::Borrowed(self.name())))
    }
    fn from_text(text: Option<&str>) -> Result<Self, String> {
        let text = text.unwrap_or_default();
        TrialStatus::from_name(text).ok_or_else(|| format!("{text:?} is not a trial status"))
    }
}

impl Field for DepthStats {
    const KIND: Kind = Kind::Text;
    fn cell(&self) -> Cell<'_> {
        let text = self.to_cell();
        Cell::Text((!text.is_empty()).then_some(Cow::Owned(text)))
    }
    fn from_text(text: Option<&str>) -> Result<Self, String> {
        DepthStats::from_cell(text.unwrap_or_default())
    }
}

/// A column holding one field of the row.
pub struct FieldColumn {
    pub name: &'static str,
    pub kind: Kind,
    /// Whether a missing or empty cell is a value (an optional or text
    /// field) rather than a damaged row.
    pub may_be_empty: bool,
    get: fn(&TrialRow) -> Cell<'_>,
    set: fn(&mut TrialRow, Option<&str>) -> Result<(), String>,
}

fn describe<T: Field>(_: fn(&TrialRow) -> &T) -> (Kind, bool) {
    (T::KIND, T::from_text(None).is_ok())
}

macro_rules! fields {
    ($($field:ident),* $(,)?) => {
        vec![$({
            let (kind, may_be_empty) = describe(|r: &TrialRow| &r.$field);
            FieldColumn {
                name: stringify!($field),
                kind,
                may_be_empty,
                get: |r| Field::cell(&r.$field),
                set: |r, text| {
                    r.$field = Field::from_text(text)?;
                    Ok(())
                },
            }
        }),*]
    };
}

/// One column of results.csv and results.parquet.
pub enum Column {
    Field(FieldColumn),
    Knob(&'static Knob),
}

impl Column {
    pub fn name(&self) -> &'static str {
        match self {
            Column::Field(f) => f.name,
            Column::Knob(k) => k.name,
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Column::Field(f) => f.kind,
            Column::Knob(k) => match k.domain {
                Domain::Int { .. } => Kind::Int,
                Domain::Bool => Kind::Bool,
                Domain::Choice { .. } | Domain::Text { .. } => Kind::Text,
            },
        }
    }

    /// Whether this holds free text, which a spreadsheet could take for a
    /// formula (a knob's choice names cannot; tensor-override patterns can).
    pub fn is_free_text(&self) -> bool {
        match self {
            Column::Field(f) => f.kind == Kind::Text && f.name != "status",
            Column::Knob(k) => matches!(k.domain, Domain::Text { .. }),
        }
    }

    /// Whether a file may lack this column (it was added later).
    pub fn may_be_missing(&self) -> bool {
        match self {
            Column::Field(f) => f.may_be_empty,
            Column::Knob(k) => k.before.is_some(),
        }
    }

    pub fn cell<'a>(&self, row: &'a TrialRow) -> Cell<'a> {
        match self {
            Column::Field(f) => (f.get)(row),
            Column::Knob(k) => match row.params.get(k.id) {
                Value::Int(v) => Cell::Int(Some(*v)),
                Value::Bool(v) => Cell::Bool(Some(*v)),
                Value::Text(v) => Cell::Text(Some(Cow::Borrowed(v))),
            },
        }
    }

    /// Sets this column of `row` from its cell text (`None`: the file has
    /// no such column).
    pub fn set(&self, row: &mut TrialRow, text: Option<&str>) -> Result<(), String> {
        match self {
            Column::Field(f) => (f.set)(row, text).map_err(|e| format!("{}: {e}", f.name)),
            Column::Knob(k) => {
                let text = text.or(k.before).unwrap_or_default();
                let value = Value::from_cell(k, text)
                    .ok_or_else(|| format!("{}: {text:?} is not one of its values", k.name))?;
                row.params.set(k.id, value);
                Ok(())
            }
        }
    }
}

/// Every column, in file order.
pub fn columns() -> &'static [Column] {
    static COLUMNS: OnceLock<Vec<Column>> = OnceLock::new();
    COLUMNS.get_or_init(|| {
        let before = fields![
            trial_id,
            sweep,
            seq,
            status,
            error,
            exit,
            attempts,
            model_name,
            model_variant,
            model_path,
            model_identity,
            model_description,
            model_size_bytes,
            model_params,
        ];
        let after = fields![
            defaulted,
            forced,
            prompt_tokens,
            gen_tokens,
            repetitions,
            warmup,
            request_prompt_tokens,
            request_max_tokens,
            n_depth,
            request_history_tokens,
            request_tps_mean,
            request_tps_sd,
            tpot_ms_mean,
            output_tps_mean,
            output_tps_sd,
            pp_tps_mean,
            pp_tps_sd,
            tg_tps_mean,
            tg_tps_sd,
            ttft_ms_mean,
            ttft_ms_sd,
            e2e_ms_mean,
            e2e_ms_sd,
            aggregate_tps_mean,
            aggregate_tps_sd,
            ttft_ms_p50,
            ttft_ms_p95,
            itl_ms_p50,
            itl_ms_p95,
            n_samples,
            load_ms,
            peak_rss_mib,
            device_memory_mib,
            layers_offloaded,
            layers_total,
            n_ctx_actual,
            flash_attn_resolved,
            weights,
            overridden,
            feasible,
            violations,
            cv,
            noisy,
            drift,
            systematic,
            request_tps_samples,
            output_tps_samples,
            aggregate_tps_samples,
            pp_tps_samples,
            tg_tps_samples,
            ttft_ms_samples,
            e2e_ms_samples,
            at_depth,
            wall_s,
            started_at,
            finished_at,
            build,
            log_file,
            log_tail,
            ppl,
            ppl_increase_pct,
            kld,
            top1_pct,
            bytes_per_token,
            host,
            worker,
            machine_id,
            machine,
            runtime,
            server_tg_tps_mean,
            draft_acceptance,
            draft_tokens,
            goodput_rps_mean,
            busy_runs,
            other_cores_max,
        ];
        before
            .into_iter()
            .map(Column::Field)
            .chain(knobs::TABLE.iter().map(Column::Knob))
            .chain(after.into_iter().map(Column::Field))
            .collect()
    })
}

/// The column called `name`.
pub fn column(name: &str) -> Option<&'static Column> {
    columns().iter().find(|c| c.name() == name)
}

/// The names of every column, in file order: results.csv's header.
pub fn header() -> Vec<&'static str> {
    columns().iter().map(Column::name).collect()
}

/// A row to fill column by column: every field empty, every knob at a
/// placeholder until its column is read.
pub fn blank_row() -> TrialRow {
    TrialRow::default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::mock;
    use crate::test_support::row;

    #[test]
    fn every_column_round_trips_through_its_text() {
        let mut r = row("abc", &mock::measured(100.0, 400.0));
        r.error = Some("a \"quoted\" reason".into());
        r.flash_attn_resolved = Some(true);
        r.kld = Some(0.012_345_678_9);
        r.params.set(knobs::N_GPU_LAYERS, Value::Int(-1));
        let mut back = blank_row();
        for c in columns() {
            let text = c.cell(&r).text().into_owned();
            let text = (!text.is_empty()).then_some(text);
            c.set(&mut back, text.as_deref()).unwrap();
        }
        assert_eq!(back, r);
    }

    #[test]
    fn the_knob_columns_follow_the_model_columns() {
        let header = header();
        let first = header.iter().position(|h| *h == "model_params").unwrap() + 1;
        let knob_names: Vec<&str> = knobs::names().collect();
        assert_eq!(&header[first..first + knob_names.len()], &knob_names[..]);
        let mut unique = header.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), header.len());
    }

    #[test]
    fn only_optional_fields_and_later_knobs_may_be_missing() {
        let missing: Vec<&str> = columns()
            .iter()
            .filter(|c| c.may_be_missing() && c.kind() != Kind::Text)
            .map(Column::name)
            .collect();
        for name in ["kld", "bytes_per_token", "tg_tps_mean"] {
            assert!(missing.contains(&name), "{name}: {missing:?}");
        }
        for name in ["seq", "n_ctx", "feasible", "wall_s"] {
            assert!(!missing.contains(&name), "{name}: {missing:?}");
        }
    }
}
