// Greedy text from a GGUF file with llama.cpp (through node-llama-cpp's
// prebuilt binaries), for comparing with `gorlhf generate --temperature 0`.
//
//   node greedy.mjs MODEL.gguf PROMPT [N]
//
// prints one JSON object: the prompt's token ids (BOS first when the file's
// tokenizer.ggml.add_bos_token says so), the N greedy ids and their text.
// node-llama-cpp is resolved from NODE_PATH or a node_modules above this
// folder (npm install node-llama-cpp@3.22.1); it is not vendored.
import {createRequire} from "node:module";
import path from "node:path";
import {pathToFileURL} from "node:url";

// ES modules ignore NODE_PATH, so resolve the package from there by hand.
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

const [modelPath, prompt, nArg] = process.argv.slice(2);
if (!modelPath || prompt === undefined) {
    console.error("usage: node greedy.mjs MODEL.gguf PROMPT [N]");
    process.exit(2);
}
const n = Number(nArg ?? 32);

// One thread: llama.cpp's worker threads spin while they wait, which on a
// busy machine with few cores can stall a run for minutes; stories260K
// needs no more.
const llama = await getLlama({gpu: false, build: "never", logLevel: "error", maxThreads: 1});
const model = await llama.loadModel({modelPath});
const context = await model.createContext({contextSize: Math.min(model.trainContextSize, 512), sequences: 1, threads: 1});
const sequence = context.getSequence();

let promptIds = model.tokenize(prompt, false);
if (model.tokens.shouldPrependBosToken && model.tokens.bos != null) {
    promptIds = [model.tokens.bos, ...promptIds];
}
const ids = [];
for await (const id of sequence.evaluate(promptIds, {temperature: 0})) {
    ids.push(id);
    if (ids.length >= n) break;
}
console.log(JSON.stringify({
    prompt_tokens: promptIds,
    tokens: ids,
    text: model.detokenize(ids),
}));
await context.dispose();
await model.dispose();
