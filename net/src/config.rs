//! Reading a config file from disk into [`Options`].

use std::path::Path;

use natsd_core::conf::{self, ConfLoader, EnvLookup};
use natsd_core::options::Options;

/// Reads files for `include`.
#[derive(Debug, Clone, Copy, Default)]
pub struct FsLoader;

impl ConfLoader for FsLoader {
    fn load(&self, path: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(path)
    }
}

/// Reads the process environment for `$VAR` references.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl EnvLookup for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// The options a config file gives, and the keys it holds that this build accepts but ignores.
#[derive(Debug)]
pub struct Loaded {
    /// The options.
    pub options: Options,
    /// Keys accepted for compatibility but without effect yet (logged as warnings).
    pub ignored: Vec<String>,
}

/// Reads and maps a config file. Errors name the file and line.
pub fn load(path: &Path) -> Result<Loaded, String> {
    let src = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let map = conf::parse(&src, path, &FsLoader, &ProcessEnv).map_err(|e| e.to_string())?;
    let (mut options, report) =
        conf::options::options_from_conf(&map).map_err(|e| e.to_string())?;
    options.config_file = Some(path.to_path_buf());
    let mut ignored: Vec<String> = report
        .ignored
        .iter()
        .map(|k| format!("{}: {}", k.pos, k.key))
        .collect();
    ignored.extend(report.warnings.iter().map(ToString::to_string));
    Ok(Loaded { options, ignored })
}
