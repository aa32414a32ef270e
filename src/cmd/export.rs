//! `clockwatch export`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;

use crate::cli::{ExportFormat, FilterOpts, GlobalOpts};
use crate::config::Config;
use crate::db;
use crate::error::{Error, Result};
use crate::export::Format;

pub async fn export(
    global: &GlobalOpts,
    config: &Config,
    opts: &FilterOpts,
    output: Option<&Path>,
    format: ExportFormat,
    excel: bool,
) -> Result<ExitCode> {
    let format = match format {
        ExportFormat::Csv => Format::Csv,
        ExportFormat::Jsonl => Format::JsonLines,
    };
    if excel && format != Format::Csv {
        return Err(Error::Input("--excel only applies to CSV".into()));
    }
    let mut client = db::connect_once(&super::database_url(global, config)?, "cli").await?;
    let (tx, filter) = super::filtered(&mut client, config, opts, super::Span::Export).await?;
    let mut out: Box<dyn Write> = match output {
        Some(path) => {
            Box::new(BufWriter::new(File::create(path).map_err(|e| {
                Error::Output(format!("{}: {e}", path.display()))
            })?))
        }
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    let rows = crate::export::export(&tx, &filter, format, excel, &mut out).await?;
    if let Some(path) = output {
        eprintln!("wrote {rows} events to {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
