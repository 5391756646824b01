#!/usr/bin/env node
// Runs a GGUF file on a real llama.cpp (the prebuilt CPU binary of node-llama-cpp, pinned in package.json)
// and prints ONE JSON object on stdout:
//   {llama_cpp_version, model, greedy_tokens, greedy_text, perplexity, windows, scored}
// Progress and llama.cpp's own log lines go to stderr. Any error: a message on stderr and exit status 1
// (2 for bad usage).
//
//   node llama-check.mjs --model FILE.gguf [--greedy 30] [--prompt "Once upon a time"]
//                        [--ppl FILE.jsonl|FILE.txt] [--field text] [--ctx 512] [--max-windows W] [--threads 1]
//
// --threads defaults to 1: the sample models are tiny, and llama.cpp's default (every core it detects)
// spins idle threads past the cores a container really has (measured: 20 s instead of 11 ms for 30 tokens).
//
// Greedy decoding: BOS (when the model's vocabulary says to add one, as llama.cpp does) + the prompt's
// tokens, temperature 0, the first N generated token ids (stopping at EOS, which is not reported).
//
// Perplexity: llama.cpp's `llama-perplexity` protocol (tools/perplexity/perplexity.cpp, function
// `perplexity`, in the llama.cpp source node-llama-cpp bundles), reproduced step by step:
//   text    = the documents joined by "\n\n", one trailing "\n" dropped (as `-f FILE` reads it);
//   tokens  = common_tokenize(text, add_special=true): [BOS] + tokenize(text);
//   chunks  = tokens.size() / n_ctx full windows of n_ctx tokens (the rest is dropped);
//   each chunk is decoded from an empty KV cache with its first token replaced by BOS;
//   first   = n_ctx/2; the logits at positions first .. n_ctx-2 are scored against the tokens at
//             first+1 .. n_ctx-1 (n_ctx - first - 1 = 255 per window for n_ctx = 512);
//   ppl     = exp(mean NLL over every scored token of every window), log-softmax in double.
import fs from "node:fs";
import path from "node:path";
import {fileURLToPath} from "node:url";
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

const here = path.dirname(fileURLToPath(import.meta.url));

class UsageError extends Error {}

function parseArgs(argv) {
    const opts = {model: null, greedy: 0, prompt: "Once upon a time", ppl: null, field: "text", ctx: 512, maxWindows: -1, threads: 1};
    const need = (i) => {
        if (i + 1 >= argv.length) throw new UsageError(`${argv[i]} needs a value`);
        return argv[i + 1];
    };
    const int = (i, min) => {
        const v = need(i);
        if (!/^-?\d+$/.test(v) || Number(v) < min) throw new UsageError(`${argv[i]} needs an integer >= ${min}, got "${v}"`);
        return Number(v);
    };
    for (let i = 0; i < argv.length; i++) {
        switch (argv[i]) {
            case "--model": opts.model = need(i); i++; break;
            case "--greedy": opts.greedy = int(i, 0); i++; break;
            case "--prompt": opts.prompt = need(i); i++; break;
            case "--ppl": opts.ppl = need(i); i++; break;
            case "--field": opts.field = need(i); i++; break;
            case "--ctx": opts.ctx = int(i, 4); i++; break;
            case "--max-windows": opts.maxWindows = int(i, -1); i++; break;
            case "--threads": opts.threads = int(i, 1); i++; break;
            case "-h": case "--help":
                process.stdout.write(fs.readFileSync(fileURLToPath(import.meta.url), "utf8")
                    .split("\n").filter((l) => l.startsWith("//")).map((l) => l.slice(3)).join("\n") + "\n");
                process.exit(0);
            default: throw new UsageError(`unknown argument "${argv[i]}" (see --help)`);
        }
    }
    if (opts.model == null) throw new UsageError("--model FILE.gguf is required");
    if (!fs.existsSync(opts.model)) throw new UsageError(`${opts.model}: no such file`);
    if (opts.ppl != null && !fs.existsSync(opts.ppl)) throw new UsageError(`${opts.ppl}: no such file`);
    if (opts.ctx % 2 !== 0) throw new UsageError("--ctx must be even");
    return opts;
}

// The text llama-perplexity would read: documents joined by a blank line, one trailing newline dropped.
function readPplText(file, field) {
    const raw = fs.readFileSync(file, "utf8");
    let text;
    if (file.endsWith(".jsonl")) {
        const docs = [];
        raw.split("\n").forEach((line, n) => {
            if (line.trim() === "") return;
            let obj;
            try { obj = JSON.parse(line); } catch (e) { throw new Error(`${file}:${n + 1}: not JSON (${e.message})`); }
            if (typeof obj[field] !== "string") throw new Error(`${file}:${n + 1}: no string field "${field}"`);
            docs.push(obj[field]);
        });
        text = docs.join("\n\n");
    } else {
        text = raw;
    }
    if (text.endsWith("\n")) text = text.slice(0, -1);
    return text;
}

// Version of the llama.cpp that the prebuilt binary was built from (node-llama-cpp's build metadata,
// falling back to the release the package pins in llama/binariesGithubRelease.json).
function llamaCppVersion(llama) {
    const rel = llama.llamaCppRelease;
    let version = `${rel.repo}@${rel.release}`;
    try {
        const pkg = JSON.parse(fs.readFileSync(path.join(here, "node_modules/node-llama-cpp/package.json"), "utf8"));
        version += ` (node-llama-cpp ${pkg.version}, ${llama.buildType})`;
    } catch { /* the version of the release is what matters */ }
    return version;
}

