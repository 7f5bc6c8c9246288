//! Configuration: serde structs, and a loader for the original's YAML shape.
//!
//! ```yaml
//! storage:
//!   backends:
//!     - name: default_vector
//!       storage_type: vector_db        # or document_db
//!       backend: qdrant                # a registered backend name, or "default"
//!       default: true
//!       config:
//!         path: "${CONTEXT_PATH:.}/persist/qdrant"
//!         vector_size: 384
//! consumption:
//!   enabled: "${CONSUMPTION_ENABLED:false}"
//! ```
//!
//! `${VAR}` and `${VAR:default}` are replaced inside string values (after YAML parsing, so a
//! variable's value can never change the document's structure). Substituted values stay
//! strings; numeric and boolean fields accept strings through [`lenient`], so
//! `port: "${PORT:6379}"` works. Other top-level sections of the original's `config.yaml`
//! (llm, capture, web...) are ignored: they are neither substituted nor checked.
//!
//! # Mistakes that are refused
//!
//! Where the original silently fell back to a default, loading fails with a
//! [`crate::ErrorKind::Config`] error that names the key:
//! - an unknown key in the `storage`, `consumption` or `embedding_model` section, in a
//!   `storage.backends` entry, or in a backend's `config` (for example `pth:` for `path:`);
//!   the error suggests the closest known key (also when the misspelt key was required). A
//!   backend's `config` is checked when the backend is created ([`BackendConfig::parse`]);
//!   the original's `embedding_model.provider` is accepted and not read;
//! - two entries of one storage type both marked `default: true` ([`StorageConfig::validate`]);
//! - an unset variable without a default in a value that is not empty after substitution
//!   (`"${UNSET}/persist"` would become the absolute path `/persist`). A value that comes out
//!   empty (`"${UNSET}"`, `"${UNSET:${ALSO_UNSET}}"`) is kept empty, with a warning, as in
//!   the original (that is how optional secrets are written); write `${VAR:}` to make an
//!   empty default explicit. Defaults may hold variables (`${A:${B}}`). YAML merge keys
//!   (`<<: *anchor`) are applied.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value as Json;

use crate::backend::StorageType;
use crate::error::{Result, StorageError};
use crate::model::JsonMap;

/// The parts of the application configuration the storage layer reads.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AppConfig {
    /// The `storage` section.
    #[serde(default)]
    pub storage: StorageConfig,
    /// The `consumption` section (gates the vector store's `todo` collection).
    #[serde(default)]
    pub consumption: ConsumptionConfig,
    /// The `embedding_model` section, for auto-vectorizing contexts without a vector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding_model: Option<EmbeddingConfig>,
}

/// The `storage` section: the backends to create.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StorageConfig {
    /// Whether storage is enabled (the original's flag; `true` by default).
    #[serde(default = "yes", deserialize_with = "lenient")]
    pub enabled: bool,
    /// Backends to create; one vector and one document backend are used (the ones marked
    /// `default: true`, else the first of each type).
    #[serde(default)]
    pub backends: Vec<BackendConfig>,
    /// The time zone of naive stored datetimes (no UTC offset), as the original wrote them
    /// with `datetime.now()`: `"local"` (the default: the machine's zone), `"UTC"`, an offset
    /// such as `"+08:00"`, or an IANA name such as `"Asia/Shanghai"`. It applies to the whole
    /// process (see [`crate::time::NaiveZone`] and [`crate::time::set_default_naive_zone`]):
    /// naive values are read in it, and the SQL backends write naive values in it, as the
    /// original did, so that both read each other's rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub naive_timezone: Option<String>,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            enabled: true,
            backends: Vec::new(),
            naive_timezone: None,
        }
    }
}

impl StorageConfig {
    /// Checks what deserialisation cannot: at most one entry per storage type is marked
    /// `default: true`.
    ///
    /// # Errors
    /// [`crate::ErrorKind::Config`] naming both entries.
    pub fn validate(&self) -> Result<()> {
        for (i, a) in self.backends.iter().enumerate() {
            let Some((j, b)) = self
                .backends
                .iter()
                .enumerate()
                .skip(i + 1)
                .find(|(_, b)| a.default && b.default && b.storage_type == a.storage_type)
            else {
                continue;
            };
            return Err(StorageError::config(format!(
                "storage.backends[{i}] ('{}') and storage.backends[{j}] ('{}') are both \
                 `default: true` for {}; mark only the one to use",
                a.name, b.name, a.storage_type
            )));
        }
        Ok(())
    }

