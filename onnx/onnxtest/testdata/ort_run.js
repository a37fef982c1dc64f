// ort_run.js runs ONNX models with ONNX Runtime (CPU, npm package
// onnxruntime-node) for graft's tests. Package onnxtest (Go) starts it and
// talks to it; it is not meant to be used by hand, although it can be:
//
//   node ort_run.js MODULES_DIR < requests.jsonl > responses.jsonl
//
// MODULES_DIR is a node_modules folder holding onnxruntime-node.
//
// Protocol: one JSON object per line in each direction. Once ONNX Runtime is
// loaded the script writes {"ready": true, "version": "1.30.0"}; then it
// answers each request with one response, in order. A request:
//
//   {"model": "/abs/path/model.onnx",
//    "inputs": {"input": {"dtype": "float32", "dims": [1,3,8,8], "data": "<base64>"}}}
//
// With "repeat": N (N > 0) the model runs N more times after the first run
// and the response adds "times_ms": the wall time of each of those runs, as
// measured around session.run inside this process (for benchmarks).
// "threads": T (optional) runs the model in a session with T intra-op
// threads and one inter-op thread (sequential execution).
//
// A response carries every graph output by name, or an error:
//
//   {"outputs": {"output": {"dtype": "float32", "dims": [1,5], "data": "<base64>"}}}
//   {"error": "message"}
//
// data is the little-endian bytes of the elements in row-major order, base64
// encoded. dtype is "float32", "float16" (binary16 bits) or "int64" in both
// directions; outputs of other numeric types are converted: float64 to
// float32, all integer and bool types to int64. Other types (strings) are an error.
//
// Sessions are cached by model path, size and modification time (at most
// MAX_SESSIONS, least recently used dropped first), so repeated runs of one
// model pay its load once. The process ends when its standard input closes.
'use strict';

const fs = require('fs');
const path = require('path');
const readline = require('readline');

const modulesDir = process.argv[2];
if (!modulesDir) {
  process.stderr.write('usage: node ort_run.js NODE_MODULES_DIR\n');
  process.exit(2);
}
const ortDir = path.join(path.resolve(modulesDir), 'onnxruntime-node');
const ort = require(ortDir);
const version = require(path.join(ortDir, 'package.json')).version;

const MAX_SESSIONS = 8;
const sessions = new Map(); // key -> Promise<InferenceSession>, in use order

async function session(model, threads) {
  const st = fs.statSync(model);
  const key = model + '\0' + st.size + '\0' + st.mtimeMs + '\0' + (threads || 0);
  let s = sessions.get(key);
  if (s) {
    sessions.delete(key);
    sessions.set(key, s);
    return s;
  }
  for (const k of sessions.keys()) {
    if (k.startsWith(model + '\0')) {
      const old = sessions.get(k);
      sessions.delete(k);
      old.then((x) => x.release()).catch(() => {});
    }
  }
  const opts = {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
  };
  if (threads) {
    opts.intraOpNumThreads = threads;
    opts.interOpNumThreads = 1;
    opts.executionMode = 'sequential';
  }
  s = ort.InferenceSession.create(model, opts);
  sessions.set(key, s);
  s.catch(() => sessions.delete(key));
  while (sessions.size > MAX_SESSIONS) {
    const [k, old] = sessions.entries().next().value;
    sessions.delete(k);
    old.then((x) => x.release()).catch(() => {});
  }
  return s;
}

function decode(name, t) {
  const buf = Buffer.from(t.data, 'base64');
  // Copy into a fresh, aligned ArrayBuffer: typed arrays need alignment.
  const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length);
  let data;
  if (t.dtype === 'float32') {
    data = new Float32Array(ab);
  } else if (t.dtype === 'int64') {
    data = new BigInt64Array(ab);
  } else if (t.dtype === 'float16') {
    data = new Uint16Array(ab); // binary16 bits
  } else {
    throw new Error(`input ${JSON.stringify(name)}: dtype ${JSON.stringify(t.dtype)} is not float32, float16 or int64`);
  }
  return new ort.Tensor(t.dtype, data, t.dims);
}

function encode(name, t) {
  let data;
  let dtype;
  switch (t.type) {
    case 'float32':
      dtype = 'float32';
      data = t.data;
      break;
    case 'float16':
      // onnxruntime-node hands float16 data over as Uint16Array bits
      dtype = 'float16';
      data = t.data instanceof Uint16Array ? t.data : Uint16Array.from(t.data);
      break;
    case 'float64':
      dtype = 'float32';
      data = Float32Array.from(t.data, Number);
      break;
    case 'int64':
      dtype = 'int64';
      data = t.data;
      break;
    case 'uint64':
      dtype = 'int64';
      data = BigInt64Array.from(t.data, (v) => BigInt.asIntN(64, v));
      break;
    case 'int32':
    case 'uint32':
    case 'int16':
    case 'uint16':
    case 'int8':
    case 'uint8':
    case 'bool':
      dtype = 'int64';
      data = BigInt64Array.from(t.data, (v) => BigInt(Number(v)));
      break;
    default:
      throw new Error(`output ${JSON.stringify(name)}: type ${t.type} cannot be returned`);
  }
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return { dtype, dims: Array.from(t.dims, Number), data: bytes.toString('base64') };
}

async function handle(line) {
  const req = JSON.parse(line);
  const sess = await session(path.resolve(req.model), req.threads);
  const feeds = {};
  for (const [name, t] of Object.entries(req.inputs || {})) {
    feeds[name] = decode(name, t);
  }
  const res = await sess.run(feeds);
  const outputs = {};
  for (const name of sess.outputNames) {
    outputs[name] = encode(name, res[name]);
  }
  const times = [];
  for (let i = 0; i < (req.repeat || 0); i++) {
    const t0 = process.hrtime.bigint();
    await sess.run(feeds);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return times.length ? { outputs, times_ms: times } : { outputs };
}

async function main() {
  process.stdout.write(JSON.stringify({ ready: true, version }) + '\n');
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of rl) {
    if (line.trim() === '') continue;
    let resp;
    try {
      resp = await handle(line);
    } catch (e) {
      resp = { error: String((e && e.message) || e) };
    }
    const out = JSON.stringify(resp) + '\n';
    if (!process.stdout.write(out)) {
      await new Promise((r) => process.stdout.once('drain', r));
    }
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(String((e && e.stack) || e) + '\n');
    process.exit(1);
  },
);
