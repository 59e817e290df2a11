//! The layers: discovering files, mapping environment variables and command-line overrides
//! to keys, checking every key against the known ones (with its origin), merging with the
//! `config` crate, and typing the result.

use config::{FileFormat, Map, Value, ValueKind};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};

use prismq_domain::settings::SettingValue;
use prismq_domain::Plugin;

use super::plugin_sections::PluginSections;
use super::raw::{Raw, RawConfig, KEYS, SECTIONS};
use super::typed::build;
use super::{Config, ConfigError, Origin};

/// The configuration file's name, in the platform directory and the working directory.
pub const FILE_NAME: &str = "prismq.toml";
/// The prefix of environment variables that set keys: `PRISMQ_WORKER__CONCURRENCY`.
pub const ENV_PREFIX: &str = "PRISMQ_";
/// Names the configuration file when `--config` is not given.
pub const ENV_CONFIG_FILE: &str = "PRISMQ_CONFIG";
/// The API key `prismq work --server` reads: not a configuration key, so it is never
/// loaded, shown or redacted with the configuration.
pub const ENV_API_KEY: &str = "PRISMQ_API_KEY";
/// Environment variables that set a key of the app's under another name (plugins declare
/// their own, such as `YOUTUBE_API_KEY`). The `PRISMQ_SECTION__KEY` form wins when both are
/// set.
pub const ENV_ALIASES: &[(&str, &str)] = &[("PRISMQ_QUEUE_DB_PATH", "database.path")];

/// The most a configuration file may hold (1 MiB): ours are a few kilobytes, and a file that
/// never ends (`--config /dev/zero`) must not be read into memory whole.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// The keys, sections and environment aliases the loader accepts: the app's own plus every
/// plugin's.
#[derive(Debug, Clone, Default)]
pub(super) struct Known {
    /// Every key, `section.field`, in the order `config show` lists them.
    pub keys: Vec<String>,
    /// Every section.
    pub sections: Vec<String>,
    /// (environment variable, key) for the aliases.
    pub aliases: Vec<(String, String)>,
}

impl Known {
    /// The app's keys with the plugins' sections after `[retry]`, where `[youtube]` was
    /// always listed.
    pub(super) fn new(plugins: &[&dyn Plugin]) -> Known {
        let mut known = Known::default();
        let mut plugin_keys = Vec::new();
        for p in plugins {
            known.sections.push(p.name().to_owned());
            for s in p.settings() {
                let key = format!("{}.{}", p.name(), s.key);
                for alias in s.env_aliases {
                    known.aliases.push(((*alias).to_owned(), key.clone()));
                }
                plugin_keys.push(key);
            }
        }
        for (var, key) in ENV_ALIASES {
            known.aliases.push(((*var).to_owned(), (*key).to_owned()));
        }
        let split = KEYS
            .iter()
            .position(|k| k.starts_with("logging."))
            .unwrap_or(KEYS.len());
        known
            .keys
            .extend(KEYS[..split].iter().map(|k| (*k).to_owned()));
        known.keys.extend(plugin_keys);
        known
            .keys
            .extend(KEYS[split..].iter().map(|k| (*k).to_owned()));
        let app_sections = SECTIONS.iter().map(|s| (*s).to_owned());
        known.sections = app_sections.chain(known.sections).collect();
        known
    }
}

/// Everything the loader reads, given explicitly so tests need neither the process's
/// environment nor its working directory.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The platform's configuration directory (`prismq.toml` is read from it if present).
    pub platform_config_dir: Option<PathBuf>,
    /// The working directory (`prismq.toml` is read from it if present and no file is named
    /// explicitly); relative explicit paths are resolved against it.
    pub working_dir: Option<PathBuf>,
    /// `--config FILE`: read instead of the working directory's file; it must exist.
    pub config_file: Option<PathBuf>,
    /// The environment. Empty values count as unset.
    pub env: BTreeMap<String, String>,
    /// Environment variables left out of `env` because their name or value is not UTF-8
    /// (names with invalid bytes replaced by U+FFFD). A `PRISMQ_*` one, or an alias of a
    /// key, is refused rather than ignored.
    pub non_utf8_env: Vec<String>,
    /// Command-line overrides as (key, value), applied in order, last wins.
    pub overrides: Vec<(String, String)>,
}

impl LoadOptions {
    /// Options for a real process: the platform directory, the current directory and the
    /// process's environment, plus the CLI's `--config` and overrides.
    pub fn from_process(config_file: Option<PathBuf>, overrides: Vec<(String, String)>) -> Self {
        let (env, non_utf8_env) = split_env(std::env::vars_os());
        LoadOptions {
            platform_config_dir: platform_config_dir(),
            working_dir: std::env::current_dir().ok(),
            config_file,
            env,
            non_utf8_env,
            overrides,
        }
    }
}

