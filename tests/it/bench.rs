//! The benchmarks are run by hand (figures in bench/README.md), but a tiny run of the daemon,
//! prune, floor, instructions and append benchmarks here keeps the scripts from rotting. Only their output's shape and
//! counts are checked, never a timing.

use crate::support::{admin_url, binary};

fn run_bench(script: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = std::process::Command::new(script)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CLOCKWATCH_BENCH_DATABASE_URL", admin_url())
        .env("CLOCKWATCH_BENCH_BIN", binary())
        .output()
        .expect("run bench script");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{script} {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The cells of the table row of `scenario` (its name first).
fn row<'a>(output: &'a str, scenario: &str) -> Vec<&'a str> {
    output
        .lines()
        .find(|l| l.starts_with(&format!("{scenario} ")))
        .unwrap_or_else(|| panic!("no {scenario} line in:\n{output}"))
        .split_whitespace()
        .collect()
}

/// The figure printed on the line starting with `label`.
fn figure(output: &str, label: &str) -> String {
    output
        .lines()
        .find(|l| l.starts_with(label))
        .and_then(|l| l.split_whitespace().last())
        .unwrap_or_else(|| panic!("no {label:?} line in:\n{output}"))
        .to_string()
}

#[test]
fn the_daemon_benchmark_drains_every_staged_change() {
    let out = run_bench("bench/daemon", &["2000"], &[]);
    assert_eq!(figure(&out, "changes"), "2000", "{out}");
    assert_eq!(figure(&out, "events "), "2000", "{out}");
    assert!(
        figure(&out, "events/s").parse::<f64>().unwrap() > 0.0,
        "{out}"
    );
}

#[test]
fn the_append_benchmark_writes_the_batch_in_every_variant() {
    // bench/append fails when a variant did not write the whole batch.
    let out = run_bench("bench/append", &["50", "1"], &[]);
    let per_event: Vec<f64> = out
        .lines()
        .filter(|l| l.ends_with("us/event"))
        .map(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            cells[cells.len() - 2].parse().expect("microseconds")
        })
        .collect();
    assert_eq!(per_event.len(), 10, "{out}");
    assert!(per_event.iter().all(|us| *us > 0.0), "{out}");
}

#[test]
fn the_prune_benchmark_removes_each_month_it_fills() {
    let out = run_bench("bench/prune", &["3000"], &[]);
    let removed: Vec<&str> = out
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().last().unwrap_or(""))
        .collect();
    assert_eq!(removed, ["1000", "3000"], "{out}");
}

#[test]
fn the_floor_benchmark_measures_every_variant_against_bare() {
    // One second per run: long enough for pgbench to commit transactions through each variant's
    // triggers, which fail the script if any of them errors.
    let out = run_bench(
        "bench/floor",
        &["1", "1"],
        &[("CLOCKWATCH_BENCH_SCENARIOS", "insert update1")],
    );
    let header: Vec<&str> = out
        .lines()
        .find(|l| l.starts_with("scenario"))
        .unwrap_or_else(|| panic!("no header in:\n{out}"))
        .split_whitespace()
        .collect();
    assert_eq!(
        header[3..],
        [
            "noop",
            "one_row",
            "images",
            "images_row",
            "typed",
            "text",
            "text_ws",
            "text_definer",
            "text_batch",
            "batch_definer",
            "journal_definer",
            "clockwatch"
        ],
        "{out}"
    );
    for scenario in ["insert", "update1"] {
        let line = row(&out, scenario);
        let ratios: Vec<f64> = line[2..]
            .iter()
            .map(|cell| cell.trim_end_matches('x').parse().expect("a ratio"))
            .collect();
        assert_eq!(ratios.len(), 12, "{out}");
        assert!(ratios.iter().all(|r| *r > 0.0), "{out}");
    }
}

#[test]
fn the_instructions_benchmark_counts_what_capture_adds_to_each_statement() {
    // Two statements of each scenario: bench/instructions runs them in a single-user backend of
    // a cluster of its own under callgrind, bare and with Clockwatch's triggers.
    let out = run_bench(
        "bench/instructions",
        &["2"],
        &[
            ("CLOCKWATCH_BENCH_SCENARIOS", "insert update1"),
            ("CLOCKWATCH_BENCH_VARIANTS", "clockwatch"),
        ],
    );
    for scenario in ["insert", "update1"] {
        // "insert   337336   496424 (+159088)"
        let line = row(&out, scenario);
        let bare: i64 = line[1].parse().expect("bare's count");
        let audited: i64 = line[2].parse().expect("the audited count");
        let added: i64 = line[3]
            .trim_matches(|c| c == '(' || c == ')' || c == '+')
            .parse()
            .expect("capture's part");
        assert!(bare > 0, "{out}");
        assert_eq!(added, audited - bare, "{out}");
        // Capture stages a row per statement: it cannot cost nothing.
        assert!(added > 10_000, "{out}");
    }
}
