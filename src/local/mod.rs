//! Running functions on this machine, without Docker: lamb's own build, a real Lambda Runtime
//! API server per function process ([`runtime_api`]), the function's real `bootstrap` or
//! lamb's runtime client under the machine's interpreter ([`runtimes`]), warm processes kept
//! between invocations ([`instance`], [`pool`]), Lambda's environment ([`env`]); API Gateway's
//! behaviour in front of them ([`apigw`]), Lambda's Invoke API ([`invoke_api`]), and sample
//! events ([`events`]).

pub mod api_server;
pub mod apigw;
pub mod code;
pub mod env;
pub mod events;
pub mod functions;
pub mod http;
pub mod instance;
pub mod invoke_api;
pub mod pool;
pub mod prepare;
pub mod reload;
pub mod runtime_api;
pub mod runtimes;

use std::path::PathBuf;

/// What can keep a function from running locally. Each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error("{}: cannot read the built code ({detail}); run `lamb build` again", path.display())]
    Artifact { path: PathBuf, detail: String },
    #[error("function {id}: cannot start {} ({source}); check that it exists and is executable", program.display())]
    Spawn { id: String, program: PathBuf, source: std::io::Error },
    #[error("function {id}: runtime {runtime} needs an interpreter this machine does not have; {install}")]
    NoInterpreter { id: String, runtime: String, install: String },
    #[error(
        "function {id}: a custom runtime needs an executable `bootstrap` at the top of its code ({}) or of a layer; build it (e.g. BuildMethod: makefile or rust-cargolambda) or add one",
        dir.display()
    )]
    NoBootstrap { id: String, dir: PathBuf },
    #[error("function {id}: {} is not executable; `chmod +x` it in your sources and save", path.display())]
    NotExecutable { id: String, path: PathBuf },
    #[error(
        "function {id}: {} is a {built} binary and this machine is {host}; build it for {host} to run it here (or set Architectures to match)",
        path.display()
    )]
    WrongArch { id: String, path: PathBuf, built: &'static str, host: &'static str },
    #[error(
        "function {id}: lamb cannot run runtime {runtime} locally yet (python3.x, nodejs*.x and provided runtimes run); test it with `lamb sync` and `lamb invoke`"
    )]
    Unsupported { id: String, runtime: String },
    #[error("--env-vars {}: {detail}", path.display())]
    EnvVars { path: PathBuf, detail: String },
    #[error("function {id} did not build: {message}")]
    NotBuilt { id: String, message: String },
    #[error(transparent)]
    Routes(#[from] apigw::routes::RouteError),
    #[error("{addr} is in use by another program; stop it, or choose another address with {flag}")]
    PortInUse { addr: String, flag: String },
    #[error(
        "function {id} has {what}; lamb runs only code on disk locally (put the code in a directory and set CodeUri)"
    )]
    NoLocalCode { id: String, what: &'static str },
}

/// A fresh request id, formatted as a UUID (v4): Lambda's are.
pub fn request_id() -> String {
    use std::hash::BuildHasher;
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let a = std::collections::hash_map::RandomState::new().hash_one(nanos);
    let b = std::collections::hash_map::RandomState::new().hash_one(a);
    let hex = format!("{a:016x}{b:016x}");
    format!(
        "{}-{}-4{}-{:x}{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        (u8::from_str_radix(&hex[16..17], 16).unwrap_or(0) & 0x3) | 0x8,
        &hex[17..20],
        &hex[20..32]
    )
}

/// The epoch in milliseconds, as Lambda's deadlines count.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn request_ids_look_like_uuids_and_differ() {
        let a = super::request_id();
        let b = super::request_id();
        assert_ne!(a, b);
        let parts: Vec<usize> = a.split('-').map(str::len).collect();
        assert_eq!(parts, [8, 4, 4, 4, 12], "{a}");
        assert_eq!(&a[14..15], "4", "{a}");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
    }
}
