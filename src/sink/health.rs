//! What `/healthz` and `/readyz` say: the sidecar is healthy when nothing is wrong,
//! and each part that is wrong says so in one sentence.
//!
//! Parts report problems by name (`intel`, `alerts`, `state`, `source:<name>`) and
//! clear them when they recover; [`Health::set`] says whether the state changed, so a
//! caller logs once per change, not once per line. `/healthz` answers 200 `ok`, or 503
//! with the first problem on one line; `/readyz` gives every problem as JSON.
//!
//! Cost: a mutex around a small map, taken on changes and on each probe.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// A check run at each probe: a part whose state lives elsewhere (a source's atomics).
type Check = Box<dyn Fn() -> Option<String> + Send + Sync>;

/// The problems of the moment, by part.
#[derive(Default)]
pub struct Health {
    problems: Mutex<BTreeMap<String, String>>,
    checks: Mutex<Vec<(String, Check)>>,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("problems", &self.problems())
            .finish()
    }
}

impl Health {
    pub fn new() -> Health {
        Health::default()
    }

    /// Records `part`'s problem (`None`: it is fine). Returns whether that changed.
    pub fn set(&self, part: &str, problem: Option<String>) -> bool {
        let Ok(mut p) = self.problems.lock() else {
            return false;
        };
        match problem {
            Some(text) => p.insert(part.to_string(), text.clone()).as_ref() != Some(&text),
            None => p.remove(part).is_some(),
        }
    }

    /// Adds a check run at each probe: `part` has the problem it returns.
    pub fn add_check(
        &self,
        part: &str,
        check: impl Fn() -> Option<String> + Send + Sync + 'static,
    ) {
        if let Ok(mut c) = self.checks.lock() {
            c.push((part.to_string(), Box::new(check)));
        }
    }

    /// Every problem, by part (checks included).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut all: BTreeMap<String, String> =
            self.problems.lock().map(|p| p.clone()).unwrap_or_default();
        if let Ok(checks) = self.checks.lock() {
            for (part, check) in checks.iter() {
                if let Some(p) = check() {
                    all.insert(part.clone(), p);
                }
            }
        }
        all.into_iter().collect()
    }

    pub fn is_healthy(&self) -> bool {
        self.problems().is_empty()
    }

    /// `/healthz`: (status, one line).
    pub fn healthz(&self) -> (u16, String) {
        match self.problems().into_iter().next() {
            None => (200, "ok\n".to_string()),
            Some((part, text)) => (503, format!("{part}: {text}\n")),
        }
    }

    /// `/readyz`: (status, JSON with every problem).
    pub fn readyz(&self) -> (u16, String) {
        let problems: Vec<serde_json::Value> = self
            .problems()
            .into_iter()
            .map(|(part, problem)| serde_json::json!({ "part": part, "problem": problem }))
            .collect();
        let ok = problems.is_empty();
        let body = serde_json::json!({ "healthy": ok, "problems": problems });
        (if ok { 200 } else { 503 }, format!("{body}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_come_and_go_and_changes_are_reported_once() {
        let h = Health::new();
        assert!(h.is_healthy());
        assert_eq!(h.healthz(), (200, "ok\n".to_string()));
        assert!(h.set(
            "alerts",
            Some("cannot write alerts.jsonl: disk full".into())
        ));
        assert!(!h.set(
            "alerts",
            Some("cannot write alerts.jsonl: disk full".into())
        ));
        assert!(h.set("intel", Some("no index loaded".into())));
        let (code, line) = h.healthz();
        assert_eq!(code, 503);
        assert_eq!(line, "alerts: cannot write alerts.jsonl: disk full\n");
        let (code, json) = h.readyz();
        assert_eq!(code, 503);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["problems"].as_array().unwrap().len(), 2);
        assert!(h.set("alerts", None));
        assert!(!h.set("alerts", None));
        assert!(h.set("intel", None));
        assert!(h.is_healthy());
        let failing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let f = failing.clone();
        h.add_check("state", move || {
            f.load(std::sync::atomic::Ordering::Relaxed)
                .then(|| "cannot write checkpoints".to_string())
        });
        assert_eq!(
            h.healthz(),
            (503, "state: cannot write checkpoints\n".into())
        );
        failing.store(false, std::sync::atomic::Ordering::Relaxed);
        assert!(h.is_healthy());
    }
}
