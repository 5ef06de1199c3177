//! Quoting for POSIX shells (and `.env` files read by one): a word that
//! could be split, globbed or expanded is put in single quotes.

/// Characters that need no quoting anywhere in a shell word.
fn is_plain(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_-+=@%:,./".contains(c)
}

/// `word` as one shell word: as it is when it is plain, else in single
/// quotes, with each `'` written as `'\''`.
pub fn quote(word: &str) -> String {
    if !word.is_empty() && word.chars().all(is_plain) {
        return word.to_string();
    }
    format!("'{}'", word.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_words_stay_and_others_are_single_quoted() {
        assert_eq!(quote("models/m-Q4_K_M.gguf"), "models/m-Q4_K_M.gguf");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("my models/a b.gguf"), "'my models/a b.gguf'");
        assert_eq!(quote("it's \"x\""), r#"'it'\''s "x"'"#);
        assert_eq!(quote("$HOME/*.gguf"), "'$HOME/*.gguf'");
        assert_eq!(quote("~/m.gguf"), "'~/m.gguf'");
    }

    #[test]
    fn a_shell_reads_back_exactly_the_word() {
        for word in [
            "a b",
            "it's",
            "$(echo no)",
            "`x`",
            "a\\b\"c",
            "tab\there",
            "line\nbreak",
            "*",
        ] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", quote(word)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), word);
        }
    }
}
