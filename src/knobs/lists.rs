//! The text knobs' values in llama.cpp's own spelling: each reader checks a
//! value and returns its canonical text (what the trial id hashes and the
//! exports write), or says what is wrong with it. Pure; the child resolves
//! device and buffer-type names against what llama.cpp offers.

/// llama.cpp's `LLAMA_MAX_DEVICES` in its default builds.
pub const MAX_DEVICES: usize = 16;

/// The words that stand for "llama.cpp's own choice" in each text knob.
pub const AUTO_SPLIT: &str = "auto";
pub const NO_OVERRIDES: &str = "none";
pub const ALL_DEVICES: &str = "all";
pub const NO_DEVICES: &str = "none";
pub const NO_CPU_MASK: &str = "0x0";

fn items(text: &str, separators: &[char]) -> Vec<String> {
    text.split(separators)
        .map(|s| s.trim().to_string())
        .collect()
}

/// A tensor split: proportions per GPU (`3,1`; llama.cpp also takes `/`),
/// or "auto" (in proportion to the devices' free memory).
pub fn tensor_split(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case(AUTO_SPLIT) {
        return Ok(AUTO_SPLIT.into());
    }
    let parts = items(text, &[',', '/']);
    if parts.len() > MAX_DEVICES {
        return Err(format!(
            "{} proportions, but llama.cpp takes at most {MAX_DEVICES} devices",
            parts.len()
        ));
    }
    let mut numbers = Vec::with_capacity(parts.len());
    for part in &parts {
        let n: f64 = part
            .parse()
            .map_err(|_| format!("{part:?} is not a number"))?;
        if !n.is_finite() || n < 0.0 {
            return Err(format!("{part} is not a proportion (a number ≥ 0)"));
        }
        numbers.push(n);
    }
    if numbers.iter().all(|n| *n == 0.0) {
        return Err("every proportion is 0: give at least one device a share".into());
    }
    Ok(numbers
        .iter()
        .map(|n| format!("{n}"))
        .collect::<Vec<_>>()
        .join(","))
}

/// The proportions of a canonical tensor split; empty for "auto".
pub fn tensor_split_numbers(canonical: &str) -> Vec<f32> {
    if canonical == AUTO_SPLIT {
        return Vec::new();
    }
    canonical
        .split(',')
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// One tensor override rule: a tensor-name pattern (a regular expression)
/// and the buffer type its tensors go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverrideRule {
    pub pattern: String,
    pub buffer_type: String,
}

/// Tensor overrides as llama.cpp's `-ot`: `pattern=BUFFER_TYPE` rules
/// separated by commas (or by `;`, as llama-bench groups them), or "none".
pub fn override_tensor(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() || text.eq_ignore_ascii_case(NO_OVERRIDES) {
        return Ok(NO_OVERRIDES.into());
    }
    let rules: Vec<String> = items(text, &[',', ';'])
        .into_iter()
        .map(|rule| {
            let (pattern, buft) = rule.split_once('=').ok_or_else(|| {
                format!("{rule:?} is not pattern=BUFFER_TYPE (e.g. \"exps=CPU\")")
            })?;
            let (pattern, buft) = (pattern.trim(), buft.trim());
            if pattern.is_empty() || buft.is_empty() || buft.contains(char::is_whitespace) {
                return Err(format!(
                    "{rule:?} needs a tensor-name pattern and a buffer type, e.g. \"exps=CPU\""
                ));
            }
            Ok(format!("{pattern}={buft}"))
        })
        .collect::<Result<_, _>>()?;
    Ok(rules.join(","))
}

/// The rules of canonical overrides; empty for "none".
pub fn override_rules(canonical: &str) -> Vec<OverrideRule> {
    if canonical == NO_OVERRIDES {
        return Vec::new();
    }
    canonical
        .split(',')
        .filter_map(|rule| rule.split_once('='))
        .map(|(p, b)| OverrideRule {
            pattern: p.to_string(),
            buffer_type: b.to_string(),
        })
        .collect()
}

/// llama.cpp's pattern for the expert tensors of layer `layer` (common's
/// `llm_ffn_block_regex(i, LLM_FFN_EXPS_REGEX)`, what `--n-cpu-moe` adds).
pub fn expert_pattern(layer: u32) -> String {
    format!("blk\\.{layer}\\.ffn_(up|down|gate|gate_up)_(ch|)exps")
}

/// Devices to offload to, by llama.cpp's names (`CUDA0,CUDA1`, as
/// `--device` takes them), "all" (llama.cpp's default) or "none".
pub fn devices(text: &str) -> Result<String, String> {
    let text = text.trim();
    for word in [ALL_DEVICES, NO_DEVICES] {
        if text.eq_ignore_ascii_case(word) {
            return Ok(word.into());
        }
    }
    let names = items(text, &[',']);
    if names
        .iter()
        .any(|n| n.is_empty() || n.contains(char::is_whitespace))
    {
        return Err(format!(
            "{text:?} is not a list of device names such as \"CUDA0,CUDA1\" (`llama-sweep doctor` lists them)"
        ));
    }
    Ok(names.join(","))
}

/// The device names of a canonical list; `None` for "all".
pub fn device_names(canonical: &str) -> Option<Vec<String>> {
    match canonical {
        ALL_DEVICES => None,
        NO_DEVICES => Some(Vec::new()),
        list => Some(list.split(',').map(str::to_string).collect()),
    }
}

