//! llm.json: the llama-cpp-python `Llama()` keyword arguments of config.yaml's
//! `llm:` as one JSON object, for an app that does
//! `Llama(**json.load(open("llm.json")))`. Sampling settings (temperature,
//! max_tokens) are not `Llama()` arguments and are left out; so is a
//! setting `Llama()` cannot express (flash attention measured as "auto" and
//! never resolved). JSON has no comments: the provenance is in the yaml
//! export and results.csv.

use super::kwargs;
use crate::store::row::TrialRow;

/// `Llama()`'s keyword arguments for `row` as one JSON object: what
/// llm.json holds, and what the llama-cpp-python driver loads.
pub fn object(row: &TrialRow) -> serde_json::Value {
    kwargs::llama_kwargs(row)
        .into_iter()
        .filter_map(|k| k.value.map(|v| (k.key.to_string(), v)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

pub fn render(row: &TrialRow) -> String {
    let mut text = serde_json::to_string_pretty(&object(row)).expect("JSON values serialize");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knobs::{FlashAttn, KvType};
    use crate::runner::mock;

    fn row() -> TrialRow {
        crate::test_support::row("abc123def456", &mock::measured(180.0, 500.0))
    }

    #[test]
    fn snapshot_of_the_keyword_arguments() {
        let mut r = row();
        r.flash_attn_resolved = Some(true);
        r.params.set(crate::knobs::TYPE_V, (KvType::Q4_0).into());
        let expected = r#"{
  "model_path": "models/m.gguf",
  "n_gpu_layers": -1,
  "n_ctx": 512,
  "n_batch": 512,
  "n_ubatch": 512,
  "n_threads": 4,
  "n_threads_batch": 4,
  "flash_attn": true,
  "type_v": 2,
  "use_mmap": true,
  "use_mlock": false,
  "offload_kqv": true,
  "verbose": false
}
"#;
        assert_eq!(render(&r), expected);
    }

    #[test]
    fn an_unresolved_auto_flash_attention_is_left_out_and_the_rest_kept() {
        let mut r = row();
        r.params
            .set(crate::knobs::FLASH_ATTN, (FlashAttn::Auto).into());
        r.flash_attn_resolved = None;
        let value: serde_json::Value = serde_json::from_str(&render(&r)).unwrap();
        let object = value.as_object().unwrap();
        assert!(!object.contains_key("flash_attn"), "{object:?}");
        assert!(!object.contains_key("temperature") && !object.contains_key("max_tokens"));
        assert_eq!(object["n_gpu_layers"], -1);
    }

    #[test]
    fn holds_the_same_keyword_arguments_as_the_yaml() {
        let mut r = row();
        r.model_path = "models/a \"b\": c.gguf".into();
        r.params
            .set(crate::knobs::FLASH_ATTN, (FlashAttn::Off).into());
        r.params.set(crate::knobs::TYPE_K, (KvType::Q8_0).into());
        let json: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&render(&r)).unwrap();
        let yaml = super::super::yaml::render(
            &r,
            &super::super::ExportContext {
                objective: &crate::objective::Objective::default(),
                temperature: 0.7,
                sweep_file: "s.toml",
                confirmation: None,
                backend: None,
                app: None,
            },
        );
        let llm: Vec<&str> = yaml
            .split_once("llm:\n")
            .unwrap()
            .1
            .lines()
            .map(|l| l.split("  #").next().unwrap().trim())
            .filter(|l| !l.is_empty())
            .filter(|l| !l.starts_with("temperature:") && !l.starts_with("max_tokens:"))
            .collect();
        let from_json: Vec<String> = json.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        assert_eq!(llm, from_json);
    }
}
