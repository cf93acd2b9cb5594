//! Ruby functions (Runtime ruby3.x, or `BuildMethod: ruby3.x`): the sources, plus, when there
//! is a Gemfile, `bundle install` into `vendor/bundle` as SAM's ruby_bundler builder does it
//! (development and test groups left out), in a scratch copy of the sources. Lambda's Ruby
//! runtime loads gems from `vendor/bundle/ruby/<ABI version>/`, so the install's directory is
//! named after the runtime's version; gems with compiled extensions must have been built by
//! that same Ruby version, or the build fails naming them.
//!
//! A layer (`BuildMethod: ruby3.x`) has the layout Lambda's Ruby runtime reads from `/opt`:
//! the sources under `ruby/lib/` (on the load path; SAM puts them there too) and the gems
//! under `ruby/gems/<ABI version>/` (on GEM_PATH), so a function's plain `require` finds both.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::{BuildError, Builder, Built, Prepared, tools};

/// Where a layer's own files go.
pub(super) const LAYER_SOURCES: &str = "ruby/lib/";

pub(super) const INSTALL: &str =
    "install Ruby and Bundler (e.g. `apt install ruby ruby-bundler`), the Ruby version of the function's runtime";

/// The host Ruby's ABI version (`3.3.0`), part of the build key of functions with a Gemfile;
/// probed once per process.
pub fn locate() -> Result<(PathBuf, String), BuildError> {
    static VERSION: OnceLock<Result<String, String>> = OnceLock::new();
    let found = VERSION.get_or_init(|| {
        let mut cmd = Command::new("ruby");
        cmd.args(["-e", "print RbConfig::CONFIG['ruby_version']"]);
        match tools::run(&mut cmd, "ruby", INSTALL) {
            Ok(v) => Ok(v.trim().to_string()),
            Err(BuildError::MissingTool { .. }) => Err(String::new()),
            Err(e) => Err(e.to_string()),
        }
    });
    match found {
        Ok(v) => Ok((PathBuf::from("bundle"), v.clone())),
        Err(e) if e.is_empty() => Err(BuildError::MissingTool { tool: "ruby".into(), install: INSTALL.into() }),
        Err(e) => Err(BuildError::Properties(format!("cannot tell which Ruby is installed: {e}"))),
    }
}

/// The gem directory Lambda's `rubyX.Y` runtime reads: `X.Y.0`.
pub fn abi_version(runtime: &str) -> Option<String> {
    let v = runtime.strip_prefix("ruby")?;
    let (major, minor) = v.split_once('.')?;
    (major.parse::<u32>().is_ok() && minor.parse::<u32>().is_ok()).then(|| format!("{major}.{minor}.0"))
}

fn bundle(src: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("bundle");
    cmd.args(args)
        .current_dir(src)
        // The scratch copy's own settings, not a parent directory's; the environment's would win.
        .env("BUNDLE_GEMFILE", src.join("Gemfile"))
        .env("BUNDLE_APP_CONFIG", src.join(".bundle"))
        .env_remove("BUNDLE_PATH")
        .env_remove("BUNDLE_WITHOUT");
    cmd
}

pub fn build(b: &Builder, p: &Prepared, runtime: &str, host_abi: &str) -> Result<Built, BuildError> {
    let t = &p.target;
    let gemfile = t.source.join("Gemfile");
    let (work, src, _) = b.scratch(p)?;
    // A deployment install, SAM's final step: exactly Gemfile.lock's versions, into
    // vendor/bundle, from vendor/cache when the project caches its gems (no network then).
    // Written to the zip's `.bundle/config` too, so `require "bundler/setup"` finds the gems.
    let set = |key: &str, value: &str| {
        tools::run(&mut bundle(&src, &["config", "set", "--local", key, value]), "bundle", INSTALL).map(drop)
    };
    set("path", "vendor/bundle")?;
    set("without", "development:test")?;
    let failed = |e: BuildError, fix: String| match e {
        BuildError::ToolFailed { run, .. } => {
            BuildError::InstallFailed { tool: "bundler", manifest: gemfile.clone(), run, fix }
        }
        other => other,
    };
    if !p.files.iter().any(|f| f.rel == "Gemfile.lock") {
        // Without a lockfile, resolve one in the scratch copy (SAM's first `bundle install`
        // does, and installs into the system's gems as well).
        tools::run(&mut bundle(&src, &["lock"]), "bundle", INSTALL).map_err(|e| {
            failed(e, format!("fix the Gemfile of `{}` (gem names and versions) and save again", t.logical_id))
        })?;
    }
    // After locking: a frozen bundle cannot be locked.
    set("deployment", "true")?;
    tools::run(&mut bundle(&src, &["install", "--quiet"]), "bundle", INSTALL).map_err(|e| {
        failed(
            e,
            format!(
                "run `bundle lock` in {} after editing the Gemfile, so Gemfile.lock matches it, and fix what bundler names",
                t.source.display()
            ),
        )
    })?;
    let want = abi_version(runtime).unwrap_or_else(|| host_abi.to_string());
    let gems = src.join("vendor/bundle/ruby");
    if want != host_abi && gems.join(host_abi).is_dir() {
        let compiled = gems.join(host_abi).join("extensions");
        if let Some(native) = first_entry(&compiled) {
            return Err(BuildError::Manifest {
                file: gemfile,
                line: None,
                problem: format!(
                    "`{native}` has a compiled extension built by this machine's Ruby ({host_abi}), which {runtime} cannot load; build with Ruby {} on PATH, or with BuildMethod makefile",
                    want.trim_end_matches(".0")
                ),
            });
        }
        // Pure-Ruby gems load in any 3.x: put them where the runtime looks.
        fs::rename(gems.join(host_abi), gems.join(&want))
            .map_err(|source| BuildError::Io { what: format!("cannot rename {}", gems.display()), source })?;
    }
    let root = if t.is_layer { layer_layout(&work, &src, &want)? } else { src };
    let artifact = b.pack_dir(p, &work, &root, || BuildError::NoOutput {
        step: "`bundle install`".into(),
        fix: "check the code directory".into(),
    })?;
    Ok(Built { artifact, deps: None })
}

