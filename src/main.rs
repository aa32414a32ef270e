//! The `clockwatch` binary: parse arguments, set up logging, run the subcommand, and turn any
//! error into one line on stderr and a non-zero exit code.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use clockwatch::cli::{Cli, Command, LogFormat};
use tracing_subscriber::EnvFilter;

// The daemon builds and drops a few dozen small strings for every event it writes (row images,
// names, details, the canonical content); with glibc's allocator, allocating and freeing them
// was about a fifth of the daemon's instructions in a backlog drain (callgrind, bench/daemon).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.global.log_format);
    // The daemon runs on one thread. Its work is a conversation with PostgreSQL, one batch at a
    // time, and on a multi-threaded runtime every message crossed threads between the drain
    // task and the connection's task, a wake-up of another thread each way: 35-37 us of the
    // daemon's CPU per event in steady state against 20-27 on one thread, and a backlog drained
    // 19-23% faster (bench/README.md). The other commands keep the multi-threaded runtime,
    // where an export formats one page while the next arrives.
    let mut builder = match cli.command {
        Command::Run => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(clockwatch::cmd::dispatch(cli)) {
        Ok(code) => code,
        // `clockwatch export | head`: the reader has what it wanted.
        Err(clockwatch::Error::BrokenPipe) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr, plain for journald or JSON for log shippers; `CLOCKWATCH_LOG` (or
/// `RUST_LOG`) sets the filter, default `info`.
fn init_logging(format: LogFormat) {
    let filter = std::env::var("CLOCKWATCH_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
