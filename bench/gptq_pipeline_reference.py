#!/usr/bin/python3
"""PyTorch baseline for llmc's GPTQ pipeline: the GPTQ repository's (IST-DASLab/gptq, llama.py
`llama_sequential` with --true-sequential) layer-sequential quantization of a Llama-family model.

Plain float32 PyTorch on the CPU (Debian's torch 1.13, /usr/bin/python3, OpenBLAS openmp: always
run with LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp, see bench/README.md). The
model loader and the decoder-layer math come from bench/torch_llama_eval.py.

Pipeline (as the repository does it):
  embed the N calibration windows of L tokens;
  for each decoder layer, for each group [q,k,v], [o], [gate,up], [down]:
    forward hooks on the group's linears accumulate one float32 Hessian per linear (add_batch);
    the whole layer runs over all N windows (batch 1, one window per call); hooks removed;
    GPTQ fasterquant on each linear of the group (blocksize 128, percdamp 0.01, no act-order,
    group scales from Quantizer.find_params when a group's first column is reached);
  the quantized layer runs once more over all N windows -> the next layer's inputs.

Prints one JSON object. The split: seconds_forward = wall time of all layer forward calls minus
the time spent inside the hooks; seconds_hessian = time inside the hooks; seconds_gptq = time in
fasterquant. seconds_total = embedding + all layers (model loading excluded, see load_seconds).

  LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp /usr/bin/python3 \\
      bench/gptq_pipeline_reference.py MODEL_DIR --windows 128 --seq-len 512 --threads 2 \\
      [--layers K] [--tokens IDS.txt] [--bits 4] [--group-size 128] [--sym | --asym] \\
      [--eval-tokens IDS.txt]
"""

import argparse
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_llama_eval as tle  # noqa: E402  (pins the BLAS thread variables from --threads)

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


# ----------------------------------------------------------------------------------------------
# quant.py: Quantizer (perchannel=True, mse=False is what llama.py configures)
# ----------------------------------------------------------------------------------------------

from gptq_torch import Quantizer, fasterquant  # noqa: E402


# ----------------------------------------------------------------------------------------------
# gptq.py: GPTQ (Hessian accumulation + fasterquant), nn.Linear only
# ----------------------------------------------------------------------------------------------

class GPTQ:
    def __init__(self, layer):
        self.layer = layer
        W = layer.weight.data
        self.rows, self.columns = W.shape
        self.H = torch.zeros((self.columns, self.columns))
        self.nsamples = 0
        self.error = None

    def add_batch(self, inp, out):
        if len(inp.shape) == 2:
            inp = inp.unsqueeze(0)
        tmp = inp.shape[0]
        if len(inp.shape) == 3:
            inp = inp.reshape((-1, inp.shape[-1]))
        inp = inp.t()
        self.H *= self.nsamples / (self.nsamples + tmp)
        self.nsamples += tmp
        inp = math.sqrt(2 / self.nsamples) * inp.float()
        self.H += inp.matmul(inp.t())

    def fasterquant(self, blocksize=128, percdamp=.01, groupsize=-1):
        W = self.layer.weight.data
        Q, self.error, _ = fasterquant(W, self.H, self.quantizer, groupsize, blocksize, percdamp)
        del self.H
        self.layer.weight.data = Q.reshape(W.shape).to(W.dtype)

    def free(self):
        self.H = None


# ----------------------------------------------------------------------------------------------
# one decoder layer as an nn.Module with nn.Linear children (so forward hooks work); the math is
# torch_llama_eval.Llama.logits' layer body
# ----------------------------------------------------------------------------------------------

LINEARS = ("q", "k", "v", "o", "gate", "up", "down")
SEQUENTIAL = [["q", "k", "v"], ["o"], ["gate", "up"], ["down"]]


def _linear(w, b):
    lin = torch.nn.utils.skip_init(nn.Linear, w.shape[1], w.shape[0], bias=b is not None)
    lin.weight = nn.Parameter(w, requires_grad=False)
    if b is not None:
        lin.bias = nn.Parameter(b, requires_grad=False)
    return lin


