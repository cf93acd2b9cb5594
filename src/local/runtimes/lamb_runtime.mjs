// lamb's runtime client for Node.js functions run locally: the Lambda Runtime API loop, with the
// handler resolution, context object, callback and async handlers and error shapes of AWS's own
// client (aws-lambda-ric), in Node's standard library only (aws-lambda-ric compiles native code
// at install and needs Node 22).

import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import util from "node:util";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const [HOST, PORT] = process.env.AWS_LAMBDA_RUNTIME_API.split(":");
const PREFIX = "/2018-06-01/runtime/";
const HANDLER = process.env._HANDLER || "";
const TASK_ROOT = process.env.LAMBDA_TASK_ROOT || process.cwd();
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function request(method, p, body, headers) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: HOST, port: PORT, path: PREFIX + p, method, agent, headers: headers || {} },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on("error", reject);
      },
    );
    req.on("socket", (s) => s.setNoDelay(true));
    req.on("error", reject);
    req.end(body);
  });
}

class RuntimeError extends Error {
  constructor(type, message) {
    super(message);
    this.name = type;
  }
}

function toErrorDoc(err) {
  if (err instanceof Error) {
    return {
      errorType: err.name || "Error",
      errorMessage: err.message,
      trace: String(err.stack || "").split("\n").map((l) => l.replace(/\x7F/g, "%7F")),
    };
  }
  return { errorType: typeof err, errorMessage: String(err), trace: [] };
}

let requestId = "";

// Lambda's console: each line carries the time, the request id and the level.
function patchConsole() {
  const levels = { log: "INFO", info: "INFO", warn: "WARN", error: "ERROR", debug: "DEBUG", trace: "TRACE" };
  for (const [name, level] of Object.entries(levels)) {
    console[name] = (...args) => {
      const text = util.format(...args).replace(/\n/g, "\r");
      process.stdout.write(`${new Date().toISOString()}\t${requestId}\t${level}\t${text}\n`);
    };
  }
}

function nearestPackageType(dir) {
  let d = dir;
  for (;;) {
    if (path.basename(d) === "node_modules") return undefined;
    const pj = path.join(d, "package.json");
    if (fs.existsSync(pj)) {
      try {
        return JSON.parse(fs.readFileSync(pj, "utf8")).type;
      } catch {
        return undefined;
      }
    }
    const up = path.dirname(d);
    if (up === d) return undefined;
    d = up;
  }
}

async function loadModule(root, moduleRoot, moduleName) {
  const base = path.resolve(root, moduleRoot, moduleName);
  const require = createRequire(path.join(root, "noop.js"));
  const esm = nearestPackageType(path.dirname(base)) === "module";
  const candidates = [
    [base, esm ? "import" : "require"],
    [base + ".js", esm ? "import" : "require"],
    [base + ".mjs", "import"],
    [base + ".cjs", "require"],
  ];
  for (const [file, how] of candidates) {
    if (!fs.existsSync(file) || fs.statSync(file).isDirectory()) continue;
    return how === "import" ? await import(pathToFileURL(file).href) : require(file);
  }
  // A package name, as require resolves it from the task root.
  return require(require.resolve(moduleName, { paths: [root, path.resolve(root, moduleRoot)] }));
}

async function loadHandler() {
  if (HANDLER.includes("..")) {
    throw new RuntimeError(
      "Runtime.MalformedHandlerName",
      `'${HANDLER}' is not a valid handler name. Use absolute paths when specifying root directories in handler names.`,
    );
  }
  const moduleRoot = HANDLER.substring(0, HANDLER.indexOf(path.basename(HANDLER)));
  const match = path.basename(HANDLER).match(/^([^.]*)\.(.*)$/);
  if (!match) throw new RuntimeError("Runtime.MalformedHandlerName", "Bad handler");
  const [, moduleName, propertyPath] = match;
  let mod;
  try {
    mod = await loadModule(TASK_ROOT, moduleRoot, moduleName);
  } catch (e) {
    if (e instanceof SyntaxError) throw new RuntimeError("Runtime.UserCodeSyntaxError", String(e));
    if (e && (e.code === "MODULE_NOT_FOUND" || e.code === "ERR_MODULE_NOT_FOUND")) {
      throw new RuntimeError("Runtime.ImportModuleError", String(e));
    }
    throw e;
  }
  const find = (obj) => propertyPath.split(".").reduce((o, k) => (o == null ? undefined : o[k]), obj);
  let fn = find(mod);
  if (fn === undefined && mod && mod.default) fn = find(mod.default);
  if (fn === undefined) throw new RuntimeError("Runtime.HandlerNotFound", `${HANDLER} is undefined or not exported`);
  if (typeof fn !== "function") throw new RuntimeError("Runtime.HandlerNotFound", `${HANDLER} is not a function`);
  return fn;
}

