//! The doctor's findings as plain text: one section each for the llama.cpp
//! build, the CPU, memory bandwidth and every model, as aligned key/value
//! lines, then the warnings.

use super::{Findings, ModelCheck, ModelFacts, ModelState, warnings};
use crate::bandwidth::generation_ceiling_tps;
use std::fmt::Write;

/// Width of the key column.
const KEY: usize = 22;
/// Warnings and notes are wrapped to this many columns.
const WIDTH: usize = 100;
/// Entries of llama.cpp's CPU system info that are build options, not
/// instruction sets.
const BUILD_OPTIONS: &[&str] = &["LLAMAFILE", "OPENMP", "REPACK", "KLEIDIAI", "ACCELERATE"];

pub fn render(f: &Findings) -> String {
    let mut out = String::new();
    match &f.sweep {
        Some((path, true)) => {
            let _ = writeln!(
                out,
                "Sweep: {} (found here; pass SWEEP to check another)",
                path.display()
            );
        }
        Some((path, false)) => {
            let _ = writeln!(out, "Sweep: {}", path.display());
        }
        None => {}
    }
    llama_cpp(&mut out, f);
    app_runtimes(&mut out, f);
    cpu(&mut out, f);
    backend(&mut out, f);
    section(&mut out, "Memory bandwidth");
    let b = &f.bandwidth;
    line(
        &mut out,
        "read",
        format!(
            "{:.1} GB/s (best run; median {:.1} GB/s)",
            b.gb_per_s, b.median_gb_per_s
        ),
    );
    line(&mut out, "method", b.method());
    if !f.models.is_empty() {
        let e = &f.estimate;
        section(&mut out, "Models");
        let note = format!(
            "Memory at n_ctx {} ({}) with KV cache {}/{}; --n-ctx, --type-k and --type-v change \
             it. Generation ceiling = bandwidth / bytes read per token: generating a token reads \
             every weight once, so no setting can beat it.",
            e.n_ctx, e.n_ctx_from, e.type_k, e.type_v
        );
        let _ = writeln!(out, "{}", wrap(&note, "  ", "  ", WIDTH));
    }
    for model in &f.models {
        self::model(&mut out, f, model);
    }
    section(&mut out, "Warnings");
    let warnings = warnings::warnings(f);
    if warnings.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for w in warnings {
        let _ = writeln!(out, "{}", wrap(&w, "  - ", "    ", WIDTH));
    }
    out
}

/// `text` in lines of at most `width` characters (longer words stay whole),
/// the first starting with `first`, the others with `rest`.
pub fn wrap(text: &str, first: &str, rest: &str, width: usize) -> String {
    let mut out = String::from(first);
    let mut column = first.chars().count();
    let mut line_empty = true;
    for word in text.split_whitespace() {
        let len = word.chars().count();
        if !line_empty && column + 1 + len > width {
            out.push('\n');
            out.push_str(rest);
            column = rest.chars().count();
            line_empty = true;
        }
        if !line_empty {
            out.push(' ');
            column += 1;
        }
        out.push_str(word);
        column += len;
        line_empty = false;
    }
    out
}

fn section(out: &mut String, title: &str) {
    let _ = writeln!(out, "\n{title}");
}

fn line(out: &mut String, key: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "  {key:<KEY$} {value}");
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn llama_cpp(out: &mut String, f: &Findings) {
    section(out, "llama.cpp");
    let probe = match &f.llama {
        Ok(probe) => probe,
        Err(e) => {
            line(out, "status", format!("did not start: {e}"));
            return;
        }
    };
    line(out, "build", &probe.llama_cpp_build);
    line(out, "backends", probe.backends.join(", "));
    line(out, "GPU offload", yes_no(probe.supports_gpu_offload));
    for d in &probe.devices {
        line(
            out,
            &format!("device {}", d.name),
            format!(
                "{} ({}, {}), {} free of {}",
                d.description,
                d.kind,
                d.backend,
                fmt_bytes(d.memory_free_bytes),
                fmt_bytes(d.memory_total_bytes)
            ),
        );
    }
}

