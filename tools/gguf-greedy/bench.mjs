// Single-stream greedy decode speed of llama.cpp (node-llama-cpp's prebuilt
// CPU binaries) on a GGUF file, for docs/BENCHMARKS.md's decode table:
// from BOS, N greedy tokens, ROUNDS timed rounds after one warm-up, T
// threads; prints one JSON object with tokens per second of wall time and
// of process CPU time, per round and their medians.
//
//   NODE_PATH=/tmp/gguf-node/node_modules node bench.mjs MODEL.gguf [N=128] [ROUNDS=5] [T=2]
import {createRequire} from "node:module";
import path from "node:path";
import {pathToFileURL} from "node:url";

async function loadNodeLlamaCpp() {
    for (const dir of (process.env.NODE_PATH ?? "").split(path.delimiter).filter(Boolean)) {
        try {
            const entry = createRequire(path.join(dir, "_.js")).resolve("node-llama-cpp");
            return await import(pathToFileURL(entry).href);
        } catch {
            // not in this folder: try the next
        }
    }
    return await import("node-llama-cpp");
}
const {getLlama} = await loadNodeLlamaCpp();

const [modelPath, nArg, roundsArg, threadsArg] = process.argv.slice(2);
if (!modelPath) {
    console.error("usage: node bench.mjs MODEL.gguf [N] [ROUNDS] [THREADS]");
    process.exit(2);
}
const n = Number(nArg ?? 128), rounds = Number(roundsArg ?? 5), threads = Number(threadsArg ?? 2);

const llama = await getLlama({gpu: false, build: "never", logLevel: "error", maxThreads: threads});
const model = await llama.loadModel({modelPath});
const context = await model.createContext({contextSize: Math.min(model.trainContextSize, 512), sequences: 1, threads});
const sequence = context.getSequence();
const bos = model.tokens.bos ?? 1;

// tokens per second of wall time and of process CPU time (user + system,
// every thread: llama.cpp's workers included)
async function once() {
    await sequence.clearHistory();
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    let k = 0;
    for await (const id of sequence.evaluate([bos], {temperature: 0})) {
        if (++k >= n) break;
    }
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const c = process.cpuUsage(c0);
    return [k / wall, k / ((c.user + c.system) / 1e6)];
}

const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b), m = s.length;
    return m % 2 ? s[(m - 1) / 2] : (s[m / 2 - 1] + s[m / 2]) / 2;
};
await once(); // warm-up
const tps = [], tpc = [];
for (let r = 0; r < rounds; r++) {
    const [w, c] = await once();
    tps.push(w);
    tpc.push(c);
}
console.log(JSON.stringify({engine: "llama.cpp (node-llama-cpp " + (llama.buildType ?? "") + ")", threads, gen_len: n,
    tokens_per_sec: tps, tokens_per_sec_median: median(tps), tokens_per_cpu_sec: tpc, tokens_per_cpu_sec_median: median(tpc)}));
await context.dispose();
await model.dispose();
