//! Errors in a sweep.toml, reported with the file, the key path and the line.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A problem with the sweep description. Always exits with code 2 and writes
/// nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based line and column, where known.
    pub location: Option<(usize, usize)>,
    /// Dotted key path, e.g. `space.n_ubatch`, where known.
    pub key: Option<String>,
    pub message: String,
}

impl ConfigError {
    pub fn new(file: &Path, key: Option<&str>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: file.to_path_buf(),
            location: None,
            key: key.map(str::to_string),
            message: message.into(),
        }
    }

    /// Attaches the line and column of a byte span of the source text.
    pub fn at(mut self, source: &str, span: Option<Range<usize>>) -> ConfigError {
        if let Some(span) = span {
            self.location = Some(line_col(source, span.start));
        }
        self
    }
}

/// 1-based line and column of a byte offset.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, col)) = self.location {
            write!(f, ":{line}:{col}")?;
        }
        write!(f, ": ")?;
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// The closest candidate to `word` by edit distance, if it is close enough to
/// be a plausible typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let word_lower = word.to_ascii_lowercase();
    // A word that extends a candidate (`bayesian` for `bayes`) is as close
    // as a one-letter typo.
    let distance = |c: &str| {
        let c = c.to_ascii_lowercase();
        let shorter = c.len().min(word_lower.len());
        if shorter >= 4 && (word_lower.starts_with(&c) || c.starts_with(&word_lower)) {
            1
        } else {
            levenshtein(&word_lower, &c)
        }
    };
    candidates
        .into_iter()
        .map(|c| (distance(c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based() {
        let src = "a = 1\nbb = 2\n";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 6), (2, 1));
        assert_eq!(line_col(src, 8), (2, 3));
    }

    #[test]
    fn display_names_file_line_and_key() {
        let e = ConfigError::new(Path::new("s.toml"), Some("space.n_batch"), "empty axis")
            .at("x\ny", Some(2..3));
        assert_eq!(e.to_string(), "s.toml:2:1: space.n_batch: empty axis");
    }

    #[test]
    fn suggestions_catch_typos_only() {
        let keys = ["n_batch", "n_ubatch", "n_ctx"];
        assert_eq!(did_you_mean("n_bacth", keys), Some("n_batch"));
        assert_eq!(did_you_mean("N_CTX", keys), Some("n_ctx"));
        assert_eq!(did_you_mean("temperature", keys), None);
        assert_eq!(
            did_you_mean("bayesian", ["grid", "random", "bayes"]),
            Some("bayes")
        );
        assert_eq!(
            did_you_mean("rand", ["grid", "random", "bayes"]),
            Some("random")
        );
    }
}
