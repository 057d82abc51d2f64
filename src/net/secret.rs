//! [`Secret`]: a credential (API key, password, token) read from an environment
//! variable or a file.
//!
//! Invariant: a secret never prints. `Debug` and `Display` write `***`, errors name
//! where the secret was looked for (the variable, the path), never its value; the
//! value comes out only through `Secret::expose` (crate-private), for the one header
//! that carries it. Reading trims surrounding whitespace (a trailing newline in a key
//! file) and refuses an empty value.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// A credential. `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

/// Why a secret could not be read. Names where it was looked for; never holds it.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable {var} is not set")]
    EnvNotSet { var: String },
    #[error("environment variable {var} is empty")]
    EnvEmpty { var: String },
    #[error("cannot read {}: {source}", path.display())]
    FileRead {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is empty", path.display())]
    FileEmpty { path: PathBuf },
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// From an environment variable (trimmed, must not be empty).
    pub fn from_env(var: &str) -> Result<Secret, SecretError> {
        match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => Ok(Secret(v.trim().to_string())),
            Ok(_) => Err(SecretError::EnvEmpty { var: var.into() }),
            Err(_) => Err(SecretError::EnvNotSet { var: var.into() }),
        }
    }

    /// From a file (trimmed, must not be empty).
    pub fn from_file(path: &Path) -> Result<Secret, SecretError> {
        match std::fs::read_to_string(path) {
            Ok(v) if !v.trim().is_empty() => Ok(Secret(v.trim().to_string())),
            Ok(_) => Err(SecretError::FileEmpty { path: path.into() }),
            Err(source) => Err(SecretError::FileRead {
                path: path.into(),
                source,
            }),
        }
    }

    /// The value, for the one header that carries it.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2-api-key");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some(***)");
        assert_eq!(s.expose(), "hunter2-api-key");
    }

    #[test]
    fn from_file_trims_and_refuses_empty_or_missing() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let key = dir.path().join("key");
        std::fs::write(&key, "  s3cret\n").expect("written");
        assert_eq!(Secret::from_file(&key).expect("a key").expose(), "s3cret");
        std::fs::write(&key, "\n").expect("written");
        let e = Secret::from_file(&key).expect_err("empty");
        assert_eq!(e.to_string(), format!("{} is empty", key.display()));
        let missing = dir.path().join("missing");
        let e = Secret::from_file(&missing).expect_err("missing");
        assert!(matches!(e, SecretError::FileRead { .. }), "{e}");
        assert!(e.to_string().starts_with("cannot read "), "{e}");
    }

    #[test]
    fn from_env_names_the_variable() {
        let e = Secret::from_env("TRIPLINE_TEST_SURELY_UNSET_VARIABLE").expect_err("unset");
        assert_eq!(
            e.to_string(),
            "environment variable TRIPLINE_TEST_SURELY_UNSET_VARIABLE is not set"
        );
    }
}
