//! The compiled index.

pub mod strset;