class DecoderLayer(nn.Module):
    def __init__(self, lw, model):
        super().__init__()
        self.model = model
        self.ln1 = lw["ln1"]
        self.ln2 = lw["ln2"]
        for n in LINEARS:
            setattr(self, n, _linear(lw[n], lw[n + "b"]))

    def forward(self, x):
        m = self.model
        B, L, _ = x.shape
        H, KV, D = m.n_heads, m.n_kv, m.head_dim
        rep = H // KV
        cos, sin = m._rope(L)
        mask = m._mask(L)
        scale = 1.0 / math.sqrt(D)
        h = tle.rms_norm(x, self.ln1, m.eps)
        q = self.q(h).view(B, L, H, D).transpose(1, 2)
        k = self.k(h).view(B, L, KV, D).transpose(1, 2)
        v = self.v(h).view(B, L, KV, D).transpose(1, 2)
        q = q * cos + tle.rotate_half(q) * sin
        k = k * cos + tle.rotate_half(k) * sin
        if rep > 1:
            k = k.repeat_interleave(rep, dim=1)
            v = v.repeat_interleave(rep, dim=1)
        att = torch.matmul(q, k.transpose(-2, -1)) * scale + mask
        att = torch.softmax(att, dim=-1)
        a = torch.matmul(att, v).transpose(1, 2).reshape(B, L, H * D)
        x = x + self.o(a)
        h = tle.rms_norm(x, self.ln2, m.eps)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


# ----------------------------------------------------------------------------------------------
# llama_sequential
# ----------------------------------------------------------------------------------------------

class Timers:
    def __init__(self):
        self.forward_wall = 0.0
        self.hessian = 0.0
        self.gptq = 0.0
        self.forward_calls = 0


