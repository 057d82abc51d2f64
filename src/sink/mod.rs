//! Sinks: where results go. Alerts as ECS JSON lines, and the human summary.

pub mod alert;
pub mod health;
pub mod metrics;
pub mod output;
pub mod report;
pub mod summary;
