//! Where a child died, in words: the function its crash handler's report
//! (`measure::crash`) points at, found in this executable's symbol table
//! (the child is this same binary), or ggml's own assertion message. So a
//! row says "died of SIGSEGV in ggml_backend_amx_mul_mat", not only
//! "signal 11".

use object::{Object, ObjectSymbol, SymbolKind};
use std::sync::OnceLock;

/// What the log tells about a crash.
#[derive(Debug, Clone, PartialEq)]
pub struct CrashSite {
    /// The function the fault happened in, demangled.
    pub function: Option<String>,
    /// ggml's own message, e.g. `ggml-cpu.c:2870: GGML_ASSERT(...) failed`.
    pub assertion: Option<String>,
}

impl CrashSite {
    /// `in ggml_backend_amx_mul_mat (GGML_ASSERT(x) failed)`, or `None`
    /// when nothing is known.
    pub fn describe(&self) -> Option<String> {
        match (&self.function, &self.assertion) {
            (Some(f), Some(a)) => Some(format!("in {f} ({a})")),
            (Some(f), None) => Some(format!("in {f}")),
            (None, Some(a)) => Some(format!("at {a}")),
            (None, None) => None,
        }
    }
}

/// The crash `log_end` (the end of a child's log) reports, if any.
pub fn find(log_end: &str) -> Option<CrashSite> {
    let function = crate::llama_log::crash_report(log_end).and_then(|(_, bias, frames)| {
        let symbols = symbols()?;
        let names: Vec<String> = frames
            .iter()
            .filter_map(|&addr| symbols.lookup(addr.checked_sub(bias)?.saturating_sub(1)))
            .collect();
        // The frames start in the crash handler; the fault is the first
        // frame of this executable after it.
        let after_handler = names
            .iter()
            .position(|n| n.ends_with("::crash::handler"))
            .map_or(0, |i| i + 1);
        names.into_iter().nth(after_handler)
    });
    let assertion = log_end
        .lines()
        .rev()
        .find(|l| l.contains("GGML_ASSERT") || l.contains("GGML_ABORT"))
        .map(|l| {
            let l = l.trim();
            // Keep the file name, not its build path.
            match l.rsplit_once('/') {
                Some((_, tail)) => tail.to_string(),
                None => l.to_string(),
            }
        });
    (function.is_some() || assertion.is_some()).then_some(CrashSite {
        function,
        assertion,
    })
}

/// The function symbols of this executable, by address.
struct Symbols {
    /// (start, end, demangled name), sorted by start.
    ranges: Vec<(usize, usize, String)>,
}

impl Symbols {
    fn lookup(&self, addr: usize) -> Option<String> {
        let i = self.ranges.partition_point(|(start, _, _)| *start <= addr);
        let (start, end, name) = self.ranges.get(i.checked_sub(1)?)?;
        (addr >= *start && addr < *end.max(&(start + 1))).then(|| name.clone())
    }
}

fn symbols() -> Option<&'static Symbols> {
    static SYMBOLS: OnceLock<Option<Symbols>> = OnceLock::new();
    SYMBOLS
        .get_or_init(|| {
            let exe = std::env::current_exe().ok()?;
            let data = std::fs::read(exe).ok()?;
            let file = object::File::parse(&*data).ok()?;
            let mut ranges: Vec<(usize, usize, String)> = file
                .symbols()
                .filter(|s| s.kind() == SymbolKind::Text && s.address() != 0)
                .filter_map(|s| {
                    let start = s.address() as usize;
                    Some((start, start + s.size() as usize, demangle(s.name().ok()?)))
                })
                .collect();
            ranges.sort_by_key(|r| r.0);
            Some(Symbols { ranges })
        })
        .as_ref()
}

/// A readable name for a mangled C++ or Rust symbol: the path of a nested
/// name (`a::b::c`, without Rust's hash), the name of a plain one, else the
/// symbol as it is.
pub fn demangle(symbol: &str) -> String {
    let Some(rest) = symbol.strip_prefix("_Z") else {
        return symbol.to_string();
    };
    let (nested, mut rest) = match rest.strip_prefix('N') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let mut parts = Vec::new();
    loop {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        let Ok(len) = rest[..digits].parse::<usize>() else {
            break;
        };
        let Some(part) = rest.get(digits..digits + len) else {
            break;
        };
        parts.push(part);
        rest = &rest[digits + len..];
        if !nested {
            break;
        }
    }
    if let Some(last) = parts.last() {
        let is_hash = last.len() == 17
            && last.starts_with('h')
            && last[1..].chars().all(|c| c.is_ascii_hexdigit());
        if is_hash {
            parts.pop();
        }
    }
    if parts.is_empty() {
        symbol.to_string()
    } else {
        parts.join("::")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mangled_names_read_as_paths() {
        assert_eq!(
            demangle("_Z24ggml_backend_amx_mul_matPK17ggml_compute_paramsP11ggml_tensor"),
            "ggml_backend_amx_mul_mat"
        );
        assert_eq!(
            demangle("_ZN11llama_sweep7measure5fault22simulated_kernel_crash17h0123456789abcdefE"),
            "llama_sweep::measure::fault::simulated_kernel_crash"
        );
        assert_eq!(demangle("ggml_graph_compute"), "ggml_graph_compute");
        assert_eq!(demangle("_Zbad"), "_Zbad");
    }

    #[test]
    fn an_assertion_is_found_without_its_build_path() {
        let log = "x\n/home/u/llama.cpp/ggml/src/ggml-cpu/ggml-cpu.c:2870: GGML_ASSERT(a) failed\n";
        let site = find(log).unwrap();
        assert_eq!(
            site.assertion.as_deref(),
            Some("ggml-cpu.c:2870: GGML_ASSERT(a) failed")
        );
        assert_eq!(find("all fine"), None);
    }

    #[test]
    fn an_address_inside_this_binary_names_its_function() {
        let symbols = symbols().expect("this test binary has a symbol table");
        let here = demangle as *const () as usize;
        let (mut bias, mut found) = (0usize, None);
        // The test binary is position independent: find its load bias the
        // way the crash handler does.
        unsafe extern "C" fn first(
            info: *mut libc::dl_phdr_info,
            _: libc::size_t,
            out: *mut std::ffi::c_void,
        ) -> libc::c_int {
            unsafe { *(out as *mut usize) = (*info).dlpi_addr as usize };
            1
        }
        unsafe { libc::dl_iterate_phdr(Some(first), (&mut bias as *mut usize).cast()) };
        if let Some(name) = symbols.lookup(here - bias) {
            found = Some(name);
        }
        assert!(found.unwrap().ends_with("demangle"));
    }
}
