//! Convergence: a seeded random sequence of what a working day throws at the watch daemon —
//! edits, new, deleted and renamed files across functions and the layer, editor-style saves,
//! bursts, template edits, AWS faults, daemon restarts (clean and killed) — then, once things
//! are quiet, every function must run exactly a fresh build of the final tree, the layer its
//! final content, the template its final environment, and a one-shot `lamb sync` must find
//! nothing left to do.
//!
//! CI runs one short sequence. `bench/run --convergence` runs long ones:
//! `LAMB_CONVERGENCE_SEED` (first seed), `LAMB_CONVERGENCE_OPS` (operations per sequence),
//! `LAMB_CONVERGENCE_RUNS` (sequences, seeds counting up). A failure names its seed: rerun
//! with that seed to reproduce it.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::time::{Duration, Instant};

use serde_json::json;

use common::daemon::{Daemon, wait_until};
use common::emulator::Emulator;
use common::faults::FaultProxy;
use common::*;

const STACK: &str = "conv";
const FUNCTIONS: [&str; 4] = ["HelloPython", "HelloNode", "HelloShell", "HelloMake"];
/// Code directories, with the file each one's build depends on.
const UNITS: [(&str, &str); 5] = [
    ("functions/hello_python", "app.py"),
    ("functions/hello_node", "index.js"),
    ("functions/hello_shell", "bootstrap"),
    ("functions/hello_make", "bootstrap.in"),
    ("layers/shared/shared", "greeting.py"),
];

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// xorshift64*: small, seeded, the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// The content a code file gets for edit number `n`: valid in its language.
fn content(base: &str, n: u64) -> String {
    match base {
        "bootstrap" => format!("#!/bin/sh\necho edit {n}\n"),
        "bootstrap.in" => format!("#!/bin/sh\necho @WHO@ edit {n}\n"),
        "index.js" => format!("exports.handler = async () => ({{ statusCode: 200, body: 'edit {n}' }});\n"),
        "app.py" => format!(
            "import requests\nfrom shared.greeting import greet\n\n\ndef handler(event, context):\n    return {{'statusCode': 200, 'body': greet('edit {n}', requests.__name__)}}\n"
        ),
        _ => format!(
            "def greet(greeting: str, who: str) -> str:\n    return f\"{{greeting}} from {{who}} (edit {n})\"\n"
        ),
    }
}

struct World {
    rng: Rng,
    p: Project,
    emu: Emulator,
    proxy: FaultProxy,
    daemon: Option<Daemon>,
    /// Files the sequence created (relative), still present.
    extra: Vec<String>,
    /// The value of the CONV variable in the template's Globals, once set.
    conv: Option<String>,
    n: u64,
    counts: BTreeMap<&'static str, u64>,
}

impl World {
    fn start_daemon(&mut self) {
        self.daemon = Some(Daemon::start(&self.p, &self.proxy.env(), STACK, &[], &[]));
    }

    fn write(&self, rel: &str, text: &str) {
        self.p.write(rel, text);
    }

