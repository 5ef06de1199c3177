//! The command line, as clap derive types: raw flag values only. Each
//! subcommand's `run` in `cmd/` turns them into the objects that do the work.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "llama-sweep",
    version,
    about = "Find the fastest llama.cpp configuration for your model, machine and workload by measuring it",
    long_about = "llama-sweep runs a parameter sweep of llama.cpp (quantization, n_batch, n_ubatch, n_ctx, \
threads, GPU layers, flash attention, KV-cache types, mmap ...) described in a sweep.toml. Every trial runs \
in its own process, so a crash, an out-of-memory or a hang is a recorded row, not the end of the sweep. \
Results go to reports/<name>/ (results.csv, results.parquet, manifest.json, logs/), with a \
self-contained report.html and plots/, and the best configuration is written as config.yaml, ready for \
an app that calls llama_cpp.Llama(**llm).",
    after_help = "Examples:\n  \
llama-sweep plan                  # show the trials sweep.toml describes\n  \
llama-sweep run                   # run them; writes reports/<name>/report.html and config.yaml\n  \
llama-sweep report reports/demo   # write report.html and plots/ again from stored results\n  \
llama-sweep export reports/demo --format server-args   # the winner as a llama-server command line\n  \
llama-sweep compare reports/before reports/after       # what an upgrade changed"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a sweep: measure every trial, store the rows, recommend the best
    #[command(
        long_about = "Run the sweep described in a sweep.toml. Each trial runs as a separate \
`llama-sweep trial` process under the [trial] timeout; its llama.cpp log is saved to \
reports/<name>/logs/<trial_id>.log. Rows are appended to results.csv (and results.parquet \
rewritten) after every trial. Trials already recorded in the output folder are skipped, so \
running the same sweep again continues where it stopped. Quantizations listed under \
`quantize = [...]` are derived first with llama.cpp's quantizer and cached under models/derived/.\n\n\
Which trials run is the [sweep] strategy's choice: \"grid\" (all), \"random\", or \"bayes\" \
(Bayesian optimization, for spaces too large to run in full: set max_trials or max_hours). At the \
end the best [confirm] top trials are measured again, interleaved, and the winner is picked on \
those runs (confirm.csv, recommendation.json).\n\n\
Before the trials, a backend self-test runs each model variant briefly with the sweep's \
settings; where llama.cpp's kernels crash or return NaN it tries repack = false (then flash \
attention off) on knobs the sweep leaves unset, forces what works on that variant's trials, and \
says so. If the first trials all fail the same way, the sweep stops early with a diagnosis.\n\n\
Ctrl-C once stops the running trial, keeps everything recorded and says how to resume; twice \
exits at once. One sweep at a time can write to an output folder.",
        after_help = "Examples:\n  \
llama-sweep run                              # uses ./sweep.toml\n  \
llama-sweep run my-model.toml --top 5        # show the 5 best at the end\n  \
nohup llama-sweep run --max-hours 8 &        # overnight: stop in time for breakfast\n  \
llama-sweep run --fresh                      # start over, old results moved aside\n\n\
Exit status: 0 finished and recommended a configuration; 1 unexpected error; 2 bad sweep file or \
arguments (nothing written); 3 output folder unusable (locked, not writable, or its rows were \
measured under another workload or objective); 4 writing results failed (disk full); 5 \
interrupted; 6 budget reached with trials left; 7 finished but no trial is feasible; 8 \
llama.cpp's kernels failed the backend self-test for every model variant (no trial ran); 9 the \
first trials all failed the same way (stopped early; run again once the cause is fixed); 11 \
other processes kept the machine busy longer than [trial] busy_wait_s (run again when it is \
quiet)."
    )]
    Run(RunArgs),

    /// Measure trials of a sweep as one of several workers sharing its folder
    #[command(
        long_about = "Work on a sweep together with other workers (on this machine, other GPUs or \
other nodes) that share its output folder, e.g. on a network filesystem. Each worker claims the \
next unmeasured trial of the plan (an exclusive file create under reports/<name>/claims/, safe \
on NFS; the claim's lease is renewed while the trial runs and taken over when it runs out, or \
at once when its process on this host is gone), measures it, appends the row to its own \
reports/<name>/workers/<worker>.csv, and goes on until no trial is left unclaimed. Every \
reader (status, report, export, a resumed run) merges the workers' rows. A worker runs no \
confirmation round and writes no report: `llama-sweep run` on the same sweep file, once the \
workers are done, measures anything they left, confirms the finalists on one device and writes \
report.html and config.yaml. Every row records host, worker and machine fingerprint.\n\n\
The worker's name is --name, else SLURM's <array job>_<task>, else <host>-<pid>.",
        after_help = "Examples:\n  \
llama-sweep worker --name w2                 # one more worker on ./sweep.toml's trials\n  \
CUDA_VISIBLE_DEVICES=0 llama-sweep worker big.toml --name gpu0 &\n  \
CUDA_VISIBLE_DEVICES=1 llama-sweep worker big.toml --name gpu1 &\n  \
wait; llama-sweep run big.toml        # leftovers, confirmation, report, config.yaml\n\n\
Exit status: as for run (0 when no trial is left for this worker)."
    )]
    Worker(WorkerArgs),

    /// Write (and submit) a SLURM job array of workers for a sweep
    #[command(
        long_about = "Write reports/<name>/slurm/worker.sbatch, a job array whose tasks each run \
`llama-sweep worker <sweep.toml>`, and reports/<name>/slurm/finish.sbatch, which runs \
`llama-sweep run <sweep.toml>` on one node after the array ends however it ended (afterany): it \
measures what the workers left, runs the confirmation round and writes the report and \
config.yaml. With --submit both are submitted with sbatch and the array's job id is printed. \
The output folder must be on a filesystem every node sees, and the nodes' clocks must agree \
(NTP) to well within the claims' lease (120 s). A task that SLURM stops (scancel, time limit, \
preemption) loses at most its trial in flight, which another task or the finishing job \
measures. `llama-sweep status` shows each worker and the jobs' state.",
        after_help = "Examples:\n  \
llama-sweep slurm --tasks 4 --time 2:00:00   # write ./sweep.toml's sbatch scripts\n  \
llama-sweep slurm big.toml --tasks 16 --partition gpu --gres gpu:1 --time 12:00:00 --submit\n  \
llama-sweep slurm big.toml --tasks 64 --throttle 8 --exclusive   # whole CPU nodes, 8 at a time\n  \
llama-sweep status reports/big"
    )]
    Slurm(SlurmArgs),

    /// Show the trials a sweep would run, in order, without running anything
    #[command(
        long_about = "Print the trials of a sweep.toml: how many, in which order (model-level \
parameters change least often, as in llama-bench), their stable ids, which derived models would be \
made, and which trials an earlier run already recorded. Nothing is written.",
        after_help = "Examples:\n  llama-sweep plan\n  llama-sweep plan examples/depth-and-users.toml"
    )]
    Plan(PlanArgs),

    /// Write a first sweep file for a model on this machine, saying why each axis is there
    #[command(
        long_about = "Write a commented sweep file for MODEL on this machine. It looks at what \
`doctor` looks at (the model's layers, experts, size and type; the GPUs this llama.cpp build sees \
and their free memory; the cores; the host memory and its bandwidth) and chooses the axes that \
matter here: threads and batch sizes on a CPU; every layer on a GPU the model fits, n_gpu_layers \
around where it stops fitting when it does not, n_cpu_moe around the layers whose experts must \
stay in host memory for an MoE model; depths for a long context (--context), n_parallel for \
several users (--users); quantizations to derive from an F16, BF16 or Q8_0 file, with a quality \
bound; a grid when the whole space fits the --budget by a first guess, else Bayesian search \
bounded by it. Each key has its reason above it. The file is written as <model>.toml unless -o \
names it, and never over an existing file; `llama-sweep plan` on it shows the trials.",
        after_help = "Examples:\n  \
llama-sweep init models/SmolLM2-135M-Instruct.Q4_1.gguf -o my-sweep.toml\n  \
llama-sweep init ~/models/Qwen3-30B-A3B-Q4_K_M.gguf --budget 8h --context 32768\n  \
llama-sweep init model.gguf --objective aggregate_tps --users 8\n  \
llama-sweep init model.gguf --app-python ~/app/.venv/bin/python   # verify the winner in your app\n  \
llama-sweep init model.gguf --gpu 24 --gpu 12   # for a node with a 24 GB and a 12 GB card"
    )]
    Init(InitArgs),

    /// List the knobs a sweep can turn: values, llama.cpp's default, each runtime's spelling
    #[command(
        long_about = "List every key [space] and [baseline] take in a sweep file, from the \
parameter table the sweep itself reads: what it does, the values it takes, llama.cpp's default, \
and how llama-server and llama-cpp-python spell it. With a knob's name, everything about that \
knob. --markdown prints the reference as Markdown: docs/knobs.md is that output (a test fails \
when the two differ).",
        after_help = "Examples:\n  \
llama-sweep knobs                       # one line per knob\n  \
llama-sweep knobs n_cpu_moe             # everything about one\n  \
llama-sweep knobs --markdown > docs/knobs.md"
    )]
    Knobs(KnobsArgs),

    /// Write the recommended configuration (config.yaml, llm.json, llama-server args or env)
    #[command(
        long_about = "Write the recommended configuration of a sweep again from its stored results: \
the confirmation round's winner, else the best trial that meets the objective's constraints, or \
the one given with --trial. Every parameter is written with the value the trial ran with, since \
defaults differ between llama-cpp-python, llama-server and llama.cpp. The file goes into the sweep \
folder under the format's name (config.yaml, llm.json, server-args.txt, llama-server.env) unless \
-o says where; -o - prints it.\n\n\
yaml, server-args and env start with # lines giving the measured figures; json holds nothing but \
Llama() keyword arguments. llama-server flags follow the llama.cpp this tool was built with: -ngl \
all (there -1 means auto), -fa on|off|auto, --load-mode mmap|none (older builds: --no-mmap), and \
--fit off so that nothing is changed to fit the free memory. llama.cpp reads no variable for \
--threads-batch; the env file says so in a comment.",
        after_help = "Examples:\n  \
llama-sweep export reports/demo                     # best trial → reports/demo/config.yaml\n  \
llama-sweep export reports/demo --trial 3f2a9c1b0d4e -o app/config.yaml\n  \
llama-sweep export reports/demo --format json       # → reports/demo/llm.json\n  \
sh -c \"$(llama-sweep export reports/demo --format server-args -o -)\"   # start llama-server\n  \
llama-sweep export reports/demo --format env -o /etc/llama-server.env"
    )]
    Export(ExportArgs),

    /// How far a sweep has got: done, failed, left, best so far, ETA
    #[command(
        long_about = "Show the state of a sweep's output folder: whether a sweep is running in it now, \
how many trials of its plan are recorded and how they ended, how many are left, the best so \
far, and the expected time left. It only reads, so it is safe while the sweep runs in another \
terminal.",
        after_help = "Examples:\n  llama-sweep status reports/demo\n  watch -n 60 llama-sweep status reports/demo"
    )]
    Status(StatusArgs),

    /// Simulate search strategies against a recorded full grid
    #[command(
        long_about = "Replay search strategies against the results of a full grid sweep: each \
proposal is answered by the recorded row (its mean plus noise drawn from its own spread; \
failures fail again). For each strategy, print how many trials it needed, over many seeds, \
before it had measured a configuration within 1%, 2% and 5% of the grid's best: median and \
quartiles. This is how the strategies are compared without a model. The objective (and its \
constraints) come from the manifest.json beside the results, unless --metric is given.",
        after_help = "Examples:\n  \
llama-sweep replay tests/fixtures/real-demo-grid/results.csv --seeds 5\n  \
llama-sweep replay reports/big-grid/results.csv\n  \
llama-sweep replay tests/fixtures/real-demo-grid --strategy bayes --budget 40 --seeds 50\n  \
llama-sweep replay tests/fixtures/synthetic-cpu-threads --metric ttft_ms --csv\n  \
llama-sweep replay tests/fixtures/real-demo-grid --confirm 0.05 --seeds 500\n  \
llama-sweep replay tests/fixtures/real-demo-grid --drops 0.05 --seeds 500\n  \
llama-sweep replay tests/fixtures/real-demo-grid --repetitions 0.05 --seeds 500"
    )]
    Replay(ReplayArgs),

    /// Write report.html and plots/ (PNG and SVG) from a sweep folder
    #[command(
        long_about = "Write the sweep's report: report.html, one self-contained page (no network, \
no scripts; plots inline) that opens in any browser, and every plot as PNG and SVG under plots/. \
The page answers, top to bottom: what to run (the recommended configuration, its measured speed, \
the constraints it meets, the command that reproduces it); how much faster it is than your \
[baseline] and than llama.cpp's defaults, with 95% confidence intervals; the machine, build and \
warnings; which parameters matter (each one's effect with an interval, largest first) and what \
the data says about common tuning claims; the Pareto front of speed against memory, the \
optimization history, pp against tg; and every trial, failures with their reason. \
`llama-sweep run` writes it at the end of every sweep; run this to write it again, e.g. while a \
sweep is still running or after copying a folder from another machine.",
        after_help = "Examples:\n  \
llama-sweep report reports/demo                      # → reports/demo/report.html and plots/\n  \
llama-sweep report reports/demo -o /tmp/r/demo.html  # plots go to /tmp/r/plots/"
    )]
    Report(ReportArgs),

    /// Compare two sweeps of the same space, e.g. before and after a llama.cpp or driver upgrade
    #[command(
        long_about = "Compare sweep B with sweep A configuration by configuration. Rows are matched \
by model (name and quantization), every parameter and the workload's token counts, not by trial \
id, so a rebuilt or moved model file still matches; repetitions and warmup may differ. For each \
configuration that completed in both, B/A of the metric is shown with its 95% confidence interval \
(Welch on the logarithms of the per-repetition samples; from mean ± sd where samples are \
missing): a change is significant when the interval excludes 1. The summary gives the geometric \
mean of the ratios over all those configurations (its interval says how consistently they moved), \
how many got significantly faster or slower, the configurations that failed in one sweep only \
(with the reason), and those found in only one of them.\n\n\
The metric is the objective of A's manifest.json (B's must agree), or --metric. A and B are \
sweep folders or results.csv files. It is an error when they share no configuration (the message \
says which column differs) or were measured for different objective metrics.",
        after_help = "Examples:\n  \
llama-sweep compare reports/before reports/after\n  \
llama-sweep compare reports/b4500 reports/b4800 --metric pp_tps --top 50\n  \
llama-sweep compare old/results.csv new/results.csv --csv > changes.csv\n\n\
Exit status: 0 compared (whatever changed); 1 the sweeps cannot be compared or read."
    )]
    Compare(CompareArgs),

    /// Check the llama.cpp build, CPU, memory bandwidth and models before a sweep
    #[command(
        long_about = "Say what this machine and this build of llama.cpp can do for a sweep's models, \
before running it: the llama.cpp build (backends compiled in, whether GPU offload works, each device \
with its free memory); the CPU (model, cores, the instruction sets llama.cpp uses) and RAM; the host \
memory read bandwidth, measured (about two seconds); and for each model its architecture, layers, \
parameters, quantization, size, the bytes one generated token reads, its training context, the \
memory its weights and KV cache need at the chosen n_ctx (and whether that fits in RAM and on each \
GPU), and the generation speed that memory bandwidth allows (bandwidth / bytes read per token: no \
setting can beat it).\n\n\
Models come from --model and from the sweep's [[model]] entries; SWEEP defaults to ./sweep.toml \
when it exists. Warnings say what to fix first: GPU layers asked of a build with no GPU backend, a \
model that does not fit in memory, an n_ctx beyond the model's training context. Nothing is written.",
        after_help = "Examples:\n  \
llama-sweep doctor                                  # ./sweep.toml's models, if it exists\n  \
llama-sweep doctor my-model.toml --n-ctx 8192\n  \
llama-sweep doctor --model models/qwen2.5-7b-q4_k_m.gguf --type-k q8_0 --type-v q8_0"
    )]
    Doctor(DoctorArgs),

    /// Measure the recommended configuration where the app runs it: llama-cpp-python, llama-server
    #[command(
        long_about = "Load a sweep's recommended configuration and its baseline in the runtimes \
your app really uses, exactly as exported, and measure the app's request shape there (streaming, \
unique prompts, end of text suppressed): llama-cpp-python's Llama(**llm) in the app's Python \
interpreter (--python), and llama-server started with the exported arguments on a loopback port \
(--server). llama-sweep's own runtime measures the same configurations in the same rounds, in a \
rotating order, so each round gives a paired ratio (app over sweep generation t/s) and the rounds \
a 95% interval. Where the app differs beyond the noise the likeliest cause is named from the \
evidence (a runtime built without GPU offload, fewer layers offloaded, fewer CPUs than threads, \
another llama.cpp, time spent outside llama.cpp) with what to do.\n\n\
Without flags the sweep file's [app] table names the runtimes. `llama-sweep run` does this by \
itself at the end when [app] names one. Results go to <folder>/verify.json (every session, raw) \
and the logs to <folder>/verify/; config.yaml's header and report.html are written again with \
the verified figures.",
        after_help = "Examples:\n  \
llama-sweep verify reports/demo --python ~/.cache/llama-sweep/llama-cpp-python-venv/bin/python\n  \
llama-sweep verify reports/demo --python ~/app/.venv/bin/python\n  \
llama-sweep verify reports/demo --server /opt/llama.cpp/build/bin/llama-server --rounds 8\n\n\
The first example's Python is the venv scripts/check-llama-cpp-python.sh makes.\n\n\
Exit status: 0 verified in every runtime named; 1 unexpected error; 2 bad arguments or nothing \
to verify; 10 a runtime could not run the configuration (the reason and its log are printed; \
the sweep's results are untouched)."
    )]
    Verify(VerifyArgs),

    /// Measure a model's quality: perplexity, and KL divergence from a reference
    #[command(
        long_about = "Measure the quality of one GGUF model the way llama.cpp's perplexity tool does: \
the evaluation text is cut into chunks of --n-ctx tokens, each evaluated from an empty cache, and \
the second half of each chunk is scored. Prints the perplexity (lower is better) and, with \
--reference (usually a higher-precision quantization of the same model), the mean KL divergence of \
the model's token distributions from the reference's (0 = identical), its 99th percentile, and how \
often both put the same token first (top-1 agreement).\n\n\
`llama-sweep run` does this for every variant of a sweep by itself ([quality] in sweep.toml); this \
command is for one model, a quick check or a script. The default text is bundled with llama-sweep \
(Moby-Dick chapters 1-15, public domain; data/eval/README.md); your app's own prompts make a better one.",
        after_help = "Examples:\n  \
llama-sweep quality models/SmolLM2-135M-Instruct.Q4_1.gguf --chunks 2   # the demo's perplexity\n  \
llama-sweep quality models/m-Q4_K_M.gguf --reference models/m-Q8_0.gguf\n  \
llama-sweep quality models/m-Q4_K_M.gguf --text my-prompts.txt --chunks 20\n  \
llama-sweep quality models/m-Q4_K_M.gguf --reference models/m-Q8_0.gguf --json   # for scripts\n\n\
Exit status: 0 measured; 1 a measurement failed (the reason is printed); 2 bad arguments."
    )]
    Quality(QualityArgs),

    /// Measure one trial (run by `llama-sweep run`; reads a job on stdin)
    #[command(hide = true)]
    Trial,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The sweep description
    #[arg(default_value = "sweep.toml")]
    pub sweep: PathBuf,
    /// How many of the best trials to list at the end
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Start over: move the existing output folder aside (to <name>.<time>) first
    #[arg(long)]
    pub fresh: bool,
    /// Add to an output folder whose rows were measured with another workload or objective
    #[arg(long)]
    pub allow_changed: bool,
    /// Extra tries for a trial that crashed or timed out (failed and oom trials are not retried)
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub retries: u32,
    /// Stop once this many trials of the plan are recorded (overrides [sweep] max_trials)
    #[arg(long, value_name = "N")]
    pub max_trials: Option<usize>,
    /// Stop before a trial that would end after this many hours (overrides [sweep] max_hours)
    #[arg(long, value_name = "HOURS")]
    pub max_hours: Option<f64>,
    /// For tests only: every child misbehaves this way on purpose (crash, segfault, hang,
    /// garbage, exit, instant, sleep:<s>, crash-when-repacked, nan-when-repacked); every row is
    /// marked as made under a test fault
    #[arg(long, value_name = "FAULT", hide = true)]
    pub test_fault: Option<crate::protocol::TestFault>,
    /// Start workers first, then finish: per-gpu (one per GPU, each pinned to its device) or a
    /// number; on a CPU-only machine more than one needs --cpus
    #[arg(long, value_name = "per-gpu|N")]
    pub workers: Option<String>,
    /// With --workers: one disjoint CPU set per worker, separated by / (e.g. 0-7/8-15)
    #[arg(long, value_name = "SETS", requires = "workers")]
    pub cpus: Option<String>,
    /// Set by `llama-sweep worker`: measure as one of several workers.
    #[arg(skip)]
    pub worker: Option<WorkerMode>,
}

