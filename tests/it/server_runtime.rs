//! Trials through llama-server (`[sweep] runtime = "server"`): a real
//! llama-server built from llama-sweep's own llama.cpp source, measured by
//! concurrent streaming clients on the real demo model; and servers that
//! fail (one that exits at once, one that dies in the middle of a trial),
//! each a row with its reason while the sweep goes on.

use crate::support::*;
use llama_sweep::runner::TrialStatus;
use std::path::{Path, PathBuf};

/// A fake llama-server: it says it is one, then does `body`.
fn script(dir: &Path, body: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("llama-server");
    let says = r#"case "$1" in
  --version) echo 'version: 1 (fake)' >&2; exit 0 ;;
  --list-devices) echo 'Available devices:'; echo '  (none)'; exit 0 ;;
esac"#;
    std::fs::write(&path, format!("#!/bin/sh\n{says}\n{body}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A sweep of the demo model whose trials run through `server`.
fn server_sweep(dir: &Path, server: &Path, space: &str) -> PathBuf {
    let sweep = sweep_file(
        dir,
        &model_table("demo", &demo_model(), ""),
        space,
        &format!(
            "[drift]\nevery = 0\n\n[app]\nserver = \"{}\"\nrounds = 1\nrepetitions = 1\n\n\
             [trial]\ntimeout_s = 120",
            server.display()
        ),
    );
    let text = std::fs::read_to_string(&sweep).unwrap();
    let text = text.replacen("[sweep]\n", "[sweep]\nruntime = \"server\"\n", 1);
    std::fs::write(&sweep, text).unwrap();
    sweep
}

#[test]
fn trials_run_through_a_real_llama_server_with_concurrent_clients() {
    let Some(server) = llama_server() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sweep = server_sweep(dir.path(), &server, "n_threads = 2\nn_parallel = [1, 2]");
    let out = run(&["run", sweep.to_str().unwrap()]);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(out.status.success(), "{text}");
    let folder = dir.path().join("reports/it");
    let rows = read_rows(&folder);
    let planned: Vec<_> = rows.iter().filter(|r| r.seq < 2).collect();
    assert_eq!(planned.len(), 2, "{rows:#?}\n{text}");
    // The exported flags are those measured: the batch sizes llama.cpp
    // used, not zeros.
    for row in &rows {
        assert!(row.params.int(llama_sweep::knobs::N_BATCH) > 0, "{row:#?}");
    }
    for row in &rows {
        assert_eq!(row.status, TrialStatus::Ok, "{row:#?}");
        assert_eq!(row.runtime.as_deref(), Some("llama-server"), "{row:#?}");
        for figure in [
            row.tg_tps_mean,
            row.pp_tps_mean,
            row.ttft_ms_mean,
            row.e2e_ms_mean,
            row.aggregate_tps_mean,
            row.server_tg_tps_mean,
            row.goodput_rps_mean,
        ] {
            assert!(figure.is_some_and(|v| v > 0.0), "{row:#?}");
        }
        // No draft model: nothing drafted.
        assert_eq!(row.draft_acceptance, None);
        let log = std::fs::read_to_string(folder.join(&row.log_file)).unwrap();
        // The server's log, copied into the trial's as it was written.
        assert!(
            log.contains("llama-sweep: llama-server ready on port")
                && log.lines().any(|l| l.starts_with("llama-server| ")),
            "{log}"
        );
    }
    // Every request's time to first token: two clients a round, two rounds.
    let two = planned
        .iter()
        .find(|r| r.params.int(llama_sweep::knobs::N_PARALLEL) == 2)
        .unwrap();
    assert_eq!(two.ttft_ms_samples.split(';').count(), 4, "{two:#?}");
}

#[test]
fn a_server_that_exits_at_once_or_dies_mid_trial_is_a_row_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    // Refuses its arguments, as a llama-server does with a flag it lacks.
    let refusing = script(
        &dir.path().join("refusing"),
        "echo 'error: invalid argument: --fit' >&2; exit 1",
    );
    // Answers /health, then dies after the first token of a request.
    let dying = script(
        &dir.path().join("dying"),
        r#"while [ $# -gt 0 ]; do [ "$1" = --port ] && port=$2; shift; done
exec python3 - "$port" <<'EOF'
import http.server, os, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b'{"status":"ok"}')
    def do_POST(self):
        self.rfile.read(int(self.headers['Content-Length']))
        self.send_response(200); self.send_header('Content-Type', 'text/event-stream'); self.end_headers()
        self.wfile.write(b'data: {"content":"a","stop":false}\n\n'); self.wfile.flush()
        os._exit(9)
http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()
EOF"#,
    );
    for (server, reason) in [
        (&refusing, "exited (exit status: 1) before it was ready"),
        (&dying, "stopped answering"),
    ] {
        let sweep_dir = server.parent().unwrap();
        let sweep = server_sweep(sweep_dir, server, "n_threads = [1, 2]");
        let out = run(&["run", sweep.to_str().unwrap()]);
        let text = format!("{}{}", stdout(&out), stderr(&out));
        assert!(!out.status.success(), "{text}");
        let rows = read_rows(&sweep_dir.join("reports/it"));
        assert!(!rows.is_empty(), "{text}");
        for row in &rows {
            assert_eq!(row.status, TrialStatus::Failed, "{row:#?}");
            let error = row.error.as_deref().unwrap_or("");
            assert!(error.contains(reason), "{error}\n{text}");
        }
    }
}