/// The variables whose name and value are UTF-8, and the names of the others.
pub(super) fn split_env(
    vars: impl Iterator<Item = (OsString, OsString)>,
) -> (BTreeMap<String, String>, Vec<String>) {
    let mut env = BTreeMap::new();
    let mut bad = Vec::new();
    for (k, v) in vars {
        match (k.into_string(), v.into_string()) {
            (Ok(k), Ok(v)) => {
                env.insert(k, v);
            }
            (Ok(k), Err(_)) => bad.push(k),
            (Err(k), _) => bad.push(k.to_string_lossy().into_owned()),
        }
    }
    (env, bad)
}

/// Whether the loader reads `var`: a `PRISMQ_*` variable or an alias.
fn is_ours(var: &str, known: &Known) -> bool {
    var.starts_with(ENV_PREFIX) || known.aliases.iter().any(|(a, _)| a == var)
}

/// Refuses a variable of ours that is not UTF-8, before anything else is read: ignoring it
/// would silently fall back to another file or a default.
fn check_utf8_env(opts: &LoadOptions, known: &Known) -> Result<(), ConfigError> {
    match opts.non_utf8_env.iter().find(|v| is_ours(v, known)) {
        Some(var) => Err(ConfigError::NotUtf8 { var: var.clone() }),
        None => Ok(()),
    }
}

/// The platform's configuration directory for PrismQ (`~/.config/prismq` on Linux,
/// `%APPDATA%\PrismQ\config` on Windows, `~/Library/Application Support/PrismQ` on macOS).
pub fn platform_config_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "PrismQ").map(|d| d.config_dir().to_path_buf())
}

struct Layer {
    config: config::Config,
    origins: BTreeMap<String, Origin>,
}

