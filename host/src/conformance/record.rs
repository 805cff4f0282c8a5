//! Checks' results as they are made, and the report they add up to.

use std::fmt::Display;
use std::future::Future;
use std::time::Instant;

use serde::Serialize;

use crate::sandbox::{ErrorKind, ProviderError, ProviderKind};

/// How one check came out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "lowercase")]
pub enum Outcome {
    /// The provider did what the contract says.
    Ok,
    /// It did not.
    Fail {
        /// What the contract expected.
        expected: String,
        /// What the provider did instead, in its own words where it answered an error.
        got: String,
    },
    /// The check could not run here.
    Skip {
        /// Why, and what would let it run.
        reason: String,
    },
}

/// One named check and its outcome.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    /// The check's name, stable across releases (scripts match on it).
    pub name: &'static str,
    /// How it came out.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// How long it took.
    pub seconds: f64,
}

/// Every check of one run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The provider's registered name.
    pub provider: String,
    /// Which contract world it exports.
    pub kind: ProviderKind,
    /// The contract version it was built against.
    pub contract: &'static str,
    /// The checks, in the order they ran.
    pub checks: Vec<CheckResult>,
    /// What the run left behind or could not check, for the author to know.
    pub notes: Vec<String>,
}

/// How many checks passed, failed and were skipped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Passed.
    pub ok: usize,
    /// Failed.
    pub failed: usize,
    /// Not run.
    pub skipped: usize,
}

impl Report {
    /// The report of `checks` on `component`.
    pub(super) fn new(component: &crate::sandbox::ProviderComponent, checks: Vec<CheckResult>, notes: Vec<String>) -> Self {
        Report {
            provider: component.manifest().name.clone(),
            kind: component.kind(),
            contract: component.contract(),
            checks,
            notes,
        }
    }

    /// How many checks passed, failed and were skipped.
    pub fn tally(&self) -> Tally {
        let mut tally = Tally::default();
        for check in &self.checks {
            match check.outcome {
                Outcome::Ok => tally.ok += 1,
                Outcome::Fail { .. } => tally.failed += 1,
                Outcome::Skip { .. } => tally.skipped += 1,
            }
        }
        tally
    }

    /// Whether no check failed.
    pub fn passed(&self) -> bool {
        self.tally().failed == 0
    }

    /// The names of the checks that failed.
    pub fn failed(&self) -> Vec<&'static str> {
        self.checks.iter().filter(|c| matches!(c.outcome, Outcome::Fail { .. })).map(|c| c.name).collect()
    }
}

/// Why a check failed.
#[derive(Debug)]
pub(super) struct Failure {
    expected: String,
    got: String,
    /// The sandbox stopped a call (deadline or CPU limit) during the check.
    stopped: bool,
}

impl Failure {
    /// The provider answered, but not what the contract says.
    pub(super) fn new(expected: impl Into<String>, got: impl Display) -> Self {
        Failure { expected: expected.into(), got: got.to_string(), stopped: false }
    }

    /// A call failed where the contract expected `expected`.
    pub(super) fn error(expected: impl Into<String>, error: &ProviderError) -> Self {
        let stopped = matches!(error.kind, ErrorKind::Deadline(_) | ErrorKind::CpuLimit(_));
        // Every other variant the provider may answer names itself in its message.
        let got = match &error.kind {
            ErrorKind::Other(message) => format!("other: {message}"),
            kind => kind.to_string(),
        };
        Failure { expected: expected.into(), got, stopped }
    }

    /// The same failure, saying which object or call it concerns.
    pub(super) fn about(mut self, what: &str) -> Self {
        self.got = format!("{what:?}: {}", self.got);
        self
    }
}

/// `Err(Failure::error(expected, e))` for a failed call, its value otherwise.
pub(super) fn answered<T>(expected: &str, result: Result<T, ProviderError>) -> Result<T, Failure> {
    result.map_err(|e| Failure::error(expected, &e))
}

/// The checks made so far, each handed to `on_check` as it ends.
pub(super) struct Recorder<'a> {
    checks: Vec<CheckResult>,
    on_check: &'a mut dyn FnMut(&CheckResult),
    /// Checks during which the sandbox stopped a call.
    stopped: Vec<&'static str>,
}

impl<'a> Recorder<'a> {
    pub(super) fn new(on_check: &'a mut dyn FnMut(&CheckResult)) -> Self {
        Recorder { checks: Vec::new(), on_check, stopped: Vec::new() }
    }

    /// Runs check `name`; true when it passed.
    pub(super) async fn check(&mut self, name: &'static str, run: impl Future<Output = Result<(), Failure>>) -> bool {
        let start = Instant::now();
        let outcome = match run.await {
            Ok(()) => Outcome::Ok,
            Err(failure) => {
                if failure.stopped {
                    self.stopped.push(name);
                }
                Outcome::Fail { expected: failure.expected, got: failure.got }
            }
        };
        let passed = outcome == Outcome::Ok;
        self.push(CheckResult { name, outcome, seconds: start.elapsed().as_secs_f64() });
        passed
    }

    /// Records check `name` as not run, for `reason`.
    pub(super) fn skip(&mut self, name: &'static str, reason: impl Into<String>) {
        self.push(CheckResult { name, outcome: Outcome::Skip { reason: reason.into() }, seconds: 0.0 });
    }

    /// Records every check of `names` not yet made as not run, for `reason`.
    pub(super) fn skip_rest(&mut self, names: &[&'static str], reason: &str) {
        for name in names {
            if !self.checks.iter().any(|c| c.name == *name) {
                self.skip(name, reason);
            }
        }
    }

    /// The `calls-within-deadline` check: no call was stopped by the sandbox's limits.
    pub(super) fn check_deadlines(&mut self, deadline: std::time::Duration) {
        let outcome = match self.stopped.as_slice() {
            [] => Outcome::Ok,
            stopped => Outcome::Fail {
                expected: format!("every call to end within the call deadline ({deadline:?}) and CPU limit"),
                got: format!("the sandbox stopped a call during {}", stopped.join(", ")),
            },
        };
        self.push(CheckResult { name: "calls-within-deadline", outcome, seconds: 0.0 });
    }

    fn push(&mut self, result: CheckResult) {
        (self.on_check)(&result);
        self.checks.push(result);
    }

    pub(super) fn into_checks(self) -> Vec<CheckResult> {
        self.checks
    }
}