/// A CPU affinity mask in hex, as llama-bench's `-C` (`0xff`: CPUs 0–7);
/// `0x0` sets no affinity.
pub fn cpu_mask(text: &str) -> Result<String, String> {
    let text = text.trim();
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "{text:?} is not a hexadecimal CPU mask such as \"0xff\""
        ));
    }
    let trimmed = digits.trim_start_matches('0').to_ascii_lowercase();
    Ok(if trimmed.is_empty() {
        NO_CPU_MASK.into()
    } else {
        format!("0x{trimmed}")
    })
}

/// The CPUs a canonical mask selects (bit i = CPU i).
pub fn cpu_mask_cpus(canonical: &str) -> Vec<usize> {
    let digits = canonical.trim_start_matches("0x");
    digits
        .chars()
        .rev()
        .enumerate()
        .flat_map(|(i, c)| {
            let nibble = c.to_digit(16).unwrap_or(0);
            (0..4)
                .filter(move |b| nibble & (1 << b) != 0)
                .map(move |b| i * 4 + b)
        })
        .collect()
}

/// The word for "no draft model" (llama-server's default).
pub const NO_DRAFT_MODEL: &str = "none";

/// A draft model for speculative decoding: a GGUF file's path, or "none".
/// The sweep file's relative paths are made absolute by the config, which
/// also checks that the file is there.
pub fn draft_model(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("an empty path: give the draft model's GGUF file, or \"none\"".into());
    }
    Ok(if text.eq_ignore_ascii_case(NO_DRAFT_MODEL) {
        NO_DRAFT_MODEL.into()
    } else {
        text.into()
    })
}

/// A probability from 0 to 1 (a draft token's minimum probability), written
/// as the shortest decimal that reads back to it.
pub fn probability(text: &str) -> Result<String, String> {
    let text = text.trim();
    let p: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if !(0.0..=1.0).contains(&p) {
        return Err(format!("{text} is not a probability (0 to 1)"));
    }
    Ok(format!("{p}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draft_models_and_probabilities_are_canonical() {
        assert_eq!(draft_model(" NONE ").unwrap(), "none");
        assert_eq!(draft_model("m/d.gguf").unwrap(), "m/d.gguf");
        assert!(draft_model("  ").is_err());
        assert_eq!(probability("0.50").unwrap(), "0.5");
        assert_eq!(probability("1").unwrap(), "1");
        assert!(
            probability("1.5")
                .unwrap_err()
                .contains("not a probability")
        );
        assert!(probability("x").unwrap_err().contains("not a number"));
    }

    #[test]
    fn tensor_splits_are_canonical_proportions() {
        assert_eq!(tensor_split("3, 1").unwrap(), "3,1");
        assert_eq!(tensor_split("3/1").unwrap(), "3,1");
        assert_eq!(tensor_split("0.5,1.0").unwrap(), "0.5,1");
        assert_eq!(tensor_split("AUTO").unwrap(), "auto");
        assert!(tensor_split("1,x").unwrap_err().contains("not a number"));
        assert!(
            tensor_split("0,0")
                .unwrap_err()
                .contains("every proportion is 0")
        );
        assert!(tensor_split("-1,2").is_err());
        assert_eq!(tensor_split_numbers("3,1"), [3.0, 1.0]);
        assert!(tensor_split_numbers("auto").is_empty());
    }

    #[test]
    fn overrides_are_rules_of_pattern_and_buffer_type() {
        assert_eq!(override_tensor("exps=CPU").unwrap(), "exps=CPU");
        assert_eq!(
            override_tensor(" a=CPU ; b=CUDA0 ").unwrap(),
            "a=CPU,b=CUDA0"
        );
        assert_eq!(override_tensor("").unwrap(), "none");
        assert!(
            override_tensor("exps")
                .unwrap_err()
                .contains("pattern=BUFFER_TYPE")
        );
        assert!(override_tensor("=CPU").is_err());
        assert_eq!(
            override_rules("a=CPU,b=CUDA0")[1],
            OverrideRule {
                pattern: "b".into(),
                buffer_type: "CUDA0".into()
            }
        );
        assert!(override_rules("none").is_empty());
    }

    #[test]
    fn the_expert_pattern_is_llama_cpps() {
        assert_eq!(
            expert_pattern(3),
            "blk\\.3\\.ffn_(up|down|gate|gate_up)_(ch|)exps"
        );
    }

    #[test]
    fn devices_and_masks() {
        assert_eq!(devices("CUDA0, CUDA1").unwrap(), "CUDA0,CUDA1");
        assert_eq!(devices("ALL").unwrap(), "all");
        assert_eq!(device_names("none"), Some(vec![]));
        assert_eq!(device_names("all"), None);
        assert!(devices("CUDA0,,CUDA1").is_err());
        assert_eq!(cpu_mask("0xFF").unwrap(), "0xff");
        assert_eq!(cpu_mask("000f").unwrap(), "0xf");
        assert_eq!(cpu_mask("0").unwrap(), "0x0");
        assert!(cpu_mask("0xg").is_err());
        assert_eq!(cpu_mask_cpus("0x13"), [0, 1, 4]);
        assert!(cpu_mask_cpus("0x0").is_empty());
    }
}