pub(super) fn load(opts: &LoadOptions, plugins: &[&dyn Plugin]) -> Result<Config, ConfigError> {
    let known = Known::new(plugins);
    check_utf8_env(opts, &known)?;
    let mut layers = Vec::new();
    if let Some(dir) = &opts.platform_config_dir {
        let p = dir.join(FILE_NAME);
        if p.is_file() {
            layers.push(file_layer(&p, &known)?);
        }
    }
    let explicit = opts.config_file.clone().or_else(|| {
        opts.env
            .get(ENV_CONFIG_FILE)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    match explicit {
        Some(p) => {
            let p = match &opts.working_dir {
                Some(wd) => wd.join(p),
                None => p,
            };
            if !p.exists() {
                return Err(ConfigError::MissingFile { path: p });
            }
            layers.push(file_layer(&p, &known)?);
        }
        None => {
            if let Some(wd) = &opts.working_dir {
                let p = wd.join(FILE_NAME);
                if p.is_file() {
                    layers.push(file_layer(&p, &known)?);
                }
            }
        }
    }
    layers.push(env_layer(&opts.env, &known)?);
    layers.push(override_layer(&opts.overrides, &known)?);

    let mut builder = config::Config::builder();
    let mut origins = BTreeMap::new();
    for layer in layers {
        origins.extend(layer.origins);
        builder = builder.add_source(layer.config);
    }
    let merged = builder.build().map_err(malformed)?;
    let mut tree = merged.collect_table().map_err(malformed)?;
    let mut plugin_raw = BTreeMap::new();
    for p in plugins {
        if let Some(section) = tree.remove(p.name()) {
            let values: BTreeMap<String, SettingValue> =
                section.try_deserialize().map_err(malformed)?;
            plugin_raw.insert(p.name().to_owned(), values);
        }
    }
    let raw: RawConfig = Value::new(None, ValueKind::Table(tree))
        .try_deserialize()
        .map_err(malformed)?;
    let sections = PluginSections::build(plugins, plugin_raw, &origins)?;
    build(raw, sections, known.keys, origins)
}

fn malformed(e: config::ConfigError) -> ConfigError {
    ConfigError::Malformed(e.to_string())
}

/// The file's text, at most [`MAX_FILE_BYTES`] of UTF-8. Any readable file is read (a pipe
/// such as `--config <(…)`, `/dev/null`), never more than the cap plus one byte.
fn read_file(path: &Path) -> Result<String, ConfigError> {
    let err = |reason: String| ConfigError::File {
        path: path.to_path_buf(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
    if file.metadata().is_ok_and(|m| m.is_dir()) {
        return Err(err(
            "it is a directory; accepted: a TOML file such as prismq.toml".into(),
        ));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| err(e.to_string()))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(err(format!(
            "it holds more than {MAX_FILE_BYTES} bytes (1 MiB), the most a configuration file may hold; accepted: a TOML file of at most 1 MiB"
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        err(format!(
            "byte {} is not UTF-8; accepted: a TOML file in UTF-8",
            e.utf8_error().valid_up_to()
        ))
    })
}

fn file_layer(path: &Path, known: &Known) -> Result<Layer, ConfigError> {
    let text = read_file(path)?;
    let file_err = |e: config::ConfigError| ConfigError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let config = config::Config::builder()
        .add_source(config::File::from_str(&text, FileFormat::Toml))
        .build()
        .map_err(file_err)?;
    let tree: Map<String, Value> = config.collect_table().map_err(file_err)?;
    let origin = Origin::File(path.to_path_buf());
    let mut origins = BTreeMap::new();
    for (section, value) in &tree {
        check_section(section, &origin, known)?;
        let ValueKind::Table(fields) = &value.kind else {
            return Err(ConfigError::InvalidValue {
                key: section.clone(),
                value: render_value(value),
                problem: "a section must be a table".into(),
                accepted: format!("a table such as [{section}]"),
                origin,
            });
        };
        for field in fields.keys() {
            let key = format!("{section}.{field}");
            check_key(&key, &origin, known)?;
            origins.insert(key, origin.clone());
        }
    }
    Ok(Layer { config, origins })
}

trait CollectTable {
    fn collect_table(&self) -> Result<Map<String, Value>, config::ConfigError>;
}

impl CollectTable for config::Config {
    fn collect_table(&self) -> Result<Map<String, Value>, config::ConfigError> {
        config::Source::collect(self)
    }
}

fn render_value(v: &Value) -> String {
    v.clone()
        .try_deserialize::<Raw>()
        .map_or_else(|_| "?".to_owned(), |r| r.render())
}

fn section_keys(section: &str, known: &Known) -> Vec<String> {
    known
        .keys
        .iter()
        .filter(|k| k.split_once('.').is_some_and(|(s, _)| s == section))
        .cloned()
        .collect()
}

fn check_section(section: &str, origin: &Origin, known: &Known) -> Result<(), ConfigError> {
    if known.sections.iter().any(|s| s == section) {
        Ok(())
    } else {
        Err(ConfigError::UnknownKey {
            key: section.to_owned(),
            origin: origin.clone(),
            known: known.sections.clone(),
        })
    }
}

fn check_key(key: &str, origin: &Origin, known: &Known) -> Result<(), ConfigError> {
    if known.keys.iter().any(|k| k == key) {
        return Ok(());
    }
    let section = key.split_once('.').map_or(key, |(s, _)| s);
    check_section(section, origin, known)?;
    Err(ConfigError::UnknownKey {
        key: key.to_owned(),
        origin: origin.clone(),
        known: section_keys(section, known),
    })
}

/// The environment variable that sets `key` (`worker.lease` → `PRISMQ_WORKER__LEASE`).
pub fn env_var_for(key: &str) -> String {
    format!(
        "{ENV_PREFIX}{}",
        key.replace('.', "__").to_ascii_uppercase()
    )
}

fn env_layer(env: &BTreeMap<String, String>, known: &Known) -> Result<Layer, ConfigError> {
    // key -> (value, variable)
    let mut set: BTreeMap<String, (String, String)> = BTreeMap::new();
    for (var, key) in &known.aliases {
        if let Some(v) = env.get(var).filter(|v| !v.is_empty()) {
            set.insert(key.clone(), (v.clone(), var.clone()));
        }
    }
    for (var, value) in env {
        let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if var == ENV_CONFIG_FILE
            || var == ENV_API_KEY
            || known.aliases.iter().any(|(a, _)| a == var)
            || value.is_empty()
        {
            continue;
        }
        let origin = Origin::Env(var.clone());
        let Some((section, field)) = rest.split_once("__") else {
            return Err(ConfigError::UnknownKey {
                key: var.clone(),
                origin,
                known: known.keys.iter().map(|k| env_var_for(k)).collect(),
            });
        };
        let key = format!(
            "{}.{}",
            section.to_ascii_lowercase(),
            field.to_ascii_lowercase()
        );
        check_key(&key, &origin, known)?;
        set.insert(key, (value.clone(), var.clone()));
    }
    string_layer(
        set.into_iter()
            .map(|(k, (v, var))| (k, v, Origin::Env(var))),
    )
}

fn override_layer(overrides: &[(String, String)], known: &Known) -> Result<Layer, ConfigError> {
    let mut set: BTreeMap<String, String> = BTreeMap::new();
    for (key, value) in overrides {
        let key = key.trim().to_owned();
        check_key(&key, &Origin::Flag(key.clone()), known)?;
        set.insert(key, value.clone());
    }
    string_layer(set.into_iter().map(|(k, v)| {
        let o = Origin::Flag(k.clone());
        (k, v, o)
    }))
}

fn string_layer(
    entries: impl Iterator<Item = (String, String, Origin)>,
) -> Result<Layer, ConfigError> {
    let mut builder = config::Config::builder();
    let mut origins = BTreeMap::new();
    for (key, value, origin) in entries {
        builder = builder
            .set_override(key.as_str(), value)
            .map_err(malformed)?;
        origins.insert(key, origin);
    }
    Ok(Layer {
        config: builder.build().map_err(malformed)?,
        origins,
    })
}