/// The app's runtimes beside llama-sweep's own build.
fn app_runtimes(out: &mut String, f: &Findings) {
    section(out, "The app's runtimes");
    if f.app.is_empty() {
        let _ = writeln!(
            out,
            "{}",
            wrap(
                "none named: the sweep measures llama.cpp as llama-sweep builds it (above); name the \
                 ones your app runs (--python PATH, --server PATH, or [app] in the sweep file) to \
                 check them here and verify the winner in them at the end of `run`",
                "  ",
                "  ",
                WIDTH
            )
        );
        return;
    }
    for check in &f.app {
        match &check.info {
            Ok(info) => {
                line(out, check.kind.name(), &check.program);
                line(out, "  version", &info.version);
                line(out, "  llama.cpp", &info.llama_cpp);
                let backends = if info.backends.is_empty() {
                    "CPU only".to_string()
                } else {
                    info.backends.join(", ")
                };
                line(out, "  backends", backends);
                line(out, "  GPU offload", yes_no(info.supports_gpu_offload));
                for d in &info.devices {
                    line(out, "  device", d);
                }
                let (isa, _) = cpu_features(&info.system_info);
                if !isa.is_empty() {
                    line(out, "  instruction sets", isa.join(" "));
                }
                if check.runs_trials {
                    line(
                        out,
                        "  trials",
                        "every trial of the sweep runs here ([sweep] runtime): its ranking is this \
                         runtime's",
                    );
                }
            }
            Err(e) => {
                line(out, check.kind.name(), &check.program);
                line(out, "  status", format!("cannot be used: {e}"));
            }
        }
    }
}

fn cpu(out: &mut String, f: &Findings) {
    section(out, "CPU and memory");
    let m = &f.machine;
    line(out, "CPU", &m.cpu_model);
    let physical = m
        .physical_cores
        .map_or_else(|| "?".to_string(), |n| n.to_string());
    line(
        out,
        "cores",
        format!("{physical} physical, {} logical", m.logical_cores),
    );
    if let Ok(probe) = &f.llama {
        let (isa, options) = cpu_features(&probe.system_info);
        line(out, "instruction sets", or_none(&isa));
        line(out, "llama.cpp CPU options", or_none(&options));
    }
    let total = m.memory_total_bytes.map_or("?".into(), fmt_bytes);
    let available = f.ram_available.map_or("?".into(), fmt_bytes);
    line(out, "RAM", format!("{total} total, {available} available"));
    if !f.nvidia_gpus.is_empty() {
        line(out, "NVIDIA driver sees", f.nvidia_gpus.join(", "));
    }
    if let Some(n) = &f.noise {
        let busiest = n
            .busiest
            .as_ref()
            .filter(|(_, cores)| *cores >= 0.01)
            .map(|(name, cores)| format!(" (the most: {name}, {cores:.2})"))
            .unwrap_or_default();
        line(
            out,
            "other processes",
            format!(
                "{:.2} of a core over {:.1} s{busiest}; stolen by the hypervisor {:.2}",
                n.load.other_cores, n.load.seconds, n.load.steal_cores
            ),
        );
        line(
            out,
            "idle noise",
            format!(
                "the same CPU work varied by {:.1}% (sd / mean of {} runs){}",
                n.spread * 100.0,
                n.runs,
                n.mhz
                    .map(|m| format!("; CPU at {m:.0} MHz"))
                    .unwrap_or_default()
            ),
        );
    }
}

