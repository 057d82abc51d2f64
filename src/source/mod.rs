//! Sources: where lines come from. Batch inputs for `tripline hunt` today.

pub mod batch;