    /// Applies [`StorageConfig::naive_timezone`] to the process (nothing when unset).
    ///
    /// # Errors
    /// [`crate::ErrorKind::Config`] naming `storage.naive_timezone` when the zone is unknown.
    pub fn apply_naive_timezone(&self) -> Result<()> {
        if let Some(name) = &self.naive_timezone {
            let zone = crate::time::NaiveZone::parse(name).map_err(|e| {
                StorageError::config(format!(
                    "invalid config at `storage.naive_timezone`: {}",
                    e.message()
                ))
            })?;
            crate::time::set_default_naive_zone(zone);
        }
        Ok(())
    }
}

fn yes() -> bool {
    true
}

/// One entry of `storage.backends`.
#[derive(Clone, Serialize, Deserialize)]
pub struct BackendConfig {
    /// A label for logs (`default_vector`).
    #[serde(default)]
    pub name: String,
    /// `vector_db` or `document_db`.
    pub storage_type: StorageType,
    /// Registered backend name (`sqlite`, `qdrant`, ...) or `default` for the first registered
    /// backend of this storage type.
    pub backend: String,
    /// Preferred over other backends of the same type.
    #[serde(default, deserialize_with = "lenient")]
    pub default: bool,
    /// Backend-specific settings, parsed by the backend into its own config type.
    #[serde(default)]
    pub config: JsonMap,
}

impl BackendConfig {
    /// Parses `config` into the backend's typed configuration. Every key must be one the type
    /// reads: a misspelt key (`pth:` for `path:`) would otherwise leave its default in force
    /// without a word.
    ///
    /// # Errors
    /// [`crate::ErrorKind::Config`] naming the backend and serde's complaint (missing key,
    /// wrong type), or the unknown keys with the closest known key for each.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        self.parse_ignoring(&[])
    }

    /// [`BackendConfig::parse`], accepting and dropping the keys in `ignored` (keys the
    /// original's configuration files carry that this backend has no use for, such as an HTTP
    /// pool size; each dropped key is logged at debug level).
    ///
    /// # Errors
    /// As [`BackendConfig::parse`].
    pub fn parse_ignoring<T: serde::de::DeserializeOwned>(&self, ignored: &[&str]) -> Result<T> {
        let mut unknown = Vec::new();
        let mut map = self.config.clone();
        for key in ignored {
            if map.remove(*key).is_some() {
                tracing::debug!(backend = %self.backend, key, "config key not used by this backend");
            }
        }
        let value = Json::Object(map);
        let mut note =
            |path: serde_ignored::Path<'_>| unknown.push(path.to_string().replace(".?", ""));
        let de = serde_ignored::Deserializer::new(value, &mut note);
        let parsed: std::result::Result<T, _> = serde_path_to_error::deserialize(de);
        // An unknown key first: a misspelt required key also reports the key as missing.
        if !unknown.is_empty() {
            let what = format!("backend '{}' ({})", self.name, self.backend);
            let mut e = unknown_keys_error(&what, "config.", &unknown, struct_fields::<T>());
            if let Err(serde) = &parsed {
                e = StorageError::config(format!("{}; also: {}", e.message(), serde.inner()));
            }
            return Err(e);
        }
        parsed.map_err(|e| {
            StorageError::config(format!(
                "backend '{}' ({}): invalid config at `{}`: {}",
                self.name,
                self.backend,
                e.path(),
                e.inner()
            ))
        })
    }
}

/// Keys of `T`'s struct as serde sees them (the field names its derived `Deserialize`
/// expects, aliases excepted), found by letting it deserialize from a probe that records them.
/// Empty when `T` is not a struct.
fn struct_fields<T: serde::de::DeserializeOwned>() -> &'static [&'static str] {
    use serde::de::{self, Visitor};

    struct Probe<'a>(&'a mut &'static [&'static str]);

    impl<'de> de::Deserializer<'de> for Probe<'_> {
        type Error = de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(
            self,
            _: V,
        ) -> std::result::Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> std::result::Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("probed"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }

    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Probe(&mut fields));
    fields
}

