//! Choosing how a resource is built: `Metadata.BuildMethod` first, then the runtime, as SAM does.

use crate::project::{Code, CodeResource};

/// How a resource's artifact is made.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Sources plus `pip install -r requirements.txt`.
    Python { runtime: String },
    /// Sources plus `npm ci`/`npm install --omit=dev`.
    Nodejs { runtime: String },
    /// `make build-<LogicalId>` with `ARTIFACTS_DIR`.
    Makefile,
    /// TypeScript/JavaScript bundled with esbuild (`Metadata.BuildProperties`).
    Esbuild { runtime: String },
    /// `go build` for Linux and the function's architecture (`runtime` is the function's:
    /// `go1.x`, or a `provided` one with `BuildMethod: go1.x`).
    Go { runtime: String },
    /// `cargo lambda build --release` (`BuildMethod: rust-cargolambda`).
    #[serde(rename = "rust-cargolambda")]
    CargoLambda,
    /// Sources plus `bundle install` into `vendor/bundle` when there is a Gemfile.
    Ruby { runtime: String },
    /// `mvn clean install` of a project with a pom.xml: classes at the top, jars in `lib/`.
    Maven { runtime: String },
    /// `gradle build` (the project's `gradlew` when it has one) of a project with a
    /// build.gradle(.kts): classes at the top, runtime jars in `lib/`.
    Gradle { runtime: String },
    /// `dotnet lambda package` (Amazon.Lambda.Tools) for the function's architecture.
    Dotnet { runtime: String },
    /// The directory, packed as is.
    Prebuilt,
    /// A zip file, used as is.
    Zip,
    /// One file (`CodeUri: src/function.js`), packed alone at the zip's root.
    File,
}

impl Method {
    pub fn name(&self) -> &str {
        match self {
            Method::Python { runtime } | Method::Nodejs { runtime } => runtime,
            Method::Makefile => "makefile",
            Method::Esbuild { .. } => "esbuild",
            Method::Go { .. } => "go1.x",
            Method::CargoLambda => "rust-cargolambda",
            Method::Ruby { runtime }
            | Method::Maven { runtime }
            | Method::Gradle { runtime }
            | Method::Dotnet { runtime } => runtime,
            Method::Prebuilt => "prebuilt",
            Method::Zip => "zip",
            Method::File => "file",
        }
    }
}

/// Why a resource is not built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotBuilt {
    /// Nothing to build (S3 code, inline code, images): not an error.
    Skip(String),
    /// The resource cannot be built as declared; the message names the fix.
    Error(String),
}

fn is_python(r: &str) -> bool {
    r.starts_with("python3")
}

fn is_node(r: &str) -> bool {
    r.starts_with("nodejs")
}

fn is_ruby(r: &str) -> bool {
    r.starts_with("ruby")
}

fn is_dotnet(r: &str) -> bool {
    r.starts_with("dotnet")
}

/// A Java function's builder, by the project file in its code directory, in SAM's order:
/// Gradle (`build.gradle`, `build.gradle.kts`) before Maven (`pom.xml`).
fn java(r: &str, code: &Code) -> Option<Method> {
    let Code::Dir(d) = code else { return None };
    if !r.starts_with("java") {
        return None;
    }
    let runtime = r.to_string();
    if ["build.gradle", "build.gradle.kts"].iter().any(|f| d.join(f).is_file()) {
        Some(Method::Gradle { runtime })
    } else if d.join("pom.xml").is_file() {
        Some(Method::Maven { runtime })
    } else {
        None
    }
}

/// A function's compiled-language build: the function's runtime, or the error a layer gets.
fn function_only(method: &str, runtime: Option<&str>, is_layer: bool) -> Result<String, NotBuilt> {
    match runtime {
        _ if is_layer => Err(NotBuilt::Error(format!(
            "BuildMethod {method} builds a function's executable, not a layer; build the layer with BuildMethod makefile"
        ))),
        Some(r) => Ok(r.to_string()),
        None => Err(NotBuilt::Error(format!("BuildMethod {method} needs a Runtime (e.g. provided.al2023)"))),
    }
}

