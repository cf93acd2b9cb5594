//! Convergence: a seeded random sequence of what a working day throws at the watch daemon —
//! edits, new, deleted and renamed files across functions and the layer, editor-style saves,
//! bursts, template edits, AWS faults, daemon restarts (clean and killed) — then, once things
//! are quiet, every function must run exactly a fresh build of the final tree, the layer its
//! final content, every function the final template's environment, the stack the final
//! template, and a one-shot `lamb sync` must find nothing left to do.
//!
//! Every sequence starts with each kind of operation once (every fault kind, both kinds of
//! restart, an edit in each code directory), in a seeded order, then goes on at random; the
//! test checks each kind happened and each fault was injected, so a short sequence covers
//! them all and cannot silently stop doing so.
//!
//! CI runs one short sequence. `bench/run --convergence` runs long ones:
//! `LAMB_CONVERGENCE_SEED` (first seed), `LAMB_CONVERGENCE_OPS` (operations per sequence),
//! `LAMB_CONVERGENCE_RUNS` (sequences, seeds counting up). Every sequence runs even if an
//! earlier one fails; each prints a `CONVERGENCE seed=... result=ok|failed` line, and a
//! failure names its seed: rerun with that seed to reproduce it.

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

/// Every kind of operation a sequence does; each happens at least once per sequence.
const KINDS: [&str; 16] = [
    "edit",
    "create",
    "delete",
    "rename",
    "editor-save",
    "burst",
    "template",
    "restart-term",
    "restart-kill",
    "fault-throttle",
    "fault-error500",
    "fault-error503",
    "fault-conflict",
    "fault-reset",
    "fault-reset_after",
    "fault-inprogress",
];
/// The template edits: the CONV variable removed, the Greeting parameter's default changed,
/// CONV set (anything else).
const TEMPLATE_REMOVE_ENV: usize = 0;
const TEMPLATE_PARAM: usize = 1;
const TEMPLATE_ENV: usize = 2;
/// What the proxy calls each fault kind once injected.
const INJECTED: [(&str, &str); 7] = [
    ("fault-throttle", "throttle"),
    ("fault-error500", "error500"),
    ("fault-error503", "error503"),
    ("fault-conflict", "conflict"),
    ("fault-reset", "reset"),
    ("fault-reset_after", "reset_after"),
    ("fault-inprogress", "rewrite"),
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
    /// The value of the CONV variable in the template's Globals, while it is there.
    conv: Option<String>,
    /// The Greeting parameter's default (every function's GREETING).
    greeting: String,
    n: u64,
    counts: BTreeMap<&'static str, u64>,
    /// File operations per code directory (index into UNITS).
    touched: [u64; UNITS.len()],
    /// What is left of the opening: each kind once, in a seeded order.
    opening: Vec<(&'static str, Option<usize>)>,
}

impl World {
    fn start_daemon(&mut self) {
        self.daemon = Some(Daemon::start(&self.p, &self.proxy.env(), STACK, &[], &[]));
    }

    fn write(&self, rel: &str, text: &str) {
        self.p.write(rel, text);
    }

    /// A code directory, at random or the one the opening says.
    fn unit(&mut self, forced: Option<usize>) -> (usize, &'static str, &'static str) {
        let i = forced.unwrap_or_else(|| self.rng.below(UNITS.len()));
        self.touched[i] += 1;
        (i, UNITS[i].0, UNITS[i].1)
    }

    /// The opening: every kind once (and an edit in each code directory), shuffled by the seed.
    fn opening(rng: &mut Rng) -> Vec<(&'static str, Option<usize>)> {
        let mut ops: Vec<(&'static str, Option<usize>)> =
            KINDS.iter().filter(|k| **k != "edit").map(|k| (*k, None)).collect();
        ops.extend((0..UNITS.len()).map(|i| ("edit", Some(i))));
        // Both kinds of template edit: an environment variable and a parameter.
        ops.retain(|(k, _)| *k != "template");
        ops.extend([("template", Some(TEMPLATE_ENV)), ("template", Some(TEMPLATE_PARAM))]);
        for i in (1..ops.len()).rev() {
            ops.swap(i, rng.below(i + 1));
        }
        ops.reverse(); // popped from the end
        ops
    }

    fn random_kind(&mut self) -> &'static str {
        match self.rng.below(100) {
            0..=29 => "edit",
            30..=39 => "create",
            40..=47 => "delete",
            48..=55 => "rename",
            56..=67 => "editor-save",
            68..=72 => "template",
            73..=84 => KINDS[9 + self.rng.below(7)],
            85..=86 => "restart-term",
            87..=88 => "restart-kill",
            _ => "burst",
        }
    }

    fn create(&mut self, forced: Option<usize>) -> String {
        let n = self.n;
        let (_, dir, _) = self.unit(forced);
        let rel = format!("{dir}/extra_{n}.txt");
        self.write(&rel, &format!("extra {n}\n"));
        self.extra.push(rel.clone());
        rel
    }

    /// A fault rule: in the opening on a call every pass makes soon (so it surely fires),
    /// later on any call lamb makes.
    fn fault(&mut self, kind: &str, opening: bool) -> serde_json::Value {
        let times = 1 + self.rng.below(3);
        if kind == "inprogress" {
            return json!({"fault": "rewrite", "action": "GetFunctionConfiguration", "times": times,
                   "find": "\"LastUpdateStatus\":\\s*\"Successful\"",
                   "replace": "\"LastUpdateStatus\": \"InProgress\""});
        }
        let action = if opening {
            if matches!(kind, "conflict" | "reset_after") { "UpdateFunctionCode" } else { "DescribeStacks" }
        } else {
            *self.rng.pick(&[
                "UpdateFunctionCode",
                "GetFunctionConfiguration",
                "ListFunctions",
                "PublishLayerVersion",
                "UpdateFunctionConfiguration",
                "DescribeStacks",
                "CreateChangeSet",
            ])
        };
        let kind = if kind == "conflict" && !action.starts_with("Update") { "throttle" } else { kind };
        json!({"fault": kind, "action": action, "times": times})
    }

    fn step(&mut self) {
        self.n += 1;
        let n = self.n;
        let (kind, forced, opening) = match self.opening.pop() {
            Some((kind, forced)) => (kind, forced, true),
            None => (self.random_kind(), None, false),
        };
        match kind {
            "edit" => {
                let (_, dir, base) = self.unit(forced);
                self.write(&format!("{dir}/{base}"), &content(base, n));
            }
            "create" => {
                self.create(None);
            }
            "delete" => {
                if self.extra.is_empty() {
                    self.create(None);
                    std::thread::sleep(Duration::from_millis(self.rng.below(100) as u64));
                }
                let i = self.rng.below(self.extra.len());
                let rel = self.extra.swap_remove(i);
                let unit = UNITS.iter().position(|(d, _)| rel.starts_with(d)).unwrap();
                self.touched[unit] += 1;
                fs::remove_file(self.p.path().join(&rel)).unwrap();
            }
            "rename" => {
                if self.extra.is_empty() {
                    self.create(None);
                    std::thread::sleep(Duration::from_millis(self.rng.below(100) as u64));
                }
                let i = self.rng.below(self.extra.len());
                let from = self.extra.swap_remove(i);
                // Across code directories: out of one function (or the layer) into another.
                let (_, dir, _) = self.unit(None);
                let to = format!("{dir}/renamed_{n}.txt");
                fs::rename(self.p.path().join(&from), self.p.path().join(&to)).unwrap();
                self.extra.push(to);
            }
            "editor-save" => {
                // As editors save: a temporary file renamed over the original.
                let (_, dir, base) = self.unit(None);
                let tmp = self.p.path().join(format!("{dir}/.{base}.swp~"));
                fs::write(&tmp, content(base, n)).unwrap();
                let target = self.p.path().join(format!("{dir}/{base}"));
                let mode = fs::metadata(&target).unwrap().permissions();
                fs::set_permissions(&tmp, mode).unwrap();
                fs::rename(&tmp, &target).unwrap();
            }
            "template" => self.edit_template(n, forced),
            "restart-term" | "restart-kill" => {
                let mut d = self.daemon.take().expect("a daemon runs");
                d.signal(if kind == "restart-term" { libc::SIGTERM } else { libc::SIGKILL });
                let status = d.child.wait().unwrap();
                if kind == "restart-term" {
                    assert!(status.success(), "SIGTERM: the daemon exits 0, not {status}: {}", d.output());
                }
                drop(d);
                self.start_daemon();
            }
            "burst" => {
                for _ in 0..(2 + self.rng.below(5)) {
                    let (_, dir, base) = self.unit(None);
                    self.n += 1;
                    self.write(&format!("{dir}/{base}"), &content(base, self.n));
                }
            }
            fault => {
                let rule = self.fault(fault.strip_prefix("fault-").expect("a fault kind"), opening);
                self.proxy.add(rule);
            }
        }
        *self.counts.entry(kind).or_default() += 1;
        std::thread::sleep(Duration::from_millis(self.rng.below(150) as u64));
    }

    /// A template edit: the global CONV variable set, changed or removed, or the Greeting
    /// parameter's default changed (every function's GREETING).
    fn edit_template(&mut self, n: u64, forced: Option<usize>) {
        let t = self.p.read("template.yaml");
        let which = forced.unwrap_or_else(|| self.rng.below(4));
        let t = match (which, &self.conv) {
            (TEMPLATE_REMOVE_ENV, Some(old)) => {
                let t = t.replace(&format!("        CONV: {old}\n"), "");
                self.conv = None;
                t
            }
            (TEMPLATE_PARAM, _) => {
                let value = format!("Hi{n}");
                let t = t.replace(
                    &format!("  Greeting:\n    Type: String\n    Default: {}\n", self.greeting),
                    &format!("  Greeting:\n    Type: String\n    Default: {value}\n"),
                );
                self.greeting = value;
                t
            }
            (_, old) => {
                let value = format!("value-{n}");
                let t = match old {
                    Some(old) => t.replace(&format!("        CONV: {old}\n"), &format!("        CONV: {value}\n")),
                    None => t.replace(
                        "        GREETING: !Ref Greeting\n",
                        &format!("        GREETING: !Ref Greeting\n        CONV: {value}\n"),
                    ),
                };
                self.conv = Some(value);
                t
            }
        };
        self.write("template.yaml", &t);
    }

    /// Every function's environment as the final template has it.
    fn want_env(&self) -> BTreeMap<String, String> {
        let mut env =
            BTreeMap::from([("STAGE".to_string(), "dev".to_string()), ("GREETING".into(), self.greeting.clone())]);
        if let Some(c) = &self.conv {
            env.insert("CONV".into(), c.clone());
        }
        env
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
    env: BTreeMap<String, BTreeMap<String, String>>,
    layer: String,
    /// The stack's template (as deployed, JSON).
    template: serde_json::Value,
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
            let vars = c.environment().and_then(|e| e.variables()).cloned().unwrap_or_default();
            env.insert(id.clone(), vars.into_iter().collect());
            if id == "HelloPython" {
                let arn = c.layers()[0].arn().unwrap().to_string();
                let v = lambda.get_layer_version_by_arn().arn(arn).send().await.unwrap();
                layer = v.content().unwrap().code_sha256().unwrap().to_string();
            }
        }
        let body = cfn.get_template().stack_name(STACK).send().await.unwrap().template_body().unwrap().to_string();
        let template = serde_json::from_str(&body).unwrap_or_else(|e| panic!("the stack's template ({e}): {body}"));
        Live { code, env, layer, template }
    })
}