/// The error for keys nothing reads, with the closest of `known` for each.
fn unknown_keys_error(
    what: &str,
    prefix: &str,
    unknown: &[String],
    known: &[&str],
) -> StorageError {
    let described: Vec<String> = unknown
        .iter()
        .map(|key| {
            let leaf = key.rsplit('.').next().unwrap_or(key);
            let closest = known
                .iter()
                .map(|k| (strsim::damerau_levenshtein(leaf, k), *k))
                .filter(|(d, k)| *d <= 2.max(k.len() / 4))
                .min();
            match closest {
                Some((_, k)) => format!("`{prefix}{key}` (did you mean `{k}`?)"),
                None => format!("`{prefix}{key}`"),
            }
        })
        .collect();
    let (s, them) = if unknown.len() == 1 {
        ("", "it")
    } else {
        ("s", "them")
    };
    let mut message = format!(
        "{what}: unknown key{s} {}: nothing reads {them}, so the default would be used \
         silently",
        described.join(", ")
    );
    if !known.is_empty() {
        message.push_str(&format!("; the known keys are {}", known.join(", ")));
    }
    StorageError::config(message)
}

impl fmt::Debug for BackendConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendConfig")
            .field("name", &self.name)
            .field("storage_type", &self.storage_type)
            .field("backend", &self.backend)
            .field("default", &self.default)
            .field("config", &Redacted(&Json::Object(self.config.clone())))
            .finish()
    }
}

/// Whether a config key names a secret, whose value is never printed.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "password",
        "passwd",
        "secret",
        "token",
        "api_key",
        "apikey",
        "access_key",
        "credential",
        "private_key",
    ]
    .iter()
    .any(|s| k.contains(s))
}

/// Debug view of JSON with the values of secret keys (see [`is_secret_key`]) replaced by `***`.
pub struct Redacted<'a>(pub &'a Json);

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", redact(self.0))
    }
}

/// A copy of `value` with the values of secret keys replaced by `"***"`.
pub fn redact(value: &Json) -> Json {
    match value {
        Json::Object(map) => Json::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if is_secret_key(k) && !v.is_null() {
                        Json::from("***")
                    } else {
                        redact(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Json::Array(items) => Json::Array(items.iter().map(redact).collect()),
        other => other.clone(),
    }
}

/// The `consumption` section.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ConsumptionConfig {
    /// Whether consumption features are on; when off, vector backends create no `todo`
    /// collection and todo-embedding calls return `Unsupported`.
    #[serde(default, deserialize_with = "lenient")]
    pub enabled: bool,
}

/// The `embedding_model` section: an OpenAI-compatible embeddings endpoint.
#[derive(Clone, Serialize, Deserialize)]
pub struct EmbeddingConfig {
    /// Base URL, e.g. `https://api.openai.com/v1`; `/embeddings` is appended.
    pub base_url: String,
    /// Bearer token (never printed).
    #[serde(default)]
    pub api_key: Secret,
    /// Model name.
    pub model: String,
    /// Requested output dimension (`dimensions` in the request); also the expected vector length.
    #[serde(default, deserialize_with = "lenient_opt")]
    pub output_dim: Option<usize>,
    /// Request timeout in seconds (default 30).
    #[serde(default = "default_timeout", deserialize_with = "lenient")]
    pub timeout_secs: f64,
    /// Texts per request (default 64).
    #[serde(default = "default_batch", deserialize_with = "lenient")]
    pub batch_size: usize,
}

impl EmbeddingConfig {
    /// Largest accepted `batch_size`.
    pub const MAX_BATCH_SIZE: usize = 2048;

    /// Checks the values: `timeout_secs` above 0 and at most 86400, `batch_size` from 1 to
    /// [`EmbeddingConfig::MAX_BATCH_SIZE`], `output_dim` (when set) at least 1.
    ///
    /// # Errors
    /// [`crate::ErrorKind::Config`] naming the key and the bound.
    pub fn validate(&self) -> Result<()> {
        if !(self.timeout_secs.is_finite()
            && self.timeout_secs > 0.0
            && self.timeout_secs <= 86_400.0)
        {
            return Err(StorageError::config(format!(
                "embedding_model.timeout_secs is {}, it must be a number of seconds above 0 and \
                 at most 86400",
                self.timeout_secs
            )));
        }
        if !(1..=Self::MAX_BATCH_SIZE).contains(&self.batch_size) {
            return Err(StorageError::config(format!(
                "embedding_model.batch_size is {}, the range is 1 to {}",
                self.batch_size,
                Self::MAX_BATCH_SIZE
            )));
        }
        if self.output_dim == Some(0) {
            return Err(StorageError::config(
                "embedding_model.output_dim is 0, it must be at least 1",
            ));
        }
        Ok(())
    }
}

fn default_timeout() -> f64 {
    30.0
}

fn default_batch() -> usize {
    64
}

impl fmt::Debug for EmbeddingConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddingConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key)
            .field("model", &self.model)
            .field("output_dim", &self.output_dim)
            .field("timeout_secs", &self.timeout_secs)
            .field("batch_size", &self.batch_size)
            .finish()
    }
}

