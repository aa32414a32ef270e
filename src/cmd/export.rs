//! `clockwatch export`.

use std::io::{BufWriter, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::process::ExitCode;

use crate::cli::{ExportFormat, FilterOpts, GlobalOpts};
use crate::config::Config;
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
    let (mut client, config) = super::reading_client(global, config).await?;
    let config = &config;
    let (tx, filter) = super::filtered(&mut client, config, opts, super::Span::Export).await?;
    let mut out: Box<dyn Write> = match output {
        Some(path) => {
            // The log is for admins: the file is readable by its owner alone (0600, before a
            // byte is written), whatever the umask.
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(path)
                .and_then(|file| {
                    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
                    Ok(file)
                })
                .map_err(|e| Error::Output(format!("{}: {e}", path.display())))?;
            Box::new(BufWriter::new(file))
        }
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    let name = crate::workspace::workspace_name(&tx, config, &filter.workspace).await?;
    let rows = crate::export::export(&tx, &filter, format, excel, &mut out).await?;
    if let Some(path) = output {
        // The file holds ids only (the CSV's columns are the same for every workspace); the
        // line that reports it names the workspace, by its name when [workspaces] gives one.
        let named = name.map(|n| format!(" ({})", crate::report::printable(&n)));
        eprintln!(
            "wrote {rows} events of workspace {}{} to {}",
            crate::report::printable(&filter.workspace),
            named.unwrap_or_default(),
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