/// The backend self-test: which of llama.cpp's code paths work here.
fn backend(out: &mut String, f: &Findings) {
    let Ok(probe) = &f.llama else {
        return;
    };
    section(out, "Backend self-test");
    let _ = writeln!(
        out,
        "{}",
        wrap(
            &format!(
                "Each model loaded and run for real: a {}-token prompt in one batch, then {} single \
                 tokens, the logits checked for NaN/Inf. With repack on (llama.cpp's default) \
                 llama.cpp moves the weights it can into the CPU's extra buffer types and runs their \
                 kernels; with repack off it runs the plain CPU kernels.",
                crate::selftest::PROMPT_TOKENS,
                crate::selftest::GEN_TOKENS
            ),
            "  ",
            "  ",
            WIDTH
        )
    );
    line(
        out,
        "CPU extra buffers",
        if probe.cpu_extra_buffer_types.is_empty() {
            "none (repack has nothing to do on this CPU)".to_string()
        } else {
            probe.cpu_extra_buffer_types.join(", ")
        },
    );
    for test in &f.backend {
        let _ = writeln!(out, "  {}", test.label);
        for (name, attempt) in [
            ("repack on (default)", &test.repack_on),
            ("repack off", &test.repack_off),
        ] {
            line(out, &format!("  {name}"), describe_attempt(attempt, probe));
        }
    }
    if !f.fits.is_empty() {
        section(
            out,
            "llama.cpp's --fit (what llama-server changes to fit free memory)",
        );
        for (label, fit) in &f.fits {
            let _ = writeln!(
                out,
                "{}",
                wrap(&format!("{label}: {}", fit.note), "  ", "    ", WIDTH)
            );
        }
    }
}

/// `works: pp 410 t/s, tg 150 t/s; weights in CPU_REPACK 10.2 MiB, ...`
fn describe_attempt(a: &crate::selftest::Attempt, probe: &crate::protocol::ProbeReport) -> String {
    let buffers = if a.buffers.is_empty() {
        String::new()
    } else {
        let extra_used = a
            .buffers
            .iter()
            .any(|b| probe.cpu_extra_buffer_types.contains(&b.name));
        let unused = if !extra_used && !probe.cpu_extra_buffer_types.is_empty() {
            " (no extra buffer type takes this model's weight types)"
        } else {
            ""
        };
        format!(
            "; weights in {}{unused}",
            crate::protocol::describe_buffers(&a.buffers)
        )
    };
    match (a.is_ok(), a.pp_tps, a.tg_tps) {
        (true, Some(pp), Some(tg)) => format!("works: pp {pp:.0} t/s, tg {tg:.0} t/s{buffers}"),
        _ => format!(
            "{}{buffers} (log: {})",
            a.detail.as_deref().unwrap_or(&a.status),
            a.log
        ),
    }
}

fn or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(" ")
    }
}

/// The `NAME = 1` entries of the CPU part of llama.cpp's system info, split
/// into instruction sets and build options.
pub fn cpu_features(system_info: &str) -> (Vec<String>, Vec<String>) {
    let mut in_cpu = false;
    let (mut isa, mut options) = (Vec::new(), Vec::new());
    for part in system_info.split('|') {
        let mut entry = part.trim();
        if let Some((segment, rest)) = entry.split_once(" : ") {
            in_cpu = segment.trim() == "CPU";
            entry = rest.trim();
        }
        let Some((name, value)) = entry.split_once('=') else {
            continue;
        };
        let name = name.trim();
        if in_cpu && value.trim() == "1" {
            if BUILD_OPTIONS.contains(&name) {
                options.push(name.to_string());
            } else {
                isa.push(name.to_string());
            }
        }
    }
    (isa, options)
}

fn model(out: &mut String, f: &Findings, model: &ModelCheck) {
    section(
        out,
        &format!("Model {} ({})", model.label, model.path.display()),
    );
    let facts = match &model.state {
        ModelState::Ready(facts) => facts,
        ModelState::NotDerived { source, quant } => {
            line(
                out,
                "status",
                format!(
                    "not derived yet: `llama-sweep run` makes it from {} with llama.cpp's quantizer ({quant})",
                    source.display()
                ),
            );
            return;
        }
        ModelState::Unreadable(e) => {
            line(out, "status", format!("unreadable: {e}"));
            return;
        }
    };
    let arch = match &facts.name {
        Some(name) => format!("{} ({name})", facts.architecture),
        None => facts.architecture.clone(),
    };
    line(out, "architecture", arch);
    line(
        out,
        "layers",
        facts.layers.map_or("?".into(), |n| n.to_string()),
    );
    line(out, "parameters", fmt_count(facts.parameters));
    line(out, "file type", &facts.file_type);
    line(out, "file size", fmt_bytes(facts.file_bytes));
    let read = match (facts.bytes_per_token, facts.weight_bytes) {
        (Some(read), Some(all)) if all > 0 => format!(
            "{} ({:.0}% of the weights)",
            fmt_bytes(read),
            read as f64 * 100.0 / all as f64
        ),
        _ => "? (a tensor type this tool does not know)".into(),
    };
    line(out, "read per token", read);
    line(
        out,
        "trained context",
        facts.n_ctx_train.map_or("?".into(), |n| n.to_string()),
    );
    memory(out, f, facts);
    memory_plan(out, f, facts);
    let ceiling = match facts.bytes_per_token {
        Some(bytes) if bytes > 0 => format!(
            "{} t/s ({:.1} GB/s / {:.1} MB read per token)",
            fmt_rate(generation_ceiling_tps(f.bandwidth.gb_per_s, bytes)),
            f.bandwidth.gb_per_s,
            bytes as f64 / 1e6
        ),
        _ => "?".into(),
    };
    line(out, "generation ceiling", ceiling);
}