/// How a worker shares its sweep folder.
#[derive(Debug, Clone)]
pub struct WorkerMode {
    pub name: String,
    /// How long a claim holds without renewal.
    pub lease: std::time::Duration,
    /// Other workers run on the same CPU cores (said in each row's machine).
    pub shares_cores: bool,
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The sweep description
    #[arg(default_value = "sweep.toml")]
    pub sweep: PathBuf,
    /// This worker's name (letters, digits, - _ .) [default: SLURM's job_task, else host-pid]
    #[arg(long)]
    pub name: Option<String>,
    /// Seconds a claim holds without renewal; it is renewed four times as often
    #[arg(long, default_value_t = 120.0, value_name = "SECONDS")]
    pub lease_s: f64,
    /// Extra tries for a trial that crashed or timed out
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub retries: u32,
    /// Stop once this many trials of the plan are recorded by all workers together
    #[arg(long, value_name = "N")]
    pub max_trials: Option<usize>,
    /// Stop before a trial that would end after this many hours of this worker
    #[arg(long, value_name = "HOURS")]
    pub max_hours: Option<f64>,
    /// For tests only (see `run --test-fault`)
    #[arg(long, value_name = "FAULT", hide = true)]
    pub test_fault: Option<crate::protocol::TestFault>,
    /// Set by `run --workers per-gpu` when the GPU workers cannot have CPUs
    /// of their own: each row's machine says so
    #[arg(long, hide = true)]
    pub shares_cores: bool,
}