#[test]
fn a_flag_the_llama_server_lacks_stops_the_sweep_before_its_first_trial() {
    let Some(real) = llama_server() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // The real server, but its help lists no --fit, as an older one's.
    let help = std::process::Command::new(&real)
        .arg("--help")
        .output()
        .unwrap();
    let help =
        String::from_utf8_lossy(&help.stdout).into_owned() + &String::from_utf8_lossy(&help.stderr);
    assert!(help.contains("--fit"), "{help}");
    let older: Vec<&str> = help.lines().filter(|l| !l.contains("--fit")).collect();
    let help_file = dir.path().join("help.txt");
    std::fs::write(&help_file, older.join("\n")).unwrap();
    let server = script(
        &dir.path().join("older"),
        &format!(
            "[ \"$1\" = --help ] && {{ cat '{}'; exit 0; }}\nexec '{}' \"$@\"",
            help_file.display(),
            real.display()
        ),
    );
    let sweep = server_sweep(dir.path(), &server, "n_threads = 2");
    let out = run(&["run", sweep.to_str().unwrap()]);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("does not accept --fit"), "{text}");
    assert!(text.contains("1 (fake)"), "the binary's version: {text}");
    let results = dir.path().join("reports/it/results.csv");
    assert!(
        !results.exists() || read_rows(&dir.path().join("reports/it")).is_empty(),
        "no trial ran: {text}"
    );
}

/// The path of a test model beside the demo model.
fn model_file(name: &str) -> PathBuf {
    let path = demo_model().with_file_name(name);
    assert!(
        path.is_file(),
        "{} is missing: run scripts/make-moe-model.sh",
        path.display()
    );
    path
}