fn memory(out: &mut String, f: &Findings, facts: &ModelFacts) {
    let e = &f.estimate;
    let weights = facts.weight_bytes.unwrap_or(facts.file_bytes);
    let need = facts.memory_needed();
    let kv = facts.kv_cache_bytes.map_or("? KV cache".into(), |kv| {
        format!("{} KV cache", fmt_bytes(kv))
    });
    line(
        out,
        &format!("memory at n_ctx {}", e.n_ctx),
        format!(
            "{} = {} weights + {kv} ({}/{})",
            fmt_bytes(need),
            fmt_bytes(weights),
            e.type_k,
            e.type_v,
        ),
    );
    if let Some(available) = f.ram_available {
        line(out, "  in RAM", fits(need, available, "available"));
    }
    if let Ok(probe) = &f.llama {
        for d in probe.devices.iter().filter(|d| d.kind.contains("gpu")) {
            line(
                out,
                &format!("  on {}", d.name),
                fits(need, d.memory_free_bytes, "free"),
            );
        }
    }
}

/// Each of the sweep's placements: what goes to the host and to each GPU,
/// and whether it fits.
fn memory_plan(out: &mut String, f: &Findings, facts: &ModelFacts) {
    let gpus: Vec<&crate::protocol::DeviceInfo> = match &f.llama {
        Ok(probe) => probe.accelerators().collect(),
        Err(_) => Vec::new(),
    };
    let multiple = facts.plans.len() > 1 || !gpus.is_empty();
    if !multiple {
        return;
    }
    line(
        out,
        "memory plan",
        "per placement of the sweep (from the header; compute buffers not included)",
    );
    for (placement, plan) in &facts.plans {
        let key = format!(
            "  ngl {} ncmoe {}{}{}",
            placement.n_gpu_layers,
            placement.n_cpu_moe,
            if placement.tensor_split.is_empty() {
                String::new()
            } else {
                let split: Vec<String> = placement
                    .tensor_split
                    .iter()
                    .map(|p| p.to_string())
                    .collect();
                format!(" ts {}", split.join(","))
            },
            if placement.offload_kqv { "" } else { " no-kvo" }
        );
        let share = |s: &crate::models::placement::Share| {
            format!("{} weights + {} KV", fmt_bytes(s.weights), fmt_bytes(s.kv))
        };
        let mut parts = vec![format!(
            "host {}{}",
            share(&plan.cpu),
            f.ram_available.map_or(String::new(), |a| format!(
                " ({})",
                fits(plan.cpu.total(), a, "available")
            ))
        )];
        for (gpu, device) in plan.gpus.iter().zip(&gpus) {
            parts.push(format!(
                "{} {} ({})",
                device.name,
                share(gpu),
                fits(gpu.total(), device.memory_free_bytes, "free")
            ));
        }
        line(out, &key, parts.join("; "));
    }
}

fn fits(need: u64, have: u64, what: &str) -> String {
    let verdict = if need <= have { "fits" } else { "does not fit" };
    format!("{verdict} ({} {what})", fmt_bytes(have))
}

/// A rate with the precision it deserves: `260`, `4.2`.
pub fn fmt_rate(x: f64) -> String {
    if x < 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.0}")
    }
}