#[derive(Debug, Args)]
pub struct SlurmArgs {
    /// The sweep description
    #[arg(default_value = "sweep.toml")]
    pub sweep: PathBuf,
    /// Tasks in the array: one worker each
    #[arg(long, value_name = "N")]
    pub tasks: u32,
    /// At most this many tasks at once (the array's %K)
    #[arg(long, value_name = "K")]
    pub throttle: Option<u32>,
    /// SLURM partition
    #[arg(long)]
    pub partition: Option<String>,
    /// Generic resources per task, e.g. gpu:1
    #[arg(long)]
    pub gres: Option<String>,
    /// Time limit per task (SLURM's format, e.g. 12:00:00)
    #[arg(long)]
    pub time: Option<String>,
    /// A node to itself per task (CPU trials: nothing else shares its cores)
    #[arg(long)]
    pub exclusive: bool,
    /// CPUs per task
    #[arg(long, value_name = "N")]
    pub cpus_per_task: Option<u32>,
    /// Submit with sbatch and print the array's job id
    #[arg(long)]
    pub submit: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The sweep description
    #[arg(default_value = "sweep.toml")]
    pub sweep: PathBuf,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The GGUF model to sweep
    pub model: PathBuf,
    /// Where to write the sweep file [default: <model name>.toml here]
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// What "best" means: request_tps (generation speed in the app's request, after its
    /// prompt), ttft_ms (time to its first token) or output_tps (tokens per second of all
    /// users' requests together)
    #[arg(long, default_value = "request_tps", value_parser = ["request_tps", "ttft_ms", "output_tps"])]
    pub objective: String,
    /// How long the sweep may take (e.g. 30m, 2h, 8h)
    #[arg(long, default_value = "2h")]
    pub budget: humantime::Duration,
    /// The app's Python interpreter, whose llama-cpp-python the winner is verified in
    #[arg(long, value_name = "PYTHON")]
    pub app_python: Option<PathBuf>,
    /// Users the app serves at once (sweeps n_parallel up to it)
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub users: u32,
    /// The longest conversation the app holds, in tokens [default: 4096, or the model's
    /// trained context if smaller]
    #[arg(long, value_name = "TOKENS")]
    pub context: Option<u32>,
    /// The app's prompt, in tokens: the request each trial measures [default: 512]
    #[arg(long, value_name = "TOKENS", conflicts_with = "prompts",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub prompt_tokens: Option<u32>,
    /// Sample prompts the app sends (JSON Lines with "prompt" or "messages", or text with a
    /// line of --- between prompts): the request's prompt is their median length by the
    /// model's own tokenizer
    #[arg(long, value_name = "FILE")]
    pub prompts: Option<PathBuf>,
    /// The app's answer, in tokens [default: 256]
    #[arg(long, value_name = "TOKENS", value_parser = clap::value_parser!(u32).range(2..))]
    pub answer_tokens: Option<u32>,
    /// Write the sweep for GPUs with this much free memory (GiB; repeat for each GPU)
    /// instead of the ones this llama.cpp build sees: for a machine you will run it on
    #[arg(long = "gpu", value_name = "GIB")]
    pub gpus: Vec<f64>,
}

