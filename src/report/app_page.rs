//! The page's "In your app" section: the recommended configuration and the
//! baseline measured in the app's own runtimes (verify.json), each against
//! llama-sweep's runtime in the same rounds, with the verdict, the likeliest
//! cause and its fix; or, when nothing was verified, the command that would
//! do it. All outside text goes through [`esc`].

use super::data::ReportData;
use super::page::esc;
use crate::stats::RatioInterval;
use crate::verify::diagnose::Verdict;
use crate::verify::record::Ratio;
use std::fmt::Write;

fn ratio_cell(r: Option<&Ratio>) -> String {
    match r.map(|r| RatioInterval::from(*r)) {
        Some(RatioInterval {
            ratio,
            low: Some(l),
            high: Some(h),
        }) => format!("{ratio:.2}× <span class=\"muted\">({l:.2}–{h:.2})</span>"),
        Some(r) => format!("{:.2}×", r.ratio),
        None => "—".into(),
    }
}

pub fn section(h: &mut String, data: &ReportData) {
    h.push_str("<h2 id=\"app\">In your app</h2>\n");
    let Some(v) = &data.verification else {
        if let Some(runtime) = data.winner().and_then(|w| w.runtime.as_deref()) {
            let _ = writeln!(
                h,
                "<p>The recommendation was {}.</p>",
                esc(&crate::verify::render::measured_in(runtime))
            );
            return;
        }
        let _ = writeln!(
            h,
            "<p>Not verified in your app. The figures above are llama.cpp as llama-sweep builds it; \
             your app runs its own (llama-cpp-python, built by pip, or some llama-server). \
             <code>{}</code></p>",
            esc(&crate::verify::render::not_verified_line(
                &data.folder.display().to_string()
            ))
        );
        return;
    };
    let _ = writeln!(
        h,
        "<p>The recommended configuration{} loaded in the runtimes your app uses, exactly as \
         exported, and sent the app's request ({}); llama-sweep's own runtime measured the same \
         configurations in the same {} rounds, in a rotating order. The ratio is the app's \
         generation t/s over llama-sweep's, taken within each round (a slow minute of the machine \
         hits both) with its 95% interval over the rounds. Verified {}.</p>",
        if v.results.iter().any(|r| r.role.is_some()) {
            " and the baseline"
        } else {
            ""
        },
        esc(&v.request),
        v.rounds,
        esc(&v.verified_at)
    );
    h.push_str("<table class=\"kv\">");
    for info in &v.runtimes {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td></tr>",
            esc(info.kind.name()),
            esc(&info.describe())
        );
    }
    h.push_str(
        "</table>\n<table class=\"data\"><tr><th>configuration</th><th>runtime</th>\
                <th>generation in the app</th><th>llama-sweep, same rounds</th><th>app / sweep</th>\
                <th>first token, app / sweep</th><th>verdict</th></tr>\n",
    );
    for r in &v.results {
        let name = crate::verify::info_of(&v.runtimes, r.runtime)
            .map_or(r.runtime.name().to_string(), |i| i.version.clone());
        let who = match r.role {
            None => format!("recommended {}", r.trial_id),
            Some(_) => format!("baseline {}", r.trial_id),
        };
        let tps = |x: Option<f64>| x.map_or("—".into(), |v| format!("{v:.1} t/s"));
        let verdict = match (&r.error, r.verdict) {
            (Some(e), None) => format!("<span class=\"bad\">not measured: {}</span>", esc(e)),
            (_, Some(Verdict::Slower)) => {
                format!("<span class=\"bad\">{}</span>", Verdict::Slower.phrase())
            }
            (_, Some(v)) => v.reading(r.ratio.as_ref().and_then(|x| x.low.zip(x.high))),
            (None, None) => "—".into(),
        };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{verdict}</td></tr>",
            esc(&who),
            esc(&name),
            tps(r.app_gen_tps),
            tps(r.sweep_gen_tps),
            ratio_cell(r.ratio.as_ref()),
            ratio_cell(r.ttft_ratio.as_ref()),
        );
    }
    h.push_str("</table>\n");
    for r in v.results.iter().filter(|r| !r.causes.is_empty()) {
        let _ = write!(
            h,
            "<p><b>{} in {}</b>:</p><ul>",
            esc(&r.trial_id),
            esc(r.runtime.name())
        );
        for c in &r.causes {
            let _ = write!(
                h,
                "<li>{} <br><i>Fix:</i> <code>{}</code></li>",
                esc(&c.what),
                esc(&c.fix)
            );
        }
        h.push_str("</ul>\n");
    }
    for f in &v.failures {
        let _ = writeln!(
            h,
            "<div class=\"warn\">⚠ {} ({}) could not be used: {}</div>",
            esc(f.runtime.name()),
            esc(&f.program),
            esc(&f.reason)
        );
    }
}