/// A secret string: `Debug` and `Display` print `***`; [`Secret::expose`] gives the value.
#[derive(Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is empty (unset).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "***" })
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        // Numbers are accepted: an all-digit password substituted from the environment.
        match Json::deserialize(d)? {
            Json::String(s) => Ok(Secret(s)),
            Json::Number(n) => Ok(Secret(n.to_string())),
            Json::Null => Ok(Secret::default()),
            _ => Err(serde::de::Error::custom("a secret must be a string")),
        }
    }
}

/// Reads `T` from a JSON value that may also be its text form (`"6379"`, `"false"`), keeping
/// serde's own message (e.g. "invalid value: integer `70000`, expected u16") when neither fits.
fn native_or_text<T, E>(value: Json) -> std::result::Result<T, E>
where
    T: serde::de::DeserializeOwned + FromStr,
    T::Err: fmt::Display,
    E: serde::de::Error,
{
    match value {
        Json::String(s) => {
            if let Ok(v) = T::deserialize(Json::String(s.clone())) {
                return Ok(v);
            }
            s.trim()
                .parse()
                .map_err(|e| E::custom(format!("cannot parse {s:?}: {e}")))
        }
        other => T::deserialize(other).map_err(|e| E::custom(e.to_string())),
    }
}

/// Deserialises `T` from its native form or from a string (`"6379"`, `"false"`), for fields
/// that may be filled by `${VAR}` substitution.
pub fn lenient<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned + FromStr,
    T::Err: fmt::Display,
{
    native_or_text(Json::deserialize(d)?)
}

/// Like [`lenient`] for optional fields; `null` and `""` are `None`.
pub fn lenient_opt<'de, D, T>(d: D) -> std::result::Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned + FromStr,
    T::Err: fmt::Display,
{
    match Json::deserialize(d)? {
        Json::Null => Ok(None),
        Json::String(s) if s.trim().is_empty() => Ok(None),
        value => native_or_text(value).map(Some),
    }
}

/// Loads a configuration file: reads it, parses YAML, substitutes `${VAR}` from the process
/// environment, and deserialises [`AppConfig`].
///
/// # Errors
/// [`crate::ErrorKind::Config`] naming the file for unreadable files, invalid YAML or
/// mismatching fields; [`crate::ErrorKind::InvalidInput`] for a path that is not UTF-8.
pub fn load_config(path: &Path) -> Result<AppConfig> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        StorageError::config(format!("cannot read config file {}: {e}", path.display()))
    })?;
    parse_config(&text, |name| std::env::var(name).ok()).map_err(|e| {
        StorageError::config(format!("config file {}: {}", path.display(), e.message()))
    })
}

