//! The log and results of one backup or restore, in Velero's formats.

use std::collections::BTreeMap;
use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use serde::Serialize;
use time::format_description::well_known::Rfc3339;

/// Messages grouped as Velero's `Result`: about Velero, the cluster, or a namespace.
#[derive(Debug, Default, Serialize, Clone, PartialEq, Eq)]
pub struct Messages {
    /// About the run itself.
    pub velero: Vec<String>,
    /// About cluster-scoped items.
    pub cluster: Vec<String>,
    /// About namespaced items.
    pub namespaces: BTreeMap<String, Vec<String>>,
}

impl Messages {
    fn push(&mut self, scope: Scope<'_>, message: String) {
        match scope {
            Scope::Run => self.velero.push(message),
            Scope::Cluster => self.cluster.push(message),
            Scope::Namespace(ns) => self.namespaces.entry(ns.to_owned()).or_default().push(message),
        }
    }
}

/// What a message is about.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// The run.
    Run,
    /// A cluster-scoped item.
    Cluster,
    /// An item in this namespace.
    Namespace(&'a str),
}

/// A run's log lines (logrus text format) and its warnings and errors.
pub struct RunLog {
    subject: String,
    lines: Vec<String>,
    /// Warnings, for `-results.gz`.
    pub warnings: Messages,
    /// Errors, for `-results.gz`.
    pub errors: Messages,
}

impl RunLog {
    /// A log whose lines name `subject`, e.g. `backup=velero/b1`.
    pub fn new(subject: String) -> Self {
        RunLog { subject, lines: Vec::new(), warnings: Messages::default(), errors: Messages::default() }
    }

    fn line(&mut self, level: &str, message: &str) {
        let time = crate::model::now().format(&Rfc3339).unwrap_or_default();
        self.lines.push(format!("time=\"{time}\" level={level} msg={message:?} {}", self.subject));
    }

    /// An info line.
    pub fn info(&mut self, message: &str) {
        self.line("info", message);
    }

    /// A warning.
    pub fn warn(&mut self, scope: Scope<'_>, message: String) {
        self.line("warning", &message);
        self.warnings.push(scope, message);
    }

    /// An error: the run ends PartiallyFailed at best.
    pub fn error(&mut self, scope: Scope<'_>, message: String) {
        self.line("error", &message);
        self.errors.push(scope, message);
    }

    /// How many errors.
    pub fn error_count(&self) -> u64 {
        let m = &self.errors;
        (m.velero.len() + m.cluster.len() + m.namespaces.values().map(Vec::len).sum::<usize>()) as u64
    }

    /// How many warnings.
    pub fn warning_count(&self) -> u64 {
        let m = &self.warnings;
        (m.velero.len() + m.cluster.len() + m.namespaces.values().map(Vec::len).sum::<usize>()) as u64
    }

    /// The log, gzipped.
    pub fn log_gz(&self) -> Vec<u8> {
        gzip(self.lines.join("\n").as_bytes())
    }

    /// The log's text within `limit` bytes: its last lines, after a line saying how many
    /// earlier ones were left out when the whole is larger.
    pub fn tail(&self, limit: usize) -> String {
        let mut size = 0;
        let kept = self.lines.iter().rev().take_while(|l| {
            size += l.len() + 1;
            size <= limit
        });
        let mut lines: Vec<&str> = kept.map(String::as_str).collect();
        let left_out = self.lines.len() - lines.len();
        let note = format!("... {left_out} earlier lines left out");
        if left_out > 0 {
            lines.push(&note);
        }
        lines.reverse();
        lines.join("\n")
    }

    /// `{"warnings": ..., "errors": ...}`, gzipped.
    pub fn results_gz(&self) -> Vec<u8> {
        gzip_json(&serde_json::json!({ "warnings": self.warnings, "errors": self.errors }))
    }
}

/// `bytes` gzipped.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(bytes).expect("writing to memory");
    gz.finish().expect("writing to memory")
}

/// `value` as gzipped JSON.
pub fn gzip_json(value: &impl Serialize) -> Vec<u8> {
    gzip(&serde_json::to_vec(value).expect("serialisable"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tail_keeps_the_last_lines_and_says_how_many_went() {
        let mut log = RunLog::new("backup=a/b".into());
        for i in 0..100 {
            log.info(&format!("line {i}"));
        }
        assert_eq!(log.tail(1 << 20).lines().count(), 100);
        let tail = log.tail(1000);
        assert!(tail.len() <= 1000 + 40, "{}", tail.len());
        let first = tail.lines().next().unwrap();
        assert!(first.starts_with("... ") && first.ends_with(" earlier lines left out"), "{first}");
        assert!(tail.lines().last().unwrap().contains("line 99"));
    }
}
