// ort_bench.js times ONNX Runtime (CPU, npm package onnxruntime-node) for
// `graft bench --compare-ort`. graft embeds this file and runs it with
// `node -e`; NODE_PATH names the node_modules folder holding
// onnxruntime-node. One JSON request per line on stdin, one response per
// line on stdout:
//
//   {"model": "/abs/m.onnx", "threads": 2, "inputs": {"x": [8,3,224,224]}, "warmup": 3, "runs": 5}
//   -> {"times_ms": [...], "max_rss_kb": 123456, "version": "1.30.0"}  or  {"error": "..."}
//
// The session uses threads intra-op threads and one inter-op thread
// (sequential execution), as graft uses its cores. Inputs are float32,
// uniform in [-1, 1), made once per model.
'use strict';

const readline = require('readline');
const ort = require('onnxruntime-node');
const version = require('onnxruntime-node/package.json').version;

const sessions = new Map();

// peakRSSKB is this process's VmHWM. Not process.resourceUsage().maxRSS:
// on Linux a child's maxrss starts from its parent's at fork, so it would
// report graft's peak, not ONNX Runtime's.
function peakRSSKB() {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]);
  } catch (e) { /* not Linux */ }
  return process.resourceUsage().maxRSS;
}

async function session(model, threads) {
  const key = model + '\0' + threads;
  if (!sessions.has(key)) {
    sessions.set(key, await ort.InferenceSession.create(model, {
      executionProviders: ['cpu'],
      graphOptimizationLevel: 'all',
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      logSeverityLevel: 3,
    }));
  }
  return sessions.get(key);
}

const feedsCache = new Map();

function feeds(model, inputs) {
  if (!feedsCache.has(model)) {
    const f = {};
    let seed = 1;
    const rnd = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
    for (const [name, dims] of Object.entries(inputs)) {
      const n = dims.reduce((a, b) => a * b, 1);
      const data = new Float32Array(n);
      for (let i = 0; i < n; i++) data[i] = 2 * rnd() - 1;
      f[name] = new ort.Tensor('float32', data, dims);
    }
    feedsCache.set(model, f);
  }
  return feedsCache.get(model);
}

async function handle(req) {
  const sess = await session(req.model, req.threads || 1);
  const f = feeds(req.model, req.inputs || {});
  for (let i = 0; i < (req.warmup || 0); i++) await sess.run(f);
  const times = [];
  for (let i = 0; i < (req.runs || 1); i++) {
    const t0 = process.hrtime.bigint();
    await sess.run(f);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return { times_ms: times, max_rss_kb: peakRSSKB(), version };
}

(async () => {
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of rl) {
    if (line.trim() === '') continue;
    let resp;
    try {
      resp = await handle(JSON.parse(line));
    } catch (e) {
      resp = { error: String((e && e.message) || e) };
    }
    process.stdout.write(JSON.stringify(resp) + '\n');
  }
})().catch((e) => { process.stderr.write(String(e) + '\n'); process.exit(1); });