/// Parses configuration text (see [`load_config`]) with variables looked up by `env`.
pub fn parse_config(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<AppConfig> {
    let mut yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(text)
        .map_err(|e| StorageError::config(format!("invalid YAML: {e}")))?;
    // YAML merge keys (`<<: *defaults`) are applied, as PyYAML does for the original.
    yaml.apply_merge()
        .map_err(|e| StorageError::config(format!("invalid YAML merge key: {e}")))?;
    let json: Json = serde_json::to_value(&yaml)
        .map_err(|e| StorageError::config(format!("unsupported YAML value: {e}")))?;
    // Only the sections read here are substituted and checked: the others belong to the rest
    // of the application and may use variables this process does not set.
    let mut sections = JsonMap::new();
    match json {
        Json::Object(mut top) => {
            for key in STORAGE_SECTIONS {
                if let Some(v) = top.remove(*key) {
                    sections.insert((*key).to_owned(), v);
                }
            }
        }
        Json::Null => {}
        other => {
            return Err(StorageError::config(format!(
                "the configuration must be a mapping of sections, not {}",
                json_kind(&other)
            )));
        }
    }
    let mut json = Json::Object(sections);
    substitute_tree(&mut json, &mut String::new(), &env)?;
    let mut unknown = Vec::new();
    let mut note = |path: serde_ignored::Path<'_>| unknown.push(path.to_string().replace(".?", ""));
    let de = serde_ignored::Deserializer::new(json, &mut note);
    let parsed: std::result::Result<AppConfig, _> = serde_path_to_error::deserialize(de);
    // Keys the original's files carry in these sections that nothing here reads.
    unknown.retain(|p| p != "embedding_model.provider");
    // An unknown key first: a misspelt required key also reports the key as missing.
    if let Some(first) = unknown.first() {
        let (what, known) = section_of(first);
        let keys: Vec<String> = unknown
            .iter()
            .filter(|p| section_of(p).0 == what)
            .cloned()
            .collect();
        let mut e = unknown_keys_error(what, "", &keys, known);
        if let Err(serde) = &parsed {
            e = StorageError::config(format!("{}; also: {}", e.message(), serde.inner()));
        }
        return Err(e);
    }
    let config = parsed.map_err(|e| {
        StorageError::config(format!(
            "invalid configuration at `{}`: {}",
            e.path(),
            e.inner()
        ))
    })?;
    config.storage.validate()?;
    if let Some(e) = &config.embedding_model {
        e.validate()?;
    }
    Ok(config)
}

/// Which part of the configuration an unknown key's path is in, and the keys known there.
fn section_of(path: &str) -> (&'static str, &'static [&'static str]) {
    if path.starts_with("storage.backends.") {
        ("a storage.backends entry", struct_fields::<BackendConfig>())
    } else if path.starts_with("consumption.") {
        (
            "the consumption section",
            struct_fields::<ConsumptionConfig>(),
        )
    } else if path.starts_with("embedding_model.") {
        (
            "the embedding_model section",
            struct_fields::<EmbeddingConfig>(),
        )
    } else {
        ("the storage section", struct_fields::<StorageConfig>())
    }
}

/// The top-level sections [`AppConfig`] reads.
const STORAGE_SECTIONS: &[&str] = &["storage", "consumption", "embedding_model"];

fn json_kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "a list",
        Json::Object(_) => "a mapping",
    }
}

/// Substitutes every string below `value`; `path` is the key path of `value` (for errors).
fn substitute_tree(
    value: &mut Json,
    path: &mut String,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<()> {
    match value {
        Json::String(s) if s.contains("${") => {
            *s = substitute_checked(s, path, env)?;
        }
        Json::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                substitute_tree(v, path, env)?;
                path.truncate(len);
            }
        }
        Json::Object(map) => {
            for (k, v) in map.iter_mut() {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                substitute_tree(v, path, env)?;
                path.truncate(len);
            }
        }
        _ => {}
    }
    Ok(())
}