/// A YAML template in CloudFormation's JSON form: short-form tags (`!Ref X`, `!Sub ...`,
/// `!GetAtt A.B`) as their long forms.
fn cfn_json(v: &serde_norway::Value) -> serde_json::Value {
    use serde_norway::Value as Y;
    match v {
        Y::Null => serde_json::Value::Null,
        Y::Bool(b) => json!(b),
        Y::Number(n) => serde_json::to_value(n).unwrap(),
        Y::String(s) => json!(s),
        Y::Sequence(items) => serde_json::Value::Array(items.iter().map(cfn_json).collect()),
        Y::Mapping(m) => serde_json::Value::Object(
            m.iter().map(|(k, v)| (k.as_str().expect("string keys").to_string(), cfn_json(v))).collect(),
        ),
        Y::Tagged(t) => {
            let tag = t.tag.to_string();
            let name = tag.trim_start_matches('!');
            let value = match (name, &t.value) {
                ("GetAtt", Y::String(s)) => json!(s.splitn(2, '.').collect::<Vec<_>>()),
                _ => cfn_json(&t.value),
            };
            let key = if matches!(name, "Ref" | "Condition") { name.to_string() } else { format!("Fn::{name}") };
            json!({ key: value })
        }
    }
}

/// A template without its code locations, which lamb replaces with S3 locations on deploy.
fn without_code(mut t: serde_json::Value) -> serde_json::Value {
    if let Some(resources) = t["Resources"].as_object_mut() {
        for r in resources.values_mut() {
            if let Some(props) = r["Properties"].as_object_mut() {
                props.remove("CodeUri");
                props.remove("ContentUri");
            }
        }
    }
    t
}