/// Bytes in binary units: `512 B`, `93.8 MiB`, `1.50 GiB`.
pub fn fmt_bytes(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if b < KIB {
        format!("{bytes} B")
    } else if b < KIB * KIB {
        format!("{:.1} KiB", b / KIB)
    } else if b < KIB * KIB * KIB {
        format!("{:.1} MiB", b / (KIB * KIB))
    } else {
        format!("{:.2} GiB", b / (KIB * KIB * KIB))
    }
}

/// A count in decimal units, as parameter counts are given: `134.5 M`,
/// `7.62 B`.
pub fn fmt_count(n: u64) -> String {
    let x = n as f64;
    if x >= 1e9 {
        format!("{:.2} B", x / 1e9)
    } else if x >= 1e6 {
        format!("{:.1} M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1} K", x / 1e3)
    } else {
        n.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_counts_read_like_people_write_them() {
        assert_eq!(fmt_bytes(512), "512 B");
        assert_eq!(fmt_bytes(98_362_432), "93.8 MiB");
        assert_eq!(fmt_bytes(3 << 29), "1.50 GiB");
        assert_eq!(fmt_count(134_515_008), "134.5 M");
        assert_eq!(fmt_count(7_615_616_512), "7.62 B");
        assert_eq!(fmt_count(999), "999");
        assert_eq!(fmt_rate(259.6), "260");
        assert_eq!(fmt_rate(0.32), "0.3");
    }

    #[test]
    fn findings_render_as_aligned_sections() {
        let text = render(&super::super::tests::findings(30, Some(22)));
        let sections: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with(' ') && !l.is_empty())
            .collect();
        assert_eq!(
            sections,
            [
                "llama.cpp",
                "The app's runtimes",
                "CPU and memory",
                "Backend self-test",
                "Memory bandwidth",
                "Models",
                "Model big (big.gguf)",
                "Warnings"
            ]
        );
        for key in [
            "GPU offload",
            "read",
            "parameters",
            "memory at n_ctx 4096",
            "  on CUDA0",
        ] {
            let line = text
                .lines()
                .find(|l| {
                    l.get(2..)
                        .is_some_and(|l| l.starts_with(&format!("{key} ")))
                })
                .unwrap_or_else(|| panic!("{key}: {text}"));
            assert_eq!(&line[..2 + KEY], format!("  {key:<KEY$}"), "{line}");
            assert_ne!(
                &line[2 + KEY + 1..2 + KEY + 2],
                " ",
                "aligned values: {line}"
            );
        }
        assert!(text.contains("  GPU offload            yes\n"), "{text}");
        assert!(
            text.contains("  parameters             70.00 B\n"),
            "{text}"
        );
        assert!(
            text.contains("    in RAM               does not fit (8.00 GiB available)\n"),
            "{text}"
        );
        assert!(
            text.contains("    on CUDA0             does not fit (22.00 GiB free)\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "  generation ceiling     0.3 t/s (10.0 GB/s / 31138.5 MB read per token)"
            ),
            "{text}"
        );
        assert!(text.contains("\n  - big: weights + KV cache"), "{text}");
    }

    #[test]
    fn warnings_wrap_with_a_hanging_indent() {
        let w = wrap("aaa bbb ccc ddd", "- ", "  ", 9);
        assert_eq!(w, "- aaa bbb\n  ccc ddd");
        assert_eq!(
            wrap("averyverylongword x", "- ", "  ", 5),
            "- averyverylongword\n  x"
        );
        assert_eq!(wrap("", "- ", "  ", 5), "- ");
    }

    #[test]
    fn cpu_features_come_from_the_cpu_part_of_system_info() {
        let info = "CPU : SSE3 = 1 | AVX = 1 | AVX512 = 0 | OPENMP = 1 | REPACK = 1 | \
                    CUDA : ARCHS = 890 | USE_GRAPHS = 1 |";
        let (isa, options) = cpu_features(info);
        assert_eq!(isa, ["SSE3", "AVX"]);
        assert_eq!(options, ["OPENMP", "REPACK"]);
        assert_eq!(cpu_features(""), (vec![], vec![]));
    }
}