/// [`substitute`], refusing an unset variable without a default inside a longer value.
fn substitute_checked(
    text: &str,
    path: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<String> {
    let unset = std::cell::RefCell::new(Vec::new());
    let out = substitute(text, &|name: &str| {
        let v = env(name);
        if v.is_none() {
            unset.borrow_mut().push(name.to_owned());
        }
        v
    })
    .map_err(|e| StorageError::config(format!("`{path}`: {}", e.message())))?;
    // An unset variable matters only where it has no default: `${NAME}` written bare.
    let unset = unset.into_inner();
    let Some(name) = unset
        .iter()
        .find(|name| text.contains(&format!("${{{name}}}")))
    else {
        return Ok(out);
    };
    if out.is_empty() {
        tracing::warn!(key = %path, variable = %name, "configuration variable is not set; using an empty value");
        return Ok(out);
    }
    Err(StorageError::config(format!(
        "`{path}`: the variable {name} is not set and has no default, so {text:?} would become \
         {out:?}; set {name}, or give a default with ${{{name}:...}}"
    )))
}

/// Replaces every `${VAR}` / `${VAR:default}` in `text`. The default may be empty, may
/// contain `:` (only the first colon separates) and may itself hold variables
/// (`${EMBEDDING_API_KEY:${LLM_API_KEY}}`, as in the original's files), up to
/// [`MAX_VARIABLE_NESTING`] levels; a default is only read when its variable is unset. An unset
/// variable without default becomes "".
///
/// # Errors
/// [`crate::ErrorKind::Config`] for an unterminated `${`, an invalid variable name, or defaults
/// nested too deep.
pub fn substitute(text: &str, env: &impl Fn(&str) -> Option<String>) -> Result<String> {
    substitute_at(text, text, env, 0)
}

/// Deepest nesting of variables inside defaults that [`substitute`] accepts.
pub const MAX_VARIABLE_NESTING: usize = 8;

fn substitute_at(
    text: &str,
    whole: &str,
    env: &impl Fn(&str) -> Option<String>,
    depth: usize,
) -> Result<String> {
    if depth > MAX_VARIABLE_NESTING {
        return Err(StorageError::config(format!(
            "variables nest more than {MAX_VARIABLE_NESTING} levels deep in {whole:?}"
        )));
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = closing_brace(after)
            .ok_or_else(|| StorageError::config(format!("unterminated '${{' in {whole:?}")))?;
        let expr = &after[..end];
        let (name, default) = match expr.split_once(':') {
            Some((n, d)) => (n, Some(d)),
            None => (expr, None),
        };
        let valid = !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if !valid {
            return Err(StorageError::config(format!(
                "invalid variable name {name:?} in {whole:?}"
            )));
        }
        match (env(name), default) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(&substitute_at(d, whole, env, depth + 1)?),
            (None, None) => {}
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The index of the `}` closing a `${` whose body starts `text`, counting nested `${...}`.
fn closing_brace(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut open = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                open += 1;
                i += 1;
            }
            b'}' if open == 0 => return Some(i),
            b'}' => open -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// Resolves a configured path: relative paths are taken relative to `base` (the config
/// file's directory), and the result must be valid UTF-8.
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] naming `field` when the path is empty or not UTF-8.
pub fn resolve_path(field: &str, path: &Path, base: Option<&Path>) -> Result<PathBuf> {
    if path.as_os_str().is_empty() {
        return Err(StorageError::invalid_input(format!(
            "{field} must not be empty"
        )));
    }
    let full = match base {
        Some(b) if path.is_relative() => b.join(path),
        _ => path.to_path_buf(),
    };
    if full.to_str().is_none() {
        return Err(StorageError::invalid_input(format!(
            "{field} {} is not valid UTF-8",
            full.display()
        )));
    }
    Ok(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGINAL: &str = r#"
logging:
  level: DEBUG
llm:
  config:
    api_key: "${LLM_API_KEY}"
storage:
  enabled: true
  backends:
    - name: "default_vector"
      storage_type: "vector_db"
      backend: "qdrant"
      default: true
      config:
        vector_size: ${DIM:384}
        path: "${CONTEXT_PATH:.}/persist/qdrant"
    - name: "document_store"
      storage_type: "document_db"
      backend: "mysql"
      default: "${DOC_DEFAULT:true}"
      config:
        host: "${MYSQL_HOST:localhost}"
        password: "${MYSQL_PASSWORD:root123}"
consumption:
  enabled: "${CONSUMPTION_ENABLED:false}"
"#;

    fn env(name: &str) -> Option<String> {
        match name {
            "CONTEXT_PATH" => Some("/data".into()),
            "MYSQL_PASSWORD" => Some("s3cr3t: {x}".into()),
            _ => None,
        }
    }

    #[test]
    fn loads_the_original_shape_with_substitution() {
        let cfg = parse_config(ORIGINAL, env).unwrap();
        assert!(cfg.storage.enabled);
        assert!(!cfg.consumption.enabled);
        let v = &cfg.storage.backends[0];
        assert_eq!(v.storage_type, StorageType::VectorDb);
        assert_eq!(v.config["path"], "/data/persist/qdrant");
        assert_eq!(v.config["vector_size"], "384");
        let d = &cfg.storage.backends[1];
        assert!(d.default);
        assert_eq!(
            d.config["password"], "s3cr3t: {x}",
            "values never change the structure"
        );
    }

    #[track_caller]
    fn config_error(text: &str) -> String {
        let e = parse_config(text, env).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Config, "{e}");
        e.to_string()
    }

    #[test]
    fn unknown_keys_in_the_storage_section_are_refused_with_a_suggestion() {
        let e = config_error("storage:\n  backend:\n    - {storage_type: vector_db, backend: x}\n");
        assert!(
            e.contains("`storage.backend`") && e.contains("did you mean `backends`"),
            "{e}"
        );
        let e = config_error(
            "storage:\n  backends:\n    - {storage_type: vector_db, backend: x, defualt: true}\n",
        );
        assert!(
            e.contains("defualt") && e.contains("did you mean `default`"),
            "{e}"
        );
        assert!(e.contains("storage_type"), "lists the known keys: {e}");
        // Sections the storage layer does not read are left alone, typos and all.
        let ok =
            "lgging: {levl: DEBUG}\nweb:\n  port: \"${UNSET_PORT}0\"\nstorage:\n  backends: []\n";
        assert!(parse_config(ok, env).is_ok());
    }

    #[test]
    fn unknown_keys_in_a_backend_config_are_refused_with_a_suggestion() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct LocalConfig {
            path: String,
            #[serde(default)]
            readers: u32,
        }
        let cfg = parse_config(
            "storage:\n  backends:\n    - name: docs\n      storage_type: document_db\n      backend: sqlite\n      config: {pth: /data/app.db, path: x}\n",
            env,
        )
        .unwrap();
        let e = cfg.storage.backends[0].parse::<LocalConfig>().unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Config);
        let msg = e.to_string();
        assert!(msg.contains("backend 'docs' (sqlite)"), "{msg}");
        assert!(msg.contains("`config.pth` (did you mean `path`?)"), "{msg}");
        assert!(msg.contains("path, readers"), "{msg}");
        let cfg = parse_config(
            "storage:\n  backends:\n    - {storage_type: document_db, backend: sqlite, config: {path: x}}\n",
            env,
        )
        .unwrap();
        assert_eq!(
            cfg.storage.backends[0].parse::<LocalConfig>().unwrap().path,
            "x"
        );
    }

    #[test]
    fn embedding_settings_out_of_range_are_refused() {
        let base = "embedding_model: {base_url: \"http://x\", model: m";
        for (extra, needle) in [
            (", batch_size: 0}", "batch_size is 0"),
            (", timeout_secs: -1}", "timeout_secs is -1"),
            (", output_dim: 0}", "output_dim is 0"),
        ] {
            let e = config_error(&format!("{base}{extra}\n"));
            assert!(e.contains(needle), "{e}");
        }
        let ok = parse_config(
            &format!("{base}, provider: openai, output_dim: 2048}}\n"),
            env,
        );
        assert!(ok.is_ok(), "{:?}", ok.err());
    }

    #[test]
    fn two_defaults_of_one_type_are_refused() {
        let e = config_error(
            "storage:\n  backends:\n    - {name: a, storage_type: vector_db, backend: x, default: true}\n    - {name: b, storage_type: document_db, backend: y, default: true}\n    - {name: c, storage_type: vector_db, backend: z, default: \"true\"}\n",
        );
        assert!(
            e.contains("storage.backends[0] ('a') and storage.backends[2] ('c')")
                && e.contains("vector_db"),
            "{e}"
        );
    }

    #[test]
    fn an_unset_variable_inside_a_longer_value_is_refused() {
        let e = config_error(
            "storage:\n  backends:\n    - storage_type: vector_db\n      backend: qdrant\n      config:\n        path: \"${NOT_SET_DIR}/persist/qdrant\"\n",
        );
        assert!(e.contains("`storage.backends[0].config.path`"), "{e}");
        assert!(
            e.contains("NOT_SET_DIR is not set") && e.contains("\"/persist/qdrant\""),
            "{e}"
        );
        // A whole-value variable is how optional secrets are written: it becomes "".
        let cfg = parse_config(
            "storage:\n  backends:\n    - storage_type: vector_db\n      backend: x\n      config: {api_key: \"${NOT_SET_KEY}\", path: \"${NOT_SET_DIR:}/p\", host: \"${NOT_SET_HOST:h}:${CONTEXT_PATH}\"}\n",
            env,
        )
        .unwrap();
        let c = &cfg.storage.backends[0].config;
        assert_eq!(
            (c["api_key"].as_str(), c["path"].as_str()),
            (Some(""), Some("/p"))
        );
        assert_eq!(c["host"], "h:/data");
        // Spaces around it are a longer value; nested defaults are substituted.
        let e = config_error(
            "storage:\n  backends:\n    - {storage_type: vector_db, backend: x, config: {path: \"  ${NOT_SET_DIR}  \"}}\n",
        );
        assert!(e.contains("NOT_SET_DIR is not set"), "{e}");
        let cfg = parse_config(
            "storage:\n  backends:\n    - {storage_type: vector_db, backend: x, config: {a: \"${NOT_SET_A:${CONTEXT_PATH}}/x\", b: \"${NOT_SET_A:${NOT_SET_B}}\", c: \"${CONTEXT_PATH:${NOT_SET_B}/y}\"}}\n",
            env,
        )
        .unwrap();
        let c = &cfg.storage.backends[0].config;
        assert_eq!(
            (c["a"].as_str(), c["b"].as_str(), c["c"].as_str()),
            (Some("/data/x"), Some(""), Some("/data"))
        );
        let n = MAX_VARIABLE_NESTING + 2;
        let deep = format!("{}x{}", "${A:".repeat(n), "}".repeat(n));
        let e = substitute(&deep, &|_: &str| None).unwrap_err();
        assert!(e.to_string().contains("nest"), "{e}");
    }

    #[test]
    fn debug_redacts_secrets() {
        let cfg = parse_config(ORIGINAL, env).unwrap();
        let dbg = format!("{:?}", cfg.storage.backends[1]);
        assert!(!dbg.contains("s3cr3t"), "{dbg}");
        assert!(dbg.contains("***"));
        assert!(dbg.contains("localhost"));
        assert_eq!(format!("{:?}", Secret::new("k")), "***");
    }

    #[test]
    fn lenient_numbers_and_bools() {
        #[derive(Deserialize)]
        struct C {
            #[serde(deserialize_with = "lenient")]
            n: u32,
            #[serde(deserialize_with = "lenient")]
            b: bool,
            #[serde(default, deserialize_with = "lenient_opt")]
            o: Option<u16>,
        }
        let c: C = serde_json::from_str(r#"{"n": "42", "b": "true", "o": ""}"#).unwrap();
        assert_eq!((c.n, c.b, c.o), (42, true, None));
        let c: C = serde_json::from_str(r#"{"n": 7, "b": false, "o": "9"}"#).unwrap();
        assert_eq!((c.n, c.b, c.o), (7, false, Some(9)));
        assert!(serde_json::from_str::<C>(r#"{"n": "x", "b": true}"#).is_err());
    }

    #[test]
    fn config_errors_name_the_key_and_the_bound() {
        #[derive(Debug, Deserialize)]
        struct Server {
            #[serde(deserialize_with = "lenient")]
            port: u16,
            #[serde(default, deserialize_with = "lenient_opt")]
            timeout: Option<u32>,
        }
        let backend = |config: Json| BackendConfig {
            name: "doc".into(),
            storage_type: StorageType::DocumentDb,
            backend: "mysql".into(),
            default: false,
            config: match config {
                Json::Object(m) => m,
                _ => unreachable!(),
            },
        };
        let err = backend(serde_json::json!({"port": 70000}))
            .parse::<Server>()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`port`") && err.contains("70000") && err.contains("u16"),
            "{err}"
        );
        let err = backend(serde_json::json!({"port": "70000"}))
            .parse::<Server>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("`port`") && err.contains("\"70000\""), "{err}");
        let err = backend(serde_json::json!({"port": 1, "timeout": -3}))
            .parse::<Server>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("`timeout`") && err.contains("-3"), "{err}");
        let ok = backend(serde_json::json!({"port": " 8000 ", "timeout": null}))
            .parse::<Server>()
            .unwrap();
        assert_eq!((ok.port, ok.timeout), (8000, None));
    }

    #[test]
    fn substitution_edge_cases() {
        let e = |n: &str| (n == "A").then(|| "1".to_string());
        assert_eq!(substitute("${A}-${B:x:y}-${C:}", &e).unwrap(), "1-x:y-");
        assert!(substitute("${A", &e).is_err());
        assert!(substitute("${A B}", &e).is_err());
        assert!(parse_config("storage: [", e).is_err());
    }

    #[test]
    fn resolve_path_is_relative_to_base() {
        let p = resolve_path("path", Path::new("db.sqlite"), Some(Path::new("/etc/oc"))).unwrap();
        assert_eq!(p, PathBuf::from("/etc/oc/db.sqlite"));
        assert!(resolve_path("path", Path::new(""), None).is_err());
    }
}