/// Picks the build method for a function (`runtime` given) or a layer (`runtime` None).
pub fn select(res: &CodeResource, runtime: Option<&str>, is_layer: bool) -> Result<Method, NotBuilt> {
    if let Some(p) = &res.problem {
        return Err(NotBuilt::Error(p.clone()));
    }
    match &res.code {
        Code::S3(uri) => return Err(NotBuilt::Skip(format!("code is already in S3 ({uri}); nothing to build"))),
        Code::Inline => return Err(NotBuilt::Skip("inline code lives in the template; nothing to build".into())),
        Code::Image => {
            return Err(NotBuilt::Skip(
                "PackageType Image is not supported for code sync; build and push the image with docker, then deploy"
                    .into(),
            ));
        }
        Code::Invalid(msg) => return Err(NotBuilt::Error(msg.clone())),
        Code::Unbuilt { why, .. } => return Err(NotBuilt::Error(why.clone())),
        Code::Zip(_) => return Ok(Method::Zip),
        // There is nothing to install or bundle next to a lone file: SAM zips it as it is.
        Code::File(_) => return Ok(Method::File),
        Code::Dir(_) => {}
    }
    if res.build.skip_build {
        return Ok(Method::Prebuilt);
    }
    let makefile_hint = format!(
        "add `Metadata: {{BuildMethod: makefile}}` to `{}` and a Makefile in its code directory with a `build-{}` target that copies the build output to $ARTIFACTS_DIR",
        res.logical_id, res.logical_id
    );
    if let Some(m) = res.build.method.as_deref() {
        if let Some(j) = java(m, &res.code).filter(|_| !is_layer) {
            return Ok(j);
        }
        return match m {
            "makefile" => Ok(Method::Makefile),
            m if is_python(m) => Ok(Method::Python { runtime: m.to_string() }),
            m if is_node(m) => Ok(Method::Nodejs { runtime: m.to_string() }),
            "go1.x" => function_only(m, runtime, is_layer).map(|runtime| Method::Go { runtime }),
            "rust-cargolambda" => function_only(m, runtime, is_layer).map(|_| Method::CargoLambda),
            m if is_ruby(m) => Ok(Method::Ruby { runtime: m.to_string() }),
            m if is_layer && (m.starts_with("java") || is_dotnet(m)) => Err(NotBuilt::Error(format!(
                "BuildMethod {m} for a layer is not one lamb builds; {makefile_hint}"
            ))),
            m if is_dotnet(m) => Ok(Method::Dotnet { runtime: m.to_string() }),
            "esbuild" => match runtime {
                Some(r) if is_node(r) && !is_layer => Ok(Method::Esbuild { runtime: r.to_string() }),
                _ if is_layer => Err(NotBuilt::Error(
                    "BuildMethod esbuild bundles a function's entry points; build a layer with BuildMethod nodejs20.x (or makefile)".into(),
                )),
                _ => Err(NotBuilt::Error(
                    "BuildMethod esbuild bundles for Node.js; set Runtime to nodejs20.x (or another nodejs*.x)".into(),
                )),
            },
            other => Err(NotBuilt::Error(format!(
                "BuildMethod `{other}` is not one lamb can build (python3.x, nodejs*.x, esbuild, go1.x, rust-cargolambda, ruby3.x, java* with a build.gradle or pom.xml, dotnet*, makefile); {makefile_hint}"
            ))),
        };
    }
    if is_layer {
        // SAM packs a layer without a BuildMethod as it is.
        return Ok(Method::Prebuilt);
    }
    if let Some(j) = runtime.and_then(|r| java(r, &res.code)) {
        return Ok(j);
    }
    match runtime {
        Some(r) if is_python(r) => Ok(Method::Python { runtime: r.to_string() }),
        Some(r) if is_node(r) => Ok(Method::Nodejs { runtime: r.to_string() }),
        Some(r @ "go1.x") => Ok(Method::Go { runtime: r.to_string() }),
        Some(r) if is_ruby(r) => Ok(Method::Ruby { runtime: r.to_string() }),
        Some(r) if is_dotnet(r) => Ok(Method::Dotnet { runtime: r.to_string() }),
        Some(r) if r.starts_with("provided") => Ok(Method::Prebuilt),
        Some(r) if r.starts_with("java") => Err(NotBuilt::Error(format!(
            "runtime `{r}` without a build.gradle, build.gradle.kts or pom.xml in the code directory: lamb builds Java with Gradle or Maven; point CodeUri at the Java project's directory, or at a built .jar, or {makefile_hint}"
        ))),
        Some(r) => Err(NotBuilt::Error(format!("runtime `{r}` is not one lamb builds by itself; {makefile_hint}"))),
        None => Err(NotBuilt::Error(format!("no Runtime and no BuildMethod; set Runtime, or {makefile_hint}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::{Arch, BuildSpec, Flavor};
    use std::path::PathBuf;

    fn res(code: Code, method: Option<&str>) -> CodeResource {
        CodeResource {
            id: "Fn".into(),
            logical_id: "Fn".into(),
            resource_type: "AWS::Serverless::Function".into(),
            flavor: Flavor::Sam,
            template: PathBuf::from("template.yaml"),
            line: None,
            code,
            architecture: Arch::X86_64,
            build: BuildSpec { method: method.map(str::to_string), ..BuildSpec::default() },
            problem: None,
        }
    }

    fn dir() -> Code {
        Code::Dir(PathBuf::from("/p/src"))
    }

    #[test]
    fn by_runtime_and_by_build_method() {
        assert_eq!(
            select(&res(dir(), None), Some("python3.12"), false),
            Ok(Method::Python { runtime: "python3.12".into() })
        );
        assert_eq!(
            select(&res(dir(), None), Some("nodejs20.x"), false),
            Ok(Method::Nodejs { runtime: "nodejs20.x".into() })
        );
        assert_eq!(select(&res(dir(), None), Some("provided.al2023"), false), Ok(Method::Prebuilt));
        assert_eq!(select(&res(dir(), Some("makefile")), Some("provided.al2023"), false), Ok(Method::Makefile));
        assert_eq!(
            select(&res(dir(), Some("python3.11")), Some("python3.12"), false),
            Ok(Method::Python { runtime: "python3.11".into() })
        );
        assert_eq!(select(&res(dir(), None), None, true), Ok(Method::Prebuilt));
        assert_eq!(
            select(&res(dir(), Some("nodejs22.x")), None, true),
            Ok(Method::Nodejs { runtime: "nodejs22.x".into() })
        );
        assert_eq!(
            select(&res(Code::Zip(PathBuf::from("/p/a.zip")), None), Some("python3.12"), false),
            Ok(Method::Zip)
        );
        let mut skip = res(dir(), None);
        skip.build.skip_build = true;
        assert_eq!(select(&skip, Some("python3.12"), false), Ok(Method::Prebuilt));
    }

    #[test]
    fn unsupported_runtimes_suggest_makefile() {
        let Err(NotBuilt::Error(msg)) = select(&res(dir(), None), Some("java21"), false) else { panic!() };
        assert!(
            msg.contains("runtime `java21`") && msg.contains("BuildMethod: makefile") && msg.contains("build-Fn"),
            "{msg}"
        );
        let Err(NotBuilt::Error(msg)) = select(&res(dir(), Some("swift")), None, false) else { panic!() };
        assert!(msg.contains("BuildMethod `swift`") && msg.contains("build-Fn"), "{msg}");
        assert_eq!(
            select(&res(dir(), Some("esbuild")), Some("nodejs20.x"), false),
            Ok(Method::Esbuild { runtime: "nodejs20.x".into() })
        );
        let Err(NotBuilt::Error(msg)) = select(&res(dir(), Some("esbuild")), Some("python3.12"), false) else {
            panic!()
        };
        assert!(msg.contains("set Runtime to nodejs20.x"), "{msg}");
    }

    #[test]
    fn go_rust_and_ruby_builders() {
        let go = Method::Go { runtime: "provided.al2023".into() };
        assert_eq!(select(&res(dir(), Some("go1.x")), Some("provided.al2023"), false), Ok(go));
        assert_eq!(select(&res(dir(), None), Some("go1.x"), false), Ok(Method::Go { runtime: "go1.x".into() }));
        assert_eq!(
            select(&res(dir(), Some("rust-cargolambda")), Some("provided.al2023"), false),
            Ok(Method::CargoLambda)
        );
        assert_eq!(select(&res(dir(), None), Some("ruby3.3"), false), Ok(Method::Ruby { runtime: "ruby3.3".into() }));
        assert_eq!(
            select(&res(dir(), Some("ruby3.2")), Some("ruby3.3"), false),
            Ok(Method::Ruby { runtime: "ruby3.2".into() })
        );
        // A layer has no executable to compile.
        let Err(NotBuilt::Error(msg)) = select(&res(dir(), Some("go1.x")), None, true) else { panic!() };
        assert!(msg.contains("not a layer") && msg.contains("makefile"), "{msg}");
        let Err(NotBuilt::Error(msg)) = select(&res(dir(), Some("rust-cargolambda")), None, false) else { panic!() };
        assert!(msg.contains("needs a Runtime"), "{msg}");
        // Java is built with Maven when there is a pom.xml.
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("pom.xml"), "<project/>").unwrap();
        let maven = Method::Maven { runtime: "java21".into() };
        assert_eq!(select(&res(Code::Dir(d.path().to_path_buf()), None), Some("java21"), false), Ok(maven));
    }

    #[test]
    fn java_is_built_by_its_project_file_gradle_first_as_sam_does() {
        let d = tempfile::tempdir().unwrap();
        let code = || Code::Dir(d.path().to_path_buf());
        let Err(NotBuilt::Error(msg)) = select(&res(code(), None), Some("java21"), false) else { panic!() };
        assert!(msg.contains("without a build.gradle, build.gradle.kts or pom.xml") && msg.contains(".jar"), "{msg}");
        std::fs::write(d.path().join("pom.xml"), "<project/>").unwrap();
        std::fs::write(d.path().join("build.gradle.kts"), "plugins { java }").unwrap();
        let gradle = Method::Gradle { runtime: "java17".into() };
        assert_eq!(select(&res(code(), None), Some("java17"), false), Ok(gradle.clone()));
        assert_eq!(select(&res(code(), Some("java17")), Some("java21"), false), Ok(gradle));
        std::fs::remove_file(d.path().join("build.gradle.kts")).unwrap();
        let maven = Method::Maven { runtime: "java11".into() };
        assert_eq!(select(&res(code(), Some("java11")), Some("java21"), false), Ok(maven));
        // Java and .NET layers are not built by lamb; the error names the makefile way.
        let Err(NotBuilt::Error(msg)) = select(&res(code(), Some("java11")), None, true) else { panic!() };
        assert!(msg.contains("for a layer") && msg.contains("makefile"), "{msg}");
    }

    #[test]
    fn dotnet_by_runtime_or_build_method_and_ruby_layers() {
        let dotnet = |r: &str| Ok(Method::Dotnet { runtime: r.into() });
        assert_eq!(select(&res(dir(), None), Some("dotnet8"), false), dotnet("dotnet8"));
        assert_eq!(select(&res(dir(), Some("dotnet6")), Some("dotnet8"), false), dotnet("dotnet6"));
        let Err(NotBuilt::Error(msg)) = select(&res(dir(), Some("dotnet8")), None, true) else { panic!() };
        assert!(msg.contains("for a layer"), "{msg}");
        assert_eq!(select(&res(dir(), Some("ruby3.3")), None, true), Ok(Method::Ruby { runtime: "ruby3.3".into() }));
    }

    #[test]
    fn nothing_to_build_is_a_skip() {
        assert!(matches!(
            select(&res(Code::S3("s3://b/k".into()), None), Some("python3.12"), false),
            Err(NotBuilt::Skip(_))
        ));
        assert!(matches!(select(&res(Code::Inline, None), Some("python3.12"), false), Err(NotBuilt::Skip(_))));
        assert!(matches!(select(&res(Code::Image, None), None, false), Err(NotBuilt::Skip(m)) if m.contains("Image")));
    }
}