#[derive(Debug, Args)]
pub struct KnobsArgs {
    /// Show everything about this knob only
    #[arg(value_parser = clap::builder::PossibleValuesParser::new(crate::knobs::names()))]
    pub knob: Option<String>,
    /// Print the reference as Markdown (docs/knobs.md)
    #[arg(long, conflicts_with = "knob")]
    pub markdown: bool,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// A results.csv of a full grid (or the folder holding it)
    pub results: PathBuf,
    /// grid, random, bayes, or all
    #[arg(long, default_value = "all")]
    pub strategy: String,
    /// Trials each simulated search may use (default: the grid's size)
    #[arg(long)]
    pub budget: Option<usize>,
    /// Seeds to simulate per strategy
    #[arg(long, default_value_t = 20)]
    pub seeds: u64,
    /// Optimize this metric instead of the manifest's (request_tps, ttft_ms, e2e_ms, tg_tps, ...)
    #[arg(long)]
    pub metric: Option<String>,
    /// Print CSV (strategy, within, median, q1, q3, missed, seeds, budget, grid) for scripts
    #[arg(long)]
    pub csv: bool,
    /// Replay the confirmation round instead: the best 3 measured again in rounds, fixed (3) and
    /// sequential (3 to 8, until decided), each run off by its recorded spread and by NOISE
    /// more (sd of its logarithm; 0.05 is what the demo's confirmation runs of 2026-12-03 show);
    /// prints how often each decides, how often wrongly against the recorded means, and the
    /// rounds used
    #[arg(long, value_name = "NOISE", conflicts_with = "drops", value_parser = fraction)]
    pub confirm: Option<f64>,
    /// Replay early drops instead: the grid in its recorded order, each trial's runs drawn from
    /// its recorded mean and spread and off by a swing of NOISE common to the trial's runs (sd of
    /// its logarithm); for margins of 10%, 20% and 30% prints the trials dropped, the trial time
    /// saved, how often the grid's best was dropped and how often nothing within 2% of it was
    /// measured to the end
    #[arg(long, value_name = "NOISE", value_parser = fraction)]
    pub drops: Option<f64>,
    /// Replay adaptive repetitions instead: the grid as with --drops (early drops at the default
    /// margin), a trial's repetitions fixed, fewer once its interval lies below the best trial's
    /// mean, or also more (up to twice) while it holds it; prints each policy's trial time, runs,
    /// and how often the grid's best (within 2%) was not among the finalists handed to the
    /// confirmation
    #[arg(long, value_name = "NOISE", conflicts_with_all = ["drops", "confirm"], value_parser = fraction)]
    pub repetitions: Option<f64>,
}