function context(headers, done) {
  const deadline = Number(headers["lambda-runtime-deadline-ms"] || 0);
  const parse = (h) => (h ? JSON.parse(h) : undefined);
  let waits = true;
  return {
    get callbackWaitsForEmptyEventLoop() {
      return waits;
    },
    set callbackWaitsForEmptyEventLoop(v) {
      waits = v;
    },
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
    invokedFunctionArn: headers["lambda-runtime-invoked-function-arn"],
    awsRequestId: headers["lambda-runtime-aws-request-id"],
    clientContext: parse(headers["lambda-runtime-client-context"]),
    identity: parse(headers["lambda-runtime-cognito-identity"]),
    getRemainingTimeInMillis: () => deadline - Date.now(),
    done: (err, result) => done(err, result),
    succeed: (result) => done(null, result),
    fail: (err) => done(err === undefined ? "handled" : err),
  };
}

async function invoke(handler, event, headers) {
  return new Promise((resolve) => {
    let finished = false;
    const done = (err, result) => {
      if (finished) {
        console.warn("Invocation has already been reported as done. Cannot call complete more than once per invocation.");
        return;
      }
      finished = true;
      process.removeListener("beforeExit", drained);
      resolve(err != null ? { error: err } : { result });
    };
    // A handler that neither returns a promise nor calls back answers null once the event
    // loop has nothing left to do, as Lambda's runtime does.
    const drained = () => done(null, null);
    process.on("beforeExit", drained);
    const ctx = context(headers, done);
    try {
      const r = handler(event, ctx, done);
      if (r && typeof r.then === "function") r.then((v) => done(null, v), (e) => done(e ?? new Error("rejected")));
    } catch (e) {
      done(e);
    }
  });
}

async function main() {
  patchConsole();
  let handler;
  try {
    handler = await loadHandler();
  } catch (e) {
    const doc = toErrorDoc(e);
    console.error("Uncaught Exception", "\t" + JSON.stringify(doc));
    await request("POST", "init/error", JSON.stringify(doc), { "Lambda-Runtime-Function-Error-Type": doc.errorType });
    process.exit(129);
  }
  for (;;) {
    const next = await request("GET", "invocation/next");
    requestId = next.headers["lambda-runtime-aws-request-id"];
    const trace = next.headers["lambda-runtime-trace-id"];
    if (trace) process.env._X_AMZN_TRACE_ID = trace;
    else delete process.env._X_AMZN_TRACE_ID;
    let outcome;
    try {
      const text = next.body.toString("utf8");
      outcome = await invoke(handler, text ? JSON.parse(text) : {}, next.headers);
    } catch (e) {
      outcome = { error: e };
    }
    if (outcome.error === undefined) {
      let body;
      try {
        body = JSON.stringify(outcome.result === undefined ? null : outcome.result);
      } catch (e) {
        outcome = { error: new Error("Unable to stringify response body") };
      }
      if (body !== undefined && outcome.error === undefined) {
        await request("POST", `invocation/${requestId}/response`, body, { "Content-Type": "application/json" });
        continue;
      }
    }
    const doc = toErrorDoc(outcome.error);
    console.error("Invoke Error", "\t" + JSON.stringify(doc));
    await request("POST", `invocation/${requestId}/error`, JSON.stringify(doc), {
      "Lambda-Runtime-Function-Error-Type": doc.errorType,
    });
  }
}

// lamb reads our output through pipes: when they break, lamb is gone, and so is our work.
process.stdout.on("error", () => process.exit(1));
process.stderr.on("error", () => process.exit(1));

let crashing = false;
process.on("uncaughtException", async (e) => {
  if (crashing) process.exit(129);
  crashing = true;
  const doc = toErrorDoc(e);
  console.error("Uncaught Exception", "\t" + JSON.stringify(doc));
  if (requestId) {
    await request("POST", `invocation/${requestId}/error`, JSON.stringify(doc), {
      "Lambda-Runtime-Function-Error-Type": doc.errorType,
    }).catch(() => {});
  }
  process.exit(129);
});

main();