/// Runs one sequence; returns its summary line's details, or panics naming what diverged.
fn sequence(seed: u64, ops: u64) -> String {
    let emu = Emulator::start();
    let proxy = FaultProxy::start(&emu);
    let p = Project::example("hello");
    let run = p.lamb_env(&["deploy", "--stack-name", STACK], &emu.env());
    assert_eq!(run.code, 0, "{}", run.all());
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let opening = World::opening(&mut rng);
    let mut w = World {
        rng,
        p,
        emu,
        proxy,
        daemon: None,
        extra: Vec::new(),
        conv: None,
        greeting: "Hello".into(),
        n: 0,
        counts: BTreeMap::new(),
        touched: [0; UNITS.len()],
        opening,
    };
    assert!(ops as usize >= w.opening.len(), "a sequence needs at least {} operations", w.opening.len());
    w.start_daemon();
    for _ in 0..ops {
        w.step();
    }
    let injected = w.proxy.stats()["injected"].clone();
    w.quiesce();

    let want = fresh_build(&w.p);
    let got = live(&w.emu);
    let context = format!("seed {seed}: {:?}\n{}", w.counts, w.daemon.as_ref().unwrap().output());
    // Everything the sequence is meant to do, it did.
    for kind in KINDS {
        assert!(w.counts.get(kind).is_some_and(|n| *n > 0), "no `{kind}` operation ran; {context}");
    }
    for (kind, name) in INJECTED {
        assert!(injected[name].as_u64().is_some_and(|n| n > 0), "no {kind} was injected: {injected}; {context}");
    }
    for (i, (dir, _)) in UNITS.iter().enumerate() {
        assert!(w.touched[i] > 0, "nothing in {dir} was touched; {context}");
    }
    for id in FUNCTIONS {
        assert_eq!(got.code[id], want[id], "{id} runs something else than the final tree; {}", context);
        assert_eq!(got.env[id], w.want_env(), "{id}'s environment is not the final template's; {}", context);
    }
    assert_eq!(got.layer, want["SharedLayer"], "the layer; {}", context);
    let local: serde_norway::Value = serde_norway::from_str(&w.p.read("template.yaml")).unwrap();
    assert_eq!(
        without_code(got.template.clone()),
        without_code(cfn_json(&local)),
        "the stack's template is not the final template.yaml; {context}"
    );

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
    format!("ops_by_kind={:?} faults_injected={injected}", w.counts)
}

#[test]
fn random_sequences_converge_to_a_fresh_build_of_the_final_tree() {
    let seed = env_or("LAMB_CONVERGENCE_SEED", 20_261_125);
    let ops = env_or("LAMB_CONVERGENCE_OPS", 60);
    let runs = env_or("LAMB_CONVERGENCE_RUNS", 1);
    // Every sequence runs, whatever the ones before it did; the failures are listed at the end.
    let mut failed = Vec::new();
    for s in seed..seed + runs {
        let started = Instant::now();
        match std::panic::catch_unwind(|| sequence(s, ops)) {
            Ok(summary) => {
                eprintln!("CONVERGENCE seed={s} ops={ops} result=ok secs={} {summary}", started.elapsed().as_secs())
            }
            Err(e) => {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                let first = msg.lines().next().unwrap_or("").to_string();
                eprintln!(
                    "CONVERGENCE seed={s} ops={ops} result=failed secs={} error={first}",
                    started.elapsed().as_secs()
                );
                failed.push((s, msg));
            }
        }
    }
    let seeds: Vec<u64> = failed.iter().map(|(s, _)| *s).collect();
    assert!(failed.is_empty(), "{} of {runs} sequences failed (seeds {seeds:?}):\n{failed:#?}", failed.len());
}
