//! What a module may write to: the files and endpoints the operator allowed for it in
//! `plugins.toml` (`allow_log_files`, `allow_log_endpoints` of `[modules.NAME]`). Nothing is
//! allowed unless listed there.

use super::Endpoint;
use crate::config::relative_to;
use std::path::{Component, Path, PathBuf};

/// A file a module may append to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct AllowedFile {
    /// Absolute and normalised.
    pub(crate) path: PathBuf,
    /// The granted directory it is in, when it was allowed by one.
    pub(crate) within: Option<PathBuf>,
}

/// The destinations one module may open sinks on.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct SinkGrants {
    module: String,
    /// `plugins.toml`, which relative paths are resolved against.
    base: PathBuf,
    /// Allowed files, absolute and normalised; `true` for a directory (an entry ending in `/`):
    /// any file below it.
    files: Vec<(PathBuf, bool)>,
    /// Allowed endpoints, by [`Endpoint::name`].
    endpoints: Vec<String>,
}

impl SinkGrants {
    /// The grants of module `module` from its settings; `plugins_toml` is where they were read.
    pub(crate) fn new(
        module: &str,
        files: &[String],
        endpoints: &[String],
        plugins_toml: &Path,
    ) -> Result<SinkGrants, String> {
        let mut grants =
            SinkGrants { module: module.to_string(), base: plugins_toml.to_path_buf(), ..Default::default() };
        for f in files {
            let path = grants.resolve(f).map_err(|e| format!("allow_log_files: {e}"))?;
            grants.files.push((path, f.ends_with('/')));
        }
        for e in endpoints {
            grants.endpoints.push(Endpoint::parse(e).map_err(|e| format!("allow_log_endpoints: {e}"))?.name());
        }
        Ok(grants)
    }

    /// `path` as an absolute, normalised path, if it is allowed, with the directory grant that
    /// allows it. The writer opens the normalised path (so `..` never passes through a symbolic
    /// link) and checks that no symbolic link leads out of a granted directory.
    pub(crate) fn file(&self, path: &str) -> Result<AllowedFile, String> {
        let resolved = self.resolve(path)?;
        let grant = self
            .files
            .iter()
            .find(|(p, dir)| if *dir { resolved.starts_with(p) && resolved != *p } else { resolved == *p });
        let Some((granted, dir)) = grant else {
            return Err(format!(
                "{path:?} is not allowed for module {m}; the operator allows it with allow_log_files = [{:?}] in [modules.{m}] of plugins.toml",
                resolved.display(),
                m = self.module
            ));
        };
        Ok(AllowedFile { path: resolved, within: dir.then(|| granted.clone()) })
    }

    /// `endpoint` parsed, if it is allowed (credentials in it do not matter).
    pub(crate) fn endpoint(&self, endpoint: &str) -> Result<Endpoint, String> {
        let parsed = Endpoint::parse(endpoint)?;
        let name = parsed.name();
        if !self.endpoints.contains(&name) {
            return Err(format!(
                "{name:?} is not allowed for module {m}; the operator allows it with allow_log_endpoints = [{name:?}] in [modules.{m}] of plugins.toml",
                m = self.module
            ));
        }
        Ok(parsed)
    }

    /// Relative to `plugins.toml`, absolute, with `.` and `..` worked out.
    fn resolve(&self, path: &str) -> Result<PathBuf, String> {
        if path.is_empty() {
            return Err("an empty path".into());
        }
        let joined =
            std::path::absolute(relative_to(&self.base, Path::new(path))).map_err(|e| format!("{path:?}: {e}"))?;
        let mut normal = PathBuf::new();
        for c in joined.components() {
            match c {
                Component::CurDir => {}
                Component::ParentDir => {
                    normal.pop();
                }
                other => normal.push(other),
            }
        }
        Ok(normal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants() -> SinkGrants {
        let files = ["logs/ops.log".to_string(), "/var/log/gw/".to_string()];
        let endpoints = ["http://Logs.Local:9000/in".to_string()];
        SinkGrants::new("file-log", &files, &endpoints, Path::new("/etc/wasmgate/plugins.toml")).unwrap()
    }

    #[test]
    fn only_listed_files_and_directories_are_allowed() {
        let g = grants();
        let ops = g.file("/etc/wasmgate/logs/ops.log").unwrap();
        assert_eq!((ops.path.as_path(), ops.within), (Path::new("/etc/wasmgate/logs/ops.log"), None));
        assert_eq!(g.file("logs/./ops.log").unwrap().path, Path::new("/etc/wasmgate/logs/ops.log"));
        assert_eq!(g.file("logs/x/../ops.log").unwrap().path, Path::new("/etc/wasmgate/logs/ops.log"));
        assert_eq!(g.file("/var/log/gw/a.log").unwrap().within.as_deref(), Some(Path::new("/var/log/gw")));
        assert!(g.file("/var/log/gw/../../../etc/passwd").is_err(), "no way out by ..");
        assert!(g.file("/var/log/gw").is_err(), "the directory itself is not a file");
        let e = g.file("/tmp/x.log").unwrap_err();
        assert!(e.contains("allow_log_files") && e.contains("[modules.file-log]"), "{e}");
    }

    #[test]
    fn endpoints_match_without_credentials() {
        let g = grants();
        assert!(g.endpoint("http://user:pw@logs.local:9000/in").is_ok());
        let e = g.endpoint("http://logs.local:9000/other").unwrap_err();
        assert!(e.contains("allow_log_endpoints"), "{e}");
        assert!(
            SinkGrants::new("m", &[], &["nope".into()], Path::new("p.toml"))
                .unwrap_err()
                .starts_with("allow_log_endpoints:")
        );
    }
}