    fn step(&mut self) {
        self.n += 1;
        let n = self.n;
        let roll = self.rng.below(100);
        let kind = match roll {
            0..=29 => {
                let (dir, base) = *self.rng.pick(&UNITS);
                self.write(&format!("{dir}/{base}"), &content(base, n));
                "edit"
            }
            30..=39 => {
                let (dir, _) = *self.rng.pick(&UNITS);
                let rel = format!("{dir}/extra_{n}.txt");
                self.write(&rel, &format!("extra {n}\n"));
                self.extra.push(rel);
                "create"
            }
            40..=47 if !self.extra.is_empty() => {
                let i = self.rng.below(self.extra.len());
                let rel = self.extra.swap_remove(i);
                fs::remove_file(self.p.path().join(&rel)).unwrap();
                "delete"
            }
            48..=55 if !self.extra.is_empty() => {
                let i = self.rng.below(self.extra.len());
                let from = self.extra.swap_remove(i);
                let (dir, _) = *self.rng.pick(&UNITS);
                let to = format!("{dir}/renamed_{n}.txt");
                fs::rename(self.p.path().join(&from), self.p.path().join(&to)).unwrap();
                self.extra.push(to);
                "rename"
            }
            56..=67 => {
                // As editors save: a temporary file renamed over the original.
                let (dir, base) = *self.rng.pick(&UNITS);
                let tmp = self.p.path().join(format!("{dir}/.{base}.swp~"));
                fs::write(&tmp, content(base, n)).unwrap();
                let target = self.p.path().join(format!("{dir}/{base}"));
                let mode = fs::metadata(&target).unwrap().permissions();
                fs::set_permissions(&tmp, mode).unwrap();
                fs::rename(&tmp, &target).unwrap();
                "editor-save"
            }
            68..=72 => {
                let value = format!("value-{n}");
                let t = self.p.read("template.yaml");
                let t = match &self.conv {
                    Some(old) => t.replace(&format!("        CONV: {old}\n"), &format!("        CONV: {value}\n")),
                    None => t.replace(
                        "        GREETING: !Ref Greeting\n",
                        &format!("        GREETING: !Ref Greeting\n        CONV: {value}\n"),
                    ),
                };
                self.write("template.yaml", &t);
                self.conv = Some(value);
                "template"
            }
            73..=84 => {
                let fault = *self.rng.pick(&["throttle", "error500", "error503", "conflict", "reset", "inprogress"]);
                let times = 1 + self.rng.below(3);
                let rule = if fault == "inprogress" {
                    json!({"fault": "rewrite", "action": "GetFunctionConfiguration", "times": times,
                           "find": "\"LastUpdateStatus\":\\s*\"Successful\"",
                           "replace": "\"LastUpdateStatus\": \"InProgress\""})
                } else {
                    let action = *self.rng.pick(&[
                        "UpdateFunctionCode",
                        "GetFunctionConfiguration",
                        "ListFunctions",
                        "PublishLayerVersion",
                        "UpdateFunctionConfiguration",
                        "DescribeStacks",
                        "CreateChangeSet",
                    ]);
                    let fault = if fault == "conflict" && !action.starts_with("Update") { "throttle" } else { fault };
                    json!({"fault": fault, "action": action, "times": times})
                };
                self.proxy.add(rule);
                "fault"
            }
            85..=88 => {
                let mut d = self.daemon.take().expect("a daemon runs");
                if self.rng.below(2) == 0 {
                    d.signal(libc::SIGTERM);
                } else {
                    d.signal(libc::SIGKILL);
                }
                d.child.wait().unwrap();
                drop(d);
                self.start_daemon();
                "restart"
            }
            _ => {
                for _ in 0..(2 + self.rng.below(5)) {
                    let (dir, base) = *self.rng.pick(&UNITS);
                    self.n += 1;
                    self.write(&format!("{dir}/{base}"), &content(base, self.n));
                }
                "burst"
            }
        };
        *self.counts.entry(kind).or_default() += 1;
        std::thread::sleep(Duration::from_millis(self.rng.below(150) as u64));
    }

    /// Clears the faults, asks for everything to be synced, and waits until the daemon has
    /// nothing pending or running for a while.
    fn quiesce(&self) {
        self.proxy.clear();
        let d = self.daemon.as_ref().unwrap();
        assert_eq!(d.lamb(&self.p, &["trigger"]).code, 0);
        assert_eq!(d.lamb(&self.p, &["trigger", "template.yaml"]).code, 0);
        let mut quiet_since: Option<Instant> = None;
        wait_until("the daemon to settle", Duration::from_secs(180), || {
            let run = d.lamb(&self.p, &["status", "-o", "json"]);
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&run.stdout) else { return false };
            let busy = v["daemon"]["running"] != false
                || v["daemon"]["infra_pending"] != false
                || v["functions"].as_array().unwrap().iter().any(|f| f["pending"] != false);
            if busy {
                quiet_since = None;
                return false;
            }
            let since = *quiet_since.get_or_insert_with(Instant::now);
            since.elapsed() > Duration::from_millis(800)
        });
    }
}

