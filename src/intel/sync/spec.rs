//! [`SourceSpec`]: one `[[intel.sources]]` entry as the config plan validated it, with
//! its credentials still *where* they are (an environment variable or a file), not
//! what they are: [`SourceSpec::resolve`] reads them at each pass, so a rotated key
//! file is picked up without a restart, and a plan never holds a secret.
//!
//! Also the cache layout of one source (`<state>/intel/<name>/…`) and the intel specs
//! the index loads from it ([`cache_specs`]).

use std::path::{Path, PathBuf};

use super::{Credentials, SourceConfig, SourceKind, SyncError};
use crate::intel::load::IntelSpec;
use crate::net::Secret;

/// Where a secret is read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretAt {
    Env(String),
    File(PathBuf),
}

impl SecretAt {
    fn read(&self) -> Result<Secret, String> {
        match self {
            SecretAt::Env(v) => Secret::from_env(v).map_err(|e| e.to_string()),
            SecretAt::File(p) => Secret::from_file(p).map_err(|e| e.to_string()),
        }
    }

    /// The config key it came from (for errors).
    fn key(&self, api_key: bool) -> &'static str {
        match (self, api_key) {
            (SecretAt::Env(_), true) => "api_key_env",
            (SecretAt::File(_), true) => "api_key_file",
            (SecretAt::Env(_), false) => "password_env",
            (SecretAt::File(_), false) => "password_file",
        }
    }
}

/// How a source authenticates, by reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialsAt {
    None,
    ApiKey(SecretAt),
    Basic {
        username: String,
        password: SecretAt,
    },
}

/// One validated `[[intel.sources]]` entry.
#[derive(Clone, Debug)]
pub struct SourceSpec {
    /// Everything but the credentials (`credentials` is [`Credentials::None`] here).
    pub config: SourceConfig,
    pub credentials: CredentialsAt,
    /// The sharing destination it pairs with (kept for the sharing policy).
    pub destination: Option<String>,
}

impl SourceSpec {
    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn kind(&self) -> SourceKind {
        self.config.kind
    }

    /// The source's configuration with its credentials read now. The error names
    /// the key and where the secret was looked for, never its value.
    pub fn resolve(&self) -> Result<SourceConfig, SyncError> {
        let mut c = self.config.clone();
        let err = |at: &SecretAt, api: bool, message: String| SyncError::Config {
            source_name: c.name.clone(),
            key: at.key(api).to_string(),
            message,
        };
        c.credentials = match &self.credentials {
            CredentialsAt::None => Credentials::None,
            CredentialsAt::ApiKey(at) => {
                Credentials::ApiKey(at.read().map_err(|m| err(at, true, m))?)
            }
            CredentialsAt::Basic { username, password } => Credentials::Basic {
                username: username.clone(),
                password: password.read().map_err(|m| err(password, false, m))?,
            },
        };
        Ok(c)
    }
}

/// `<state>/intel/<name>`: everything of one source.
pub fn source_dir(state_dir: &Path, name: &str) -> PathBuf {
    state_dir.join("intel").join(name)
}

/// `<state>/intel/<name>/data`: the last good data, in a format the loaders read.
pub fn data_dir(state_dir: &Path, name: &str) -> PathBuf {
    source_dir(state_dir, name).join("data")
}

/// Whether a data directory holds anything the loaders would read (a file not
/// hidden: temporary files start with a dot).
pub fn has_data(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|rd| {
        rd.filter_map(Result::ok)
            .any(|e| !e.file_name().to_string_lossy().starts_with('.'))
    })
}

/// The intel specs of the configured sources: a `file` source is its path, named;
/// every other source is its cache directory, named, when it holds data (a source
/// never synced yet adds nothing, and the index is built without it).
pub fn cache_specs(state_dir: &Path, sources: &[SourceSpec]) -> Vec<IntelSpec> {
    sources
        .iter()
        .filter_map(|s| {
            let path = match s.kind() {
                SourceKind::File => PathBuf::from(&s.config.url),
                _ => {
                    let d = data_dir(state_dir, s.name());
                    if !has_data(&d) {
                        return None;
                    }
                    d
                }
            };
            Some(IntelSpec {
                name: Some(s.name().to_string()),
                path,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: SourceKind, url: &str, credentials: CredentialsAt) -> SourceSpec {
        SourceSpec {
            config: SourceConfig {
                name: "s".into(),
                kind,
                url: url.into(),
                collection: None,
                credentials: Credentials::None,
                interval_secs: 3600,
                timeout_secs: 30,
                ca_file: None,
                proxy: None,
                options: toml::Table::new(),
            },
            credentials,
            destination: None,
        }
    }

    #[test]
    fn credentials_are_read_at_resolve_and_never_shown() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("key");
        std::fs::write(&key, "s3cr3t-value\n").expect("write");
        let s = spec(
            SourceKind::Csv,
            "https://x.example/",
            CredentialsAt::ApiKey(SecretAt::File(key.clone())),
        );
        let c = s.resolve().expect("resolves");
        assert!(matches!(&c.credentials, Credentials::ApiKey(k) if k.expose() == "s3cr3t-value"));
        std::fs::remove_file(&key).expect("rm");
        let e = s.resolve().expect_err("missing").to_string();
        assert!(e.contains("api_key_file"), "{e}");
        assert!(!e.contains("s3cr3t"), "{e}");
    }

    #[test]
    fn cache_specs_name_the_source() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sources = [
            spec(SourceKind::Csv, "https://x.example/", CredentialsAt::None),
            spec(SourceKind::File, "/etc/intel.txt", CredentialsAt::None),
        ];
        let specs = cache_specs(dir.path(), &sources);
        assert_eq!(specs.len(), 1, "no data yet: only the file");
        assert_eq!(specs[0].path, PathBuf::from("/etc/intel.txt"));
        let d = data_dir(dir.path(), "s");
        std::fs::create_dir_all(&d).expect("mkdir");
        std::fs::write(d.join(".feed.txt.tmp-1"), "x").expect("write");
        assert_eq!(cache_specs(dir.path(), &sources).len(), 1);
        std::fs::write(d.join("feed.txt"), "x").expect("write");
        let specs = cache_specs(dir.path(), &sources);
        assert_eq!(specs[0].path, d);
        assert_eq!(specs[0].name.as_deref(), Some("s"));
    }
}