/// Moves an installed layer into Lambda's layout under `work/layer`: the gems to
/// `ruby/gems/<abi>/`, the rest of the sources (without bundler's settings) to `ruby/lib/`.
fn layer_layout(work: &Path, src: &Path, abi: &str) -> Result<PathBuf, BuildError> {
    let layer = work.join("layer");
    let io = |what: String| move |source| BuildError::Io { what, source };
    let gems_to = layer.join("ruby/gems");
    fs::create_dir_all(&gems_to).map_err(io(format!("cannot create {}", gems_to.display())))?;
    let installed = src.join("vendor/bundle/ruby").join(abi);
    if installed.is_dir() {
        fs::rename(&installed, gems_to.join(abi)).map_err(io(format!("cannot move {}", installed.display())))?;
    }
    for gone in ["vendor/bundle", ".bundle"] {
        let _ = fs::remove_dir_all(src.join(gone));
    }
    // An emptied vendor/ (its only content was the install) is not the layer's.
    let _ = fs::remove_dir(src.join("vendor"));
    fs::rename(src, layer.join(LAYER_SOURCES)).map_err(io(format!("cannot move {}", src.display())))?;
    Ok(layer)
}

/// The name of a gem with a compiled extension under `extensions/<platform>/<abi>/`.
fn first_entry(dir: &Path) -> Option<String> {
    let mut stack = vec![(dir.to_path_buf(), 0)];
    while let Some((d, depth)) = stack.pop() {
        for e in fs::read_dir(&d).ok()?.flatten() {
            if depth == 2 {
                return Some(e.file_name().to_string_lossy().into_owned());
            }
            if e.path().is_dir() {
                stack.push((e.path(), depth + 1));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gems_go_where_the_runtime_looks() {
        assert_eq!(abi_version("ruby3.3").as_deref(), Some("3.3.0"));
        assert_eq!(abi_version("ruby3.2").as_deref(), Some("3.2.0"));
        assert_eq!(abi_version("ruby"), None);
    }

    #[test]
    fn a_layer_puts_gems_on_gem_path_and_sources_on_the_load_path() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        fs::create_dir_all(src.join("vendor/bundle/ruby/3.3.0/gems/tzinfo-2.0.6/lib")).unwrap();
        fs::create_dir_all(src.join("vendor/cache")).unwrap();
        fs::create_dir_all(src.join(".bundle")).unwrap();
        fs::write(src.join(".bundle/config"), "BUNDLE_PATH: vendor/bundle").unwrap();
        fs::write(src.join("vendor/cache/tzinfo-2.0.6.gem"), "gem").unwrap();
        fs::write(src.join("helpers.rb"), "module Helpers; end").unwrap();
        let layer = layer_layout(d.path(), &src, "3.3.0").unwrap();
        assert!(layer.join("ruby/gems/3.3.0/gems/tzinfo-2.0.6/lib").is_dir());
        assert!(layer.join("ruby/lib/helpers.rb").is_file());
        assert!(layer.join("ruby/lib/vendor/cache/tzinfo-2.0.6.gem").is_file());
        assert!(!layer.join("ruby/lib/vendor/bundle").exists() && !layer.join("ruby/lib/.bundle").exists());
    }

    #[test]
    fn compiled_extensions_are_found_by_gem() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(first_entry(d.path()), None);
        fs::create_dir_all(d.path().join("x86_64-linux/3.1.0/nokogiri-1.16.0")).unwrap();
        assert_eq!(first_entry(d.path()).as_deref(), Some("nokogiri-1.16.0"));
    }
}