/// CodeSha256 per function and for the layer, from a build of a fresh copy of the tree.
fn fresh_build(p: &Project) -> BTreeMap<String, String> {
    let copy = Project::empty();
    copy_tree(p.path(), copy.path());
    let _ = fs::remove_dir_all(copy.path().join(".lamb"));
    let (report, run) = copy.build_json(&[]);
    assert_eq!(run.code, 0, "{}", run.all());
    FUNCTIONS.iter().chain(["SharedLayer"].iter()).map(|id| (id.to_string(), code_sha(&report, id))).collect()
}

struct Live {
    code: BTreeMap<String, String>,
    env: BTreeMap<String, Option<String>>,
    layer: String,
}

fn live(emu: &Emulator) -> Live {
    rt().block_on(async {
        let conf = emu.sdk().await;
        let cfn = aws_sdk_cloudformation::Client::new(&conf);
        let lambda = aws_sdk_lambda::Client::new(&conf);
        let resources = cfn.list_stack_resources().stack_name(STACK).send().await.unwrap();
        let (mut code, mut env, mut layer) = (BTreeMap::new(), BTreeMap::new(), String::new());
        for r in resources.stack_resource_summaries() {
            if r.resource_type() != Some("AWS::Lambda::Function") {
                continue;
            }
            let id = r.logical_resource_id().unwrap().to_string();
            let c = lambda
                .get_function_configuration()
                .function_name(r.physical_resource_id().unwrap())
                .send()
                .await
                .unwrap();
            code.insert(id.clone(), c.code_sha256().unwrap().to_string());
            env.insert(id.clone(), c.environment().and_then(|e| e.variables()).and_then(|v| v.get("CONV").cloned()));
            if id == "HelloPython" {
                let arn = c.layers()[0].arn().unwrap().to_string();
                let v = lambda.get_layer_version_by_arn().arn(arn).send().await.unwrap();
                layer = v.content().unwrap().code_sha256().unwrap().to_string();
            }
        }
        Live { code, env, layer }
    })
}

fn sequence(seed: u64, ops: u64) -> String {
    let emu = Emulator::start();
    let proxy = FaultProxy::start(&emu);
    let p = Project::example("hello");
    let run = p.lamb_env(&["deploy", "--stack-name", STACK], &emu.env());
    assert_eq!(run.code, 0, "{}", run.all());
    let mut w = World {
        rng: Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
        p,
        emu,
        proxy,
        daemon: None,
        extra: Vec::new(),
        conv: None,
        n: 0,
        counts: BTreeMap::new(),
    };
    w.start_daemon();
    for _ in 0..ops {
        w.step();
    }
    let injected = w.proxy.stats()["injected"].clone();
    w.quiesce();

    let want = fresh_build(&w.p);
    let got = live(&w.emu);
    let context = format!("seed {seed}: {:?}\n{}", w.counts, w.daemon.as_ref().unwrap().output());
    for id in FUNCTIONS {
        assert_eq!(got.code[id], want[id], "{id} runs something else than the final tree; {}", context);
        assert_eq!(got.env[id], w.conv, "{id}'s CONV; {}", context);
    }
    assert_eq!(got.layer, want["SharedLayer"], "the layer; {}", context);

    // lamb itself finds nothing left to do, and writes nothing.
    w.daemon.take();
    w.emu.clear_requests();
    let run = w.p.lamb_env(&["sync", "--yes", "--stack-name", STACK, "-o", "json"], &w.emu.env());
    assert_eq!(run.code, 0, "{}", run.all());
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    for item in report["items"].as_array().unwrap() {
        assert_eq!(item["status"], "unchanged", "{item}; {}", context);
    }
    assert!(w.emu.writes().is_empty(), "a converged stack needs no write: {:?}; {}", w.emu.writes(), context);
    format!("CONVERGENCE seed={seed} ops={ops} result=ok ops_by_kind={:?} faults_injected={injected}", w.counts)
}

#[test]
fn random_sequences_converge_to_a_fresh_build_of_the_final_tree() {
    let seed = env_or("LAMB_CONVERGENCE_SEED", 20_261_125);
    let ops = env_or("LAMB_CONVERGENCE_OPS", 60);
    let runs = env_or("LAMB_CONVERGENCE_RUNS", 1);
    for s in seed..seed + runs {
        let summary = sequence(s, ops);
        eprintln!("{summary}");
    }
}