/// A noise as a fraction, 0 to 1 (the sd of a logarithm: 0.05 is about 5%).
fn fraction(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err("must be between 0 and 1 (e.g. 0.05 for 5%)".into())
    }
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The sweep's output folder, e.g. reports/demo
    pub folder: PathBuf,
    /// Where to write the page (default: <folder>/report.html); plots/ goes beside it
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct QualityArgs {
    /// The GGUF model to measure
    pub model: PathBuf,
    /// A higher-precision variant of the same model to compare against (KL divergence, top-1)
    #[arg(long, value_name = "GGUF")]
    pub reference: Option<PathBuf>,
    /// The evaluation text (UTF-8; default: the bundled one)
    #[arg(long, value_name = "FILE")]
    pub text: Option<PathBuf>,
    /// Tokens per chunk (llama.cpp's perplexity -c)
    #[arg(long, default_value_t = 512, value_name = "N")]
    pub n_ctx: u32,
    /// At most this many chunks (llama.cpp's perplexity --chunks)
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub chunks: u32,
    /// K cache type (f16, q8_0, ...)
    #[arg(long, default_value = "f16", value_name = "TYPE")]
    pub type_k: String,
    /// V cache type (a quantized one turns flash attention on)
    #[arg(long, default_value = "f16", value_name = "TYPE")]
    pub type_v: String,
    /// CPU threads (default: the physical cores)
    #[arg(long, value_name = "N")]
    pub threads: Option<i32>,
    /// Print the measurements as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The sweep to compare against (before): a sweep folder or its results.csv
    pub a: PathBuf,
    /// The sweep to compare (after): a sweep folder or its results.csv
    pub b: PathBuf,
    /// Compare this metric instead of the manifests' objective (request_tps, ttft_ms, e2e_ms, tg_tps, ...)
    #[arg(long)]
    pub metric: Option<String>,
    /// How many configurations to list, most changed first
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub top: usize,
    /// Print CSV (one line per configuration in either sweep) for scripts
    #[arg(long)]
    pub csv: bool,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The sweep whose models and settings to check [default: ./sweep.toml when it exists; with
    /// --model, one that cannot be read is warned about and left out]
    pub sweep: Option<PathBuf>,
    /// A GGUF model to check, besides the sweep's (repeatable)
    #[arg(long = "model", value_name = "FILE")]
    pub models: Vec<PathBuf>,
    /// Context size for the memory estimate [default: the sweep's largest n_ctx, else 4096]
    #[arg(long, value_name = "N")]
    pub n_ctx: Option<u32>,
    /// KV cache key type for the memory estimate (f32, f16, bf16, q8_0, q4_0, q4_1, iq4_nl, q5_0, q5_1)
    #[arg(long, value_name = "TYPE", default_value = "f16", value_parser = kv_type)]
    pub type_k: crate::knobs::KvType,
    /// KV cache value type for the memory estimate
    #[arg(long, value_name = "TYPE", default_value = "f16", value_parser = kv_type)]
    pub type_v: crate::knobs::KvType,
    /// The app's runtimes to check beside llama-sweep's build [default: the sweep's [app]]
    #[command(flatten)]
    pub app: AppArgs,
    /// For tests only: the self-test children misbehave this way (see `run --test-fault`)
    #[arg(long, value_name = "FAULT", hide = true)]
    pub test_fault: Option<crate::protocol::TestFault>,
}

fn kv_type(name: &str) -> Result<crate::knobs::KvType, String> {
    crate::knobs::KvType::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = crate::knobs::KvType::ALL.iter().map(|t| t.name()).collect();
        format!("unknown KV cache type; one of {}", names.join(", "))
    })
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The sweep's output folder, e.g. reports/demo
    pub folder: PathBuf,
    #[command(flatten)]
    pub app: AppArgs,
    /// Rounds (each runs every configuration once in every runtime) [default: [app] rounds, else 5]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rounds: Option<u32>,
    /// Measured requests per session [default: [app] repetitions, else the workload's]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub repetitions: Option<u32>,
}

/// The app's runtimes, named on the command line.
#[derive(Debug, Clone, Args)]
pub struct AppArgs {
    /// The app's Python interpreter, with llama-cpp-python installed (e.g. ~/app/.venv/bin/python)
    #[arg(long, value_name = "PYTHON")]
    pub python: Option<PathBuf>,
    /// The llama-server binary the app runs
    #[arg(long, value_name = "LLAMA_SERVER")]
    pub server: Option<PathBuf>,
}

impl AppArgs {
    pub fn runtimes(&self) -> crate::config::AppRuntimes {
        crate::config::AppRuntimes {
            python: self.python.clone(),
            server: self.server.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The sweep's output folder, e.g. reports/demo
    pub folder: PathBuf,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The sweep's output folder, e.g. reports/demo
    pub folder: PathBuf,
    /// Export this trial instead of the best one (an id, or at least 4 leading characters)
    #[arg(long)]
    pub trial: Option<String>,
    /// What to write
    #[arg(long, value_enum, default_value = "yaml")]
    pub format: crate::export::Format,
    /// Where to write, - for stdout [default: the format's file in the sweep folder]
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}
