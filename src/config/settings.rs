//! Watch-daemon settings: `lamb.toml` in the project directory, `LAMB_*` environment variables,
//! flags, and samconfig's `watch_exclude`, resolved with one precedence everywhere:
//! flags > environment > lamb.toml > samconfig.toml > defaults.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ConfigError;
use super::samconfig::SamParams;

pub const FILE_NAME: &str = "lamb.toml";
pub const DEFAULT_DEBOUNCE_MS: u64 = 20;
pub const DEFAULT_JOBS: usize = 8;

/// `lamb.toml`, as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LambToml {
    #[serde(default)]
    pub watch: WatchSection,
    #[serde(default)]
    pub sync: SyncSection,
    #[serde(default)]
    pub log: LogSection,
    #[serde(default)]
    pub daemon: DaemonSection,
    /// Per-function settings, by logical id (or `Stack/Id`).
    #[serde(default)]
    pub functions: BTreeMap<String, FunctionSection>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchSection {
    pub debounce_ms: Option<u64>,
    pub exclude: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncSection {
    pub jobs: Option<usize>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    pub format: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonSection {
    pub socket: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionSection {
    /// Extra paths (relative to the project) whose changes resync this function: shared code
    /// that lives outside its CodeUri.
    #[serde(default)]
    pub watch: Vec<PathBuf>,
}

/// Reads `lamb.toml` from `root`; absent is empty.
pub fn read(root: &Path) -> Result<LambToml, ConfigError> {
    let file = root.join(FILE_NAME);
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(LambToml::default()),
        Err(e) => return Err(ConfigError::LambToml { file, message: format!("cannot read it: {e}") }),
    };
    toml::from_str(&text).map_err(|e| ConfigError::LambToml {
        file,
        message: format!("{}; see config/lamb.toml in lamb's repository for every option", e.to_string().trim()),
    })
}

/// Flags that override everything else.
#[derive(Debug, Clone, Default)]
pub struct WatchFlags {
    pub debounce_ms: Option<u64>,
    pub exclude: Vec<String>,
    pub jobs: Option<usize>,
    pub socket: Option<PathBuf>,
    pub log_json: Option<bool>,
}

/// The resolved settings of a watch daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchSettings {
    pub debounce_ms: u64,
    pub exclude: Vec<String>,
    pub jobs: usize,
    pub socket: Option<PathBuf>,
    pub log_json: bool,
    /// Extra watched paths per function id (absolute).
    pub extra_watch: BTreeMap<String, Vec<PathBuf>>,
}

/// Resolves settings: flags > `env` > lamb.toml > samconfig > defaults.
pub fn resolve(
    root: &Path,
    flags: &WatchFlags,
    env: &dyn Fn(&str) -> Option<String>,
    toml: &LambToml,
    sam: &SamParams,
) -> Result<WatchSettings, ConfigError> {
    let bad = |var: &str, v: &str, want: &str| ConfigError::Env {
        var: var.to_string(),
        message: format!("`{v}` is not {want}"),
    };
    let env_u64 = |var: &str| -> Result<Option<u64>, ConfigError> {
        env(var).map(|v| v.trim().parse::<u64>().map_err(|_| bad(var, &v, "a whole number"))).transpose()
    };
    let debounce_ms = match flags.debounce_ms {
        Some(v) => v,
        None => env_u64("LAMB_DEBOUNCE_MS")?.or(toml.watch.debounce_ms).unwrap_or(DEFAULT_DEBOUNCE_MS),
    };
    let jobs = match flags.jobs {
        Some(v) => v,
        None => env_u64("LAMB_JOBS")?.map(|v| v as usize).or(toml.sync.jobs).unwrap_or(DEFAULT_JOBS),
    };
    if jobs == 0 {
        return Err(bad("LAMB_JOBS / [sync] jobs", "0", "at least 1"));
    }
    let exclude = if !flags.exclude.is_empty() {
        flags.exclude.clone()
    } else if let Some(v) = env("LAMB_WATCH_EXCLUDE") {
        v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
    } else if let Some(v) = &toml.watch.exclude {
        v.clone()
    } else {
        sam.list("watch_exclude")
    };
    for pat in &exclude {
        globset::Glob::new(pat)
            .map_err(|e| ConfigError::Env { var: "watch exclude".into(), message: format!("`{pat}`: {e}") })?;
    }
    let socket =
        flags.socket.clone().or_else(|| env("LAMB_SOCKET").map(PathBuf::from)).or_else(|| toml.daemon.socket.clone());
    let log_json = match flags.log_json {
        Some(v) => v,
        None => match env("LAMB_LOG_FORMAT").or_else(|| toml.log.format.clone()).as_deref() {
            None | Some("human") => false,
            Some("json") => true,
            Some(other) => return Err(bad("LAMB_LOG_FORMAT / [log] format", other, "`human` or `json`")),
        },
    };
    let extra_watch =
        toml.functions.iter().map(|(id, f)| (id.clone(), f.watch.iter().map(|p| root.join(p)).collect())).collect();
    Ok(WatchSettings { debounce_ms, exclude, jobs, socket, log_json, extra_watch })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toml(text: &str) -> LambToml {
        toml::from_str(text).unwrap()
    }

    fn sam(text: &str) -> SamParams {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("samconfig.toml");
        std::fs::write(&p, text).unwrap();
        super::super::samconfig::load(&p, "default", "sync").unwrap()
    }

    #[test]
    fn precedence_flags_env_toml_samconfig_defaults() {
        let root = Path::new("/p");
        let t = toml(
            "[watch]\ndebounce_ms = 50\nexclude = ['*.tmp']\n[sync]\njobs = 3\n[functions.Fn]\nwatch = ['shared']\n",
        );
        let s = sam("version = 0.1\n[default.sync.parameters]\nwatch_exclude = ['*.sam']\n");
        let no_env = |_: &str| None;
        let env = |k: &str| match k {
            "LAMB_DEBOUNCE_MS" => Some("30".to_string()),
            "LAMB_WATCH_EXCLUDE" => Some("*.env1, *.env2".to_string()),
            _ => None,
        };

        let defaults =
            resolve(root, &WatchFlags::default(), &no_env, &LambToml::default(), &SamParams::default()).unwrap();
        assert_eq!(
            (defaults.debounce_ms, defaults.jobs, defaults.exclude.len()),
            (DEFAULT_DEBOUNCE_MS, DEFAULT_JOBS, 0)
        );

        let from_sam = resolve(root, &WatchFlags::default(), &no_env, &LambToml::default(), &s).unwrap();
        assert_eq!(from_sam.exclude, ["*.sam"]);

        let from_toml = resolve(root, &WatchFlags::default(), &no_env, &t, &s).unwrap();
        assert_eq!((from_toml.debounce_ms, from_toml.jobs), (50, 3));
        assert_eq!(from_toml.exclude, ["*.tmp"]);
        assert_eq!(from_toml.extra_watch["Fn"], [PathBuf::from("/p/shared")]);

        let from_env = resolve(root, &WatchFlags::default(), &env, &t, &s).unwrap();
        assert_eq!(from_env.debounce_ms, 30);
        assert_eq!(from_env.exclude, ["*.env1", "*.env2"]);
        assert_eq!(from_env.jobs, 3, "no env for jobs: lamb.toml's");

        let flags =
            WatchFlags { debounce_ms: Some(5), exclude: vec!["*.flag".into()], jobs: Some(1), ..Default::default() };
        let from_flags = resolve(root, &flags, &env, &t, &s).unwrap();
        assert_eq!((from_flags.debounce_ms, from_flags.jobs), (5, 1));
        assert_eq!(from_flags.exclude, ["*.flag"]);
    }

    #[test]
    fn socket_and_log_format_follow_the_same_precedence() {
        let root = Path::new("/p");
        let t = toml(
            "[log]
format = 'json'
[daemon]
socket = '/toml.sock'
",
        );
        let no_env = |_: &str| None;
        let env = |k: &str| match k {
            "LAMB_SOCKET" => Some("/env.sock".to_string()),
            "LAMB_LOG_FORMAT" => Some("human".to_string()),
            _ => None,
        };
        let sam = SamParams::default();
        let d = resolve(root, &WatchFlags::default(), &no_env, &LambToml::default(), &sam).unwrap();
        assert_eq!((d.socket, d.log_json), (None, false), "defaults");
        let from_toml = resolve(root, &WatchFlags::default(), &no_env, &t, &sam).unwrap();
        assert_eq!((from_toml.socket.as_deref(), from_toml.log_json), (Some(Path::new("/toml.sock")), true));
        let from_env = resolve(root, &WatchFlags::default(), &env, &t, &sam).unwrap();
        assert_eq!((from_env.socket.as_deref(), from_env.log_json), (Some(Path::new("/env.sock")), false));
        let flags = WatchFlags { socket: Some("/flag.sock".into()), log_json: Some(true), ..Default::default() };
        let from_flags = resolve(root, &flags, &env, &t, &sam).unwrap();
        assert_eq!((from_flags.socket.as_deref(), from_flags.log_json), (Some(Path::new("/flag.sock")), true));
        let bad = |k: &str| (k == "LAMB_LOG_FORMAT").then(|| "xml".to_string());
        let e = resolve(root, &WatchFlags::default(), &bad, &t, &sam).unwrap_err().to_string();
        assert!(e.contains("LAMB_LOG_FORMAT") && e.contains("`xml`") && e.contains("`human` or `json`"), "{e}");
    }

    #[test]
    fn bad_values_name_their_source() {
        let root = Path::new("/p");
        let env = |k: &str| (k == "LAMB_DEBOUNCE_MS").then(|| "soon".to_string());
        let e = resolve(root, &WatchFlags::default(), &env, &LambToml::default(), &SamParams::default()).unwrap_err();
        assert!(e.to_string().contains("LAMB_DEBOUNCE_MS") && e.to_string().contains("`soon`"), "{e}");
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("lamb.toml"), "[watch]\ndebounce = 3\n").unwrap();
        let e = read(d.path()).unwrap_err().to_string();
        assert!(e.contains("lamb.toml") && e.contains("unknown field `debounce`"), "{e}");
    }

    #[test]
    fn the_documented_example_config_parses() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/lamb.toml")).unwrap();
        let t: LambToml = toml::from_str(&text).unwrap();
        let s = resolve(Path::new("/p"), &WatchFlags::default(), &|_| None, &t, &SamParams::default()).unwrap();
        assert_eq!(s.debounce_ms, DEFAULT_DEBOUNCE_MS, "the example shows the defaults");
        assert_eq!(s.jobs, DEFAULT_JOBS);
    }
}