function logSoftmaxAt(logitsMap, nVocab, target) {
    // logits come as a Map token -> logit over the whole vocabulary (greedy sampler: raw logits)
    if (logitsMap.size !== nVocab) throw new Error(`got ${logitsMap.size} logits, expected ${nVocab}`);
    let max = -Infinity;
    for (const v of logitsMap.values()) if (v > max) max = v;
    let sum = 0;
    for (const v of logitsMap.values()) sum += Math.exp(v - max);
    const lt = logitsMap.get(target);
    if (lt === undefined) throw new Error(`no logit for token ${target}`);
    if (!Number.isFinite(lt) || !Number.isFinite(max)) throw new Error(`non-finite logits (max ${max}, target ${lt})`);
    return (lt - max) - Math.log(sum);
}

async function main() {
    const opts = parseArgs(process.argv.slice(2));
    const logTail = [];
    const llama = await getLlama({
        gpu: false, build: "never", usePrebuiltBinaries: true, skipDownload: true, progressLogs: false,
        logLevel: LlamaLogLevel.warn,
        logger(level, message) {
            const line = `[llama.cpp ${level}] ${message.trimEnd()}`;
            logTail.push(line);
            if (logTail.length > 20) logTail.shift();
            process.stderr.write(line + "\n");
        }
    });
    const result = {llama_cpp_version: llamaCppVersion(llama), model: path.resolve(opts.model)};
    let model;
    try {
        model = await llama.loadModel({modelPath: path.resolve(opts.model), gpuLayers: 0, checkTensors: true});
    } catch (e) {
        // llama.cpp's log lines reach JavaScript asynchronously, possibly after the rejection: let them arrive
        await new Promise((resolve) => setTimeout(resolve, 200));
        throw new Error(`llama.cpp could not load ${opts.model}: ${e.message}` +
            (logTail.length ? `\nllama.cpp said:\n  ${logTail.join("\n  ")}` : ""));
    }
    const nVocab = model.fileInfo?.metadata?.tokenizer?.ggml?.tokens?.length ?? null;
    const bos = model.tokens.bos;
    const eos = model.tokens.eos;
    const addBos = model.tokens.shouldPrependBosToken;
    if (opts.ppl != null && (bos == null || !addBos)) {
        throw new Error(`${opts.model}: the perplexity protocol needs a BOS token the vocabulary adds (bos=${bos}, add_bos=${addBos})`);
    }
    const context = await model.createContext({contextSize: opts.ctx, batchSize: opts.ctx, sequences: 1, threads: opts.threads});
    const sequence = context.getSequence();

    // --- greedy decoding
    if (opts.greedy > 0) {
        const prompt = [...(addBos && bos != null ? [bos] : []), ...model.tokenize(opts.prompt, false)];
        if (prompt.length === 0) throw new Error("empty prompt and no BOS token");
        const out = [];
        for await (const token of sequence.evaluate(prompt, {temperature: 0})) {
            if (token === eos) break;
            out.push(token);
            if (out.length >= opts.greedy) break;
        }
        result.prompt_tokens = prompt;
        result.greedy_tokens = out;
        result.greedy_text = model.detokenize(out, false, prompt);
        await sequence.clearHistory();
    }

    // --- perplexity, llama.cpp's protocol
    if (opts.ppl != null) {
        const nCtx = opts.ctx;
        const text = readPplText(opts.ppl, opts.field);
        const tokens = [bos, ...model.tokenize(text, false)];
        if (tokens.length < 2 * nCtx) throw new Error(`${opts.ppl}: ${tokens.length} tokens, llama-perplexity needs at least ${2 * nCtx}`);
        let nChunk = Math.floor(tokens.length / nCtx);
        if (opts.maxWindows >= 0) nChunk = Math.min(nChunk, opts.maxWindows);
        const first = nCtx / 2;
        let nll = 0, count = 0;
        const t0 = Date.now();
        for (let c = 0; c < nChunk; c++) {
            const win = tokens.slice(c * nCtx, (c + 1) * nCtx);
            win[0] = bos;
            await sequence.clearHistory(); // llama_memory_clear: every window from an empty KV cache
            // Positions 0 .. n_ctx-2 in one batch: the window's last token is only ever a target (attention
            // is causal, so decoding it too, as llama.cpp does, changes no scored logit), and node-llama-cpp
            // keeps one cell of a context free: a full window would make it shift the context first.
            const items = win.slice(0, nCtx - 1).map((t, j) => j >= first ? [t, {generateNext: {logits: true}}] : t);
            const res = await sequence.controlledEvaluate(items);
            if (sequence.nextTokenIndex !== nCtx - 1) throw new Error(`window ${c}: the context holds ${sequence.nextTokenIndex} tokens, not ${nCtx - 1} (context shift?)`);
            for (let j = first; j <= nCtx - 2; j++) {
                const logits = res[j]?.next?.logits;
                if (logits == null) throw new Error(`window ${c}: no logits at position ${j}`);
                nll -= logSoftmaxAt(logits, nVocab ?? logits.size, win[j + 1]);
                count++;
            }
            if (c === 0 || (c + 1) % 50 === 0 || c + 1 === nChunk) {
                process.stderr.write(`[ppl] ${path.basename(opts.model)} [${c + 1}/${nChunk}] ${Math.exp(nll / count).toFixed(4)} (${((Date.now() - t0) / 1000).toFixed(1)} s)\n`);
            }
        }
        result.perplexity = Number(Math.exp(nll / count).toFixed(6));
        result.windows = nChunk;
        result.scored = count;
        result.ppl_tokens = tokens.length;
    }
    process.stdout.write(JSON.stringify(result) + "\n");
    await context.dispose();
    await model.dispose();
    await llama.dispose();
}

main().catch((e) => {
    process.stderr.write(`llama-check: ${e instanceof UsageError ? "usage: " : ""}${e.message}\n`);
    process.exit(e instanceof UsageError ? 2 : 1);
});
