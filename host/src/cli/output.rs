//! Printing objects as tables, JSON or YAML.

use std::io::Write;

use anyhow::Result;
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::args::OutputFormat;

/// Columns of text, printed aligned like kubectl's.
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these headers.
    pub fn new(headers: &[&'static str]) -> Self {
        Table { headers: headers.to_vec(), rows: Vec::new() }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Prints it to stdout.
    pub fn print(&self) -> Result<()> {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.len()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = std::io::stdout().lock();
        let line = |out: &mut dyn Write, cells: &[String]| -> std::io::Result<()> {
            let mut text = String::new();
            for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
                if i + 1 == cells.len() {
                    text.push_str(cell);
                } else {
                    text.push_str(&format!("{cell:<w$}   "));
                }
            }
            writeln!(out, "{}", text.trim_end())
        };
        line(&mut out, &self.headers.iter().map(|h| h.to_string()).collect::<Vec<_>>())?;
        for row in &self.rows {
            line(&mut out, row)?;
        }
        Ok(())
    }
}

/// A timestamp for a table cell; `Unknown` when unset.
pub fn timestamp(t: Option<OffsetDateTime>) -> String {
    t.and_then(|t| t.format(&Rfc3339).ok()).unwrap_or_else(|| "Unknown".into())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct List<'a, T> {
    api_version: &'a str,
    kind: String,
    items: &'a [T],
}

/// Prints `items` as JSON or YAML: the object itself when `single`, else a `<Kind>List`.
pub fn print_documents<T: Serialize>(format: OutputFormat, api_version: &str, kind: &str, items: &[T], single: bool) -> Result<()> {
    let text = match (format, single && items.len() == 1) {
        (OutputFormat::Json, true) => serde_json::to_string_pretty(&items[0])?,
        (OutputFormat::Yaml, true) => serde_norway::to_string(&items[0])?,
        (OutputFormat::Json, false) => serde_json::to_string_pretty(&List { api_version, kind: format!("{kind}List"), items })?,
        (OutputFormat::Yaml, false) => serde_norway::to_string(&List { api_version, kind: format!("{kind}List"), items })?,
        (OutputFormat::Table, _) => unreachable!("tables are printed by each command"),
    };
    println!("{}", text.trim_end());
    Ok(())
}