def llama_sequential(model, windows, args, timers, log):
    N, L = windows.shape
    inps = torch.zeros((N, L, model.hidden))
    for j in range(N):
        inps[j] = F.embedding(windows[j], model.embed)
    outs = torch.zeros_like(inps)

    def run_layer(layer):
        for j in range(N):
            t = time.perf_counter()
            outs[j] = layer(inps[j].unsqueeze(0))[0]
            timers.forward_wall += time.perf_counter() - t
            timers.forward_calls += 1

    n_layers = model.n_layers if args.layers is None else min(args.layers, model.n_layers)
    errors = {}
    for i in range(n_layers):
        t_layer = time.perf_counter()
        lw = model.layers[i]
        layer = DecoderLayer(lw, model)
        for names in SEQUENTIAL:
            gptq = {}
            for name in names:
                gptq[name] = GPTQ(getattr(layer, name))
                gptq[name].quantizer = Quantizer()
                gptq[name].quantizer.configure(args.bits, perchannel=True, sym=args.sym)

            def add_batch(name):
                def tmp(_, inp, out):
                    t = time.perf_counter()
                    gptq[name].add_batch(inp[0].data, out.data)
                    timers.hessian += time.perf_counter() - t
                return tmp
            handles = [getattr(layer, name).register_forward_hook(add_batch(name)) for name in names]
            run_layer(layer)
            for h in handles:
                h.remove()

            for name in names:
                t = time.perf_counter()
                gptq[name].fasterquant(blocksize=args.blocksize, percdamp=args.percdamp,
                                       groupsize=args.group_size)
                timers.gptq += time.perf_counter() - t
                errors["model.layers.%d.%s" % (i, name)] = gptq[name].error
                gptq[name].free()

        run_layer(layer)
        for name in LINEARS:  # hand the quantized weights back to the tle model (for --eval-tokens)
            lw[name] = getattr(layer, name).weight.data
        del layer, gptq
        inps, outs = outs, inps
        log("layer %d/%d done in %.1f s (forward %.1f, hessian %.1f, gptq %.1f cumulative)"
            % (i + 1, n_layers, time.perf_counter() - t_layer, timers.forward_wall - timers.hessian,
               timers.hessian, timers.gptq))
    return n_layers, errors


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model_dir")
    ap.add_argument("--windows", type=int, default=128, help="calibration windows N")
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: leave)")
    ap.add_argument("--layers", type=int, default=None, help="quantize only the first K layers")
    ap.add_argument("--tokens", default=None,
                    help="whitespace-separated token ids; the first N windows of L (C1 default). "
                         "Default: uniform random ids from torch.Generator seeded 0")
    ap.add_argument("--bits", type=int, default=4)
    ap.add_argument("--group-size", type=int, default=128, help="-1: one group per row")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--sym", dest="sym", action="store_true", default=True, help="symmetric (default)")
    g.add_argument("--asym", dest="sym", action="store_false", help="asymmetric")
    ap.add_argument("--blocksize", type=int, default=128)
    ap.add_argument("--percdamp", type=float, default=0.01)
    ap.add_argument("--eval-tokens", default=None,
                    help="after quantizing, P1 perplexity on all full windows of these ids (untimed)")
    ap.add_argument("--inference-mode", action="store_true",
                    help="run under torch.inference_mode instead of the repository's torch.no_grad "
                         "(fewer fresh allocations; faster forwards on torch 1.13)")
    ap.add_argument("--quiet", action="store_true", help="no per-layer progress on stderr")
    args = ap.parse_args()

    def log(msg):
        if not args.quiet:
            print(msg, file=sys.stderr, flush=True)

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    L = args.seq_len
    blas = tle.loaded_blas() or []
    if not any("openblas-openmp" in b for b in blas):
        print("warning: BLAS is %s, not openblas-openmp; set "
              "LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp (bench/README.md)" % blas,
              file=sys.stderr)

    t0 = time.perf_counter()
    with torch.no_grad():
        model = tle.Llama(args.model_dir)
    load_s = time.perf_counter() - t0

    N = args.windows
    if args.tokens:
        stream = tle.read_tokens(args.tokens)
        if stream.numel() < N * L:
            sys.exit("error: %d windows of %d asked, the stream has %d tokens" % (N, L, stream.numel()))
        windows = stream[:N * L].view(N, L)
        source = args.tokens
    else:
        gen = torch.Generator().manual_seed(0)
        windows = torch.randint(0, model.vocab, (N, L), generator=gen, dtype=torch.int64)
        source = "random(seed=0)"
    if ((windows < 0) | (windows >= model.vocab)).any():
        sys.exit("error: token ids outside [0, %d)" % model.vocab)

    timers = Timers()
    t0 = time.perf_counter()
    with (torch.inference_mode() if args.inference_mode else torch.no_grad()):
        n_layers, errors = llama_sequential(model, windows, args, timers, log)
    total = time.perf_counter() - t0

    res = {
        "tool": "pytorch-gptq-reference",
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "blas": blas,
        "model_dir": os.path.abspath(args.model_dir),
        "tokens_source": source,
        "windows": N,
        "seq_len": L,
        "layers": n_layers,
        "bits": args.bits,
        "group_size": args.group_size,
        "sym": args.sym,
        "blocksize": args.blocksize,
        "percdamp": args.percdamp,
        "load_seconds": load_s,
        "seconds_total": total,
        "seconds_forward": timers.forward_wall - timers.hessian,
        "seconds_hessian": timers.hessian,
        "seconds_gptq": timers.gptq,
        "layer_forward_calls": timers.forward_calls,
        "grad_mode": "inference_mode" if args.inference_mode else "no_grad",
        "gptq_error_sum": sum(errors.values()),
    }
    if args.eval_tokens:
        stream = tle.read_tokens(args.eval_tokens)
        W = stream.numel() // L
        ev = stream[:W * L].view(W, L)
        t = time.perf_counter()
        with torch.inference_mode():
            nll = tle.run_eval(model, ev, 1)
        scored = W * (L - 1)
        res.update({"eval_windows": W, "eval_scored_tokens": scored, "eval_mean_nll": nll / scored,
                    "eval_perplexity": math.exp(nll / scored),
                    "eval_seconds": time.perf_counter() - t})
    print(json.dumps(res))


if __name__ == "__main__":
    main()