#[test]
fn speculative_decoding_is_swept_through_a_real_llama_server_on_real_text() {
    let Some(server) = llama_server() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let demo = demo_model();
    let other_vocab = model_file("test-other-vocab.gguf");
    // The target is the demo model's Q8_0; the demo file itself (Q4_1)
    // drafts for it, and so does a model whose vocabulary differs in two
    // tokens, which llama-server must refuse. n-gram drafting needs no
    // second model; greedy sampling makes the demo model repeat itself,
    // which is what n-grams find.
    let sweep = server_sweep(
        dir.path(),
        &server,
        &format!(
            "n_threads = 2\nspec_type = [\"none\", \"draft-simple\", \"ngram-simple\"]\n\
             draft_model = [\"{}\", \"{}\"]\ndraft_n_max = 4\n\n[export]\ntemperature = 0",
            demo.display(),
            other_vocab.display()
        ),
    );
    let text = std::fs::read_to_string(&sweep).unwrap();
    let text = text
        .replacen(
            &format!("path = \"{}\"\n", demo.display()),
            &format!(
                "path = \"{}\"\nquantize = [\"Q8_0\"]\ninclude_source = false\n",
                demo.display()
            ),
            1,
        )
        .replacen(
            "request_max_tokens = 8",
            "request_max_tokens = 48\nprompts = \"shipped\"",
            1,
        )
        // Two models load per trial, beside the other tests on a shared
        // machine.
        .replacen("timeout_s = 120", "timeout_s = 300", 1);
    std::fs::write(&sweep, &text).unwrap();
    let out = run(&["run", sweep.to_str().unwrap()]);
    let said = format!("{}{}", stdout(&out), stderr(&out));
    let folder = dir.path().join("reports/it");
    let rows = read_rows(&folder);
    let row_of = |kind: &str, draft: Option<&Path>| {
        rows.iter()
            .find(|r| {
                r.params.text(llama_sweep::knobs::SPEC_TYPE) == kind
                    && draft.is_none_or(|d| {
                        r.params.text(llama_sweep::knobs::DRAFT_MODEL) == d.to_str().unwrap()
                    })
            })
            .unwrap_or_else(|| panic!("no {kind} row: {rows:#?}\n{said}"))
    };
    assert_eq!(
        rows.len(),
        5,
        "4 trials (idle draft settings folded) and the defaults: {said}"
    );
    for row in [
        row_of("none", None),
        row_of("draft-simple", Some(&demo)),
        row_of("ngram-simple", None),
    ] {
        assert_eq!(row.status, TrialStatus::Ok, "{row:#?}\n{said}");
        assert!(row.model_variant.contains("Q8_0"), "{row:#?}");
        for figure in [row.tg_tps_mean, row.ttft_ms_mean, row.server_tg_tps_mean] {
            assert!(figure.is_some_and(|v| v > 0.0), "{row:#?}");
        }
    }
    assert_eq!(row_of("none", None).draft_tokens, Some(0));
    assert_eq!(row_of("none", None).draft_acceptance, None);
    for row in [
        row_of("draft-simple", Some(&demo)),
        row_of("ngram-simple", None),
    ] {
        assert!(row.draft_tokens.is_some_and(|n| n > 0), "{row:#?}\n{said}");
        assert!(
            row.draft_acceptance
                .is_some_and(|a| (0.0..=1.0).contains(&a)),
            "{row:#?}"
        );
    }
    assert!(
        said.contains("% accepted"),
        "the progress line says it: {said}"
    );
    // Another vocabulary: llama-server goes on without speculation and says
    // so only in its log; the trial is a row with that reason.
    let refused = row_of("draft-simple", Some(&other_vocab));
    let log = std::fs::read_to_string(folder.join(&refused.log_file)).unwrap_or_default();
    assert_eq!(
        refused.status,
        TrialStatus::Failed,
        "{refused:#?}\nits log:\n{log}"
    );
    let error = refused.error.as_deref().unwrap_or("");
    assert!(
        error.contains("did not speculate") && error.contains("vocab"),
        "{error}"
    );
    // What is exported is what was measured.
    let drafting = row_of("draft-simple", Some(&demo));
    let args = export(&folder, &drafting.trial_id, "server-args");
    assert!(args.contains("--spec-type draft-simple"), "{args}");
    assert!(args.contains("--spec-draft-n-max 4"), "{args}");
    assert!(args.contains(&format!("-md {}", demo.display())), "{args}");
    let plain = export(&folder, &row_of("none", None).trial_id, "server-args");
    assert!(
        !plain.contains("-md") && !plain.contains("--spec"),
        "{plain}"
    );
    // The sweep ran in the app's llama-server: it is not asked again.
    assert!(said.contains("is not asked again"), "{said}");
    let config = std::fs::read_to_string(folder.join("config.yaml")).unwrap();
    assert!(
        config.contains("measured in llama-server itself"),
        "{config}"
    );
}
