#!/usr/bin/python3
"""PyTorch baseline for llmc's `eval` (perplexity protocol P1, see PROTOCOLS.md).

Loads a Hugging Face Llama-family folder (config.json + model.safetensors, or shards listed in
model.safetensors.index.json) with a hand-written safetensors reader, runs a plain float32 Llama
forward under torch.inference_mode, and scores the L-1 next-token predictions of every
non-overlapping window of L tokens (each window one forward pass from an empty cache).

Dependencies: Python 3 standard library + torch (Debian's python3-torch, 1.13). Run it with
/usr/bin/python3. Prints one JSON object (with --json) or a short human-readable summary.
"""

import argparse
import json
import math
import os
import statistics
import struct
import sys
import time


def _pin_blas_threads():
    """Debian's torch calls the system libblas.so.3 (BLAS_INFO=generic). OpenBLAS and BLIS size
    their own thread pools from the environment when they are loaded, not from
    torch.set_num_threads, so --threads T is exported to them before torch is imported."""
    for i, a in enumerate(sys.argv):
        t = None
        if a == "--threads" and i + 1 < len(sys.argv):
            t = sys.argv[i + 1]
        elif a.startswith("--threads="):
            t = a.split("=", 1)[1]
        if t is not None:
            for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "BLIS_NUM_THREADS", "MKL_NUM_THREADS"):
                os.environ[var] = t


_pin_blas_threads()

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def loaded_blas():
    """Path of the BLAS shared library this process has mapped (which one libblas.so.3 resolved to)."""
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if ".so" in line}
    except OSError:
        return None
    hits = sorted(os.path.realpath(l) for l in libs
                  if any(k in os.path.basename(l) for k in ("blas", "blis", "mkl_rt", "mkl_core")))
    return sorted(set(hits)) or None


# ----------------------------------------------------------------------------------------------
# safetensors, by hand
# ----------------------------------------------------------------------------------------------

_DTYPES = {
    "F32": (torch.float32, 4),
    "F16": (torch.float16, 2),
    "BF16": (torch.int16, 2),  # reinterpreted below
}


def read_safetensors(path, wanted=None):
    """Returns {name: float32 tensor} for the tensors of one .safetensors file."""
    out = {}
    with open(path, "rb") as f:
        (hlen,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(hlen).decode("utf-8"))
        base = 8 + hlen
        for name, info in header.items():
            if name == "__metadata__":
                continue
            if wanted is not None and name not in wanted:
                continue
            dtype = info["dtype"]
            if dtype not in _DTYPES:
                raise ValueError("%s: tensor %s has unsupported dtype %s" % (path, name, dtype))
            tdtype, size = _DTYPES[dtype]
            start, end = info["data_offsets"]
            shape = info["shape"]
            n = 1
            for d in shape:
                n *= d
            if end - start != n * size:
                raise ValueError("%s: tensor %s: %d bytes for shape %s" % (path, name, end - start, shape))
            buf = bytearray(end - start)
            f.seek(base + start)
            if f.readinto(buf) != len(buf):
                raise ValueError("%s: truncated data for %s" % (path, name))
            if n == 0:
                t = torch.zeros(shape, dtype=torch.float32)
            else:
                t = torch.frombuffer(buf, dtype=tdtype)  # little-endian file, little-endian host
                if dtype == "BF16":
                    t = (t.to(torch.int32) << 16).view(torch.float32)
                elif dtype == "F16":
                    t = t.to(torch.float32)
                t = t.reshape(shape)
            out[name] = t
    return out


def load_checkpoint(model_dir):
    single = os.path.join(model_dir, "model.safetensors")
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(single):
        return read_safetensors(single)
    if os.path.exists(index):
        with open(index) as f:
            weight_map = json.load(f)["weight_map"]
        files = {}
        for name, fn in weight_map.items():
            files.setdefault(fn, set()).add(name)
        tensors = {}
        for fn in sorted(files):
            tensors.update(read_safetensors(os.path.join(model_dir, fn), files[fn]))
        return tensors
    raise FileNotFoundError("no model.safetensors or model.safetensors.index.json in " + model_dir)


# ----------------------------------------------------------------------------------------------
# Llama forward
# ----------------------------------------------------------------------------------------------

def rope_inv_freq(cfg, head_dim):
    theta = float(cfg.get("rope_theta", 10000.0))
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    rs = cfg.get("rope_scaling")
    if rs:
        kind = rs.get("rope_type", rs.get("type"))
        if kind in (None, "default"):
            pass
        elif kind == "linear":
            inv_freq = inv_freq / float(rs["factor"])
        elif kind == "llama3":  # as in transformers' _compute_llama3_parameters
            factor = float(rs["factor"])
            low = float(rs["low_freq_factor"])
            high = float(rs["high_freq_factor"])
            old_ctx = float(rs["original_max_position_embeddings"])
            low_wavelen = old_ctx / low
            high_wavelen = old_ctx / high
            wavelen = 2 * math.pi / inv_freq
            scaled = torch.where(wavelen > low_wavelen, inv_freq / factor, inv_freq)
            smooth = (old_ctx / wavelen - low) / (high - low)
            smoothed = (1 - smooth) * scaled / factor + smooth * scaled
            medium = (wavelen >= high_wavelen) & (wavelen <= low_wavelen)
            inv_freq = torch.where(medium, smoothed, scaled)
        else:
            raise ValueError("unsupported rope_scaling: %r" % (rs,))
    return inv_freq


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


class Llama:
    def __init__(self, model_dir):
        with open(os.path.join(model_dir, "config.json")) as f:
            cfg = json.load(f)
        self.cfg = cfg
        act = cfg.get("hidden_act", "silu")
        if act != "silu":
            raise ValueError("unsupported hidden_act " + act)
        self.hidden = cfg["hidden_size"]
        self.n_layers = cfg["num_hidden_layers"]
        self.n_heads = cfg["num_attention_heads"]
        self.n_kv = cfg.get("num_key_value_heads") or self.n_heads
        self.head_dim = cfg.get("head_dim") or self.hidden // self.n_heads
        self.vocab = cfg["vocab_size"]
        self.eps = float(cfg.get("rms_norm_eps", 1e-6))
        self.inv_freq = rope_inv_freq(cfg, self.head_dim)

        w = load_checkpoint(model_dir)
        self.embed = w.pop("model.embed_tokens.weight")
        lm = w.pop("lm_head.weight", None)
        if cfg.get("tie_word_embeddings", False) or lm is None:
            lm = self.embed
        self.lm_head = lm
        self.norm = w.pop("model.norm.weight")
        self.layers = []
        for i in range(self.n_layers):
            p = "model.layers.%d." % i
            g = lambda n: w.pop(p + n)
            o = lambda n: w.pop(p + n, None)
            self.layers.append({
                "ln1": g("input_layernorm.weight"),
                "q": g("self_attn.q_proj.weight"), "qb": o("self_attn.q_proj.bias"),
                "k": g("self_attn.k_proj.weight"), "kb": o("self_attn.k_proj.bias"),
                "v": g("self_attn.v_proj.weight"), "vb": o("self_attn.v_proj.bias"),
                "o": g("self_attn.o_proj.weight"), "ob": o("self_attn.o_proj.bias"),
                "ln2": g("post_attention_layernorm.weight"),
                "gate": g("mlp.gate_proj.weight"), "gateb": o("mlp.gate_proj.bias"),
                "up": g("mlp.up_proj.weight"), "upb": o("mlp.up_proj.bias"),
                "down": g("mlp.down_proj.weight"), "downb": o("mlp.down_proj.bias"),
            })
        leftover = [k for k in w if "rotary_emb.inv_freq" not in k]
        if leftover:
            print("warning: unused tensors: %s" % leftover[:8], file=sys.stderr)
        self.n_params = sum(t.numel() for t in self._all_tensors())
        self._rope_cache = {}
        self._mask_cache = {}

    def _all_tensors(self):
        yield self.embed
        if self.lm_head is not self.embed:
            yield self.lm_head
        yield self.norm
        for layer in self.layers:
            for t in layer.values():
                if t is not None:
                    yield t

    def _rope(self, L):
        if L not in self._rope_cache:
            pos = torch.arange(L, dtype=torch.int64).float()
            freqs = torch.outer(pos, self.inv_freq)
            emb = torch.cat((freqs, freqs), dim=-1)
            self._rope_cache[L] = (emb.cos(), emb.sin())
        return self._rope_cache[L]

    def _mask(self, L):
        if L not in self._mask_cache:
            m = torch.full((L, L), float("-inf")).triu(1)
            self._mask_cache[L] = m
        return self._mask_cache[L]

    def logits(self, ids):
        """ids: int64 [B, L] -> float32 logits [B, L, vocab]."""
        B, L = ids.shape
        H, KV, D = self.n_heads, self.n_kv, self.head_dim
        rep = H // KV
        cos, sin = self._rope(L)
        mask = self._mask(L)
        scale = 1.0 / math.sqrt(D)
        x = F.embedding(ids, self.embed)
        for lw in self.layers:
            h = rms_norm(x, lw["ln1"], self.eps)
            q = F.linear(h, lw["q"], lw["qb"]).view(B, L, H, D).transpose(1, 2)
            k = F.linear(h, lw["k"], lw["kb"]).view(B, L, KV, D).transpose(1, 2)
            v = F.linear(h, lw["v"], lw["vb"]).view(B, L, KV, D).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            if rep > 1:
                k = k.repeat_interleave(rep, dim=1)
                v = v.repeat_interleave(rep, dim=1)
            att = torch.matmul(q, k.transpose(-2, -1)) * scale + mask
            att = torch.softmax(att, dim=-1)
            a = torch.matmul(att, v).transpose(1, 2).reshape(B, L, H * D)
            x = x + F.linear(a, lw["o"], lw["ob"])
            h = rms_norm(x, lw["ln2"], self.eps)
            g = F.silu(F.linear(h, lw["gate"], lw["gateb"]))
            u = F.linear(h, lw["up"], lw["upb"])
            x = x + F.linear(g * u, lw["down"], lw["downb"])
        x = rms_norm(x, self.norm, self.eps)
        return F.linear(x, self.lm_head)

    def window_nll_sum(self, ids):
        """Sum of next-token NLL over positions 0..L-2 of every row of ids [B, L]."""
        logits = self.logits(ids)[:, :-1, :]
        logp = torch.log_softmax(logits.float(), dim=-1)
        tgt = ids[:, 1:].unsqueeze(-1)
        return -logp.gather(-1, tgt).double().sum().item()


# ----------------------------------------------------------------------------------------------
# driver
# ----------------------------------------------------------------------------------------------

def read_tokens(path):
    with open(path) as f:
        return torch.tensor([int(t) for t in f.read().split()], dtype=torch.int64)


def run_eval(model, windows, batch):
    total = 0.0
    for i in range(0, windows.shape[0], batch):
        total += model.window_nll_sum(windows[i:i + batch])
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model_dir")
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--windows", type=int, default=None,
                    help="number of windows (default: all full windows of --tokens, else 4)")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: leave)")
    ap.add_argument("--tokens", default=None,
                    help="file of whitespace-separated token ids (default: random ids, seed 0)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed full eval passes before timing")
    ap.add_argument("--repeats", type=int, default=3, help="timed full eval passes")
    ap.add_argument("--batch", type=int, default=1, help="windows per forward call")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    L = args.seq_len

    blas = loaded_blas() or []
    if any("/blas/" in b for b in blas) and not any("openblas" in b or "blis" in b for b in blas):
        print("warning: reference (netlib) BLAS in use; matmuls will be ~20x slower. "
              "See bench/README.md (libopenblas0-openmp).", file=sys.stderr)
    elif any("openblas-pthread" in b for b in blas) and torch.get_num_threads() > 1 \
            and os.environ.get("OMP_WAIT_POLICY", "").upper() != "PASSIVE":
        print("warning: pthread OpenBLAS + torch OpenMP threads oversubscribe the cores; use "
              "libopenblas0-openmp or OMP_WAIT_POLICY=PASSIVE. See bench/README.md.", file=sys.stderr)

    t0 = time.perf_counter()
    with torch.inference_mode():
        model = Llama(args.model_dir)
    load_s = time.perf_counter() - t0

    if args.tokens:
        stream = read_tokens(args.tokens)
        n_full = stream.numel() // L
        W = n_full if args.windows is None else args.windows
        if W > n_full:
            sys.exit("error: %d windows asked, the stream (%d tokens) has %d full windows of %d"
                     % (W, stream.numel(), n_full, L))
        bad = (stream < 0) | (stream >= model.vocab)
        if bad.any():
            sys.exit("error: token ids outside [0, %d)" % model.vocab)
        windows = stream[:W * L].view(W, L)
        source = args.tokens
    else:
        W = 4 if args.windows is None else args.windows
        gen = torch.Generator().manual_seed(0)
        windows = torch.randint(0, model.vocab, (W, L), generator=gen, dtype=torch.int64)
        source = "random(seed=0)"
    if W < 1:
        sys.exit("error: no windows")

    nll_sums = []
    seconds = []
    with torch.inference_mode():
        for _ in range(args.warmup):
            run_eval(model, windows, args.batch)
        for _ in range(args.repeats):
            t = time.perf_counter()
            s = run_eval(model, windows, args.batch)
            seconds.append(time.perf_counter() - t)
            nll_sums.append(s)

    scored = W * (L - 1)
    mean_nll = nll_sums[-1] / scored if nll_sums else float("nan")
    med = statistics.median(seconds) if seconds else float("nan")
    res = {
        "tool": "pytorch",
        "torch_version": torch.__version__,
        "python": sys.version.split()[0],
        "model_dir": os.path.abspath(args.model_dir),
        "params": model.n_params,
        "threads": torch.get_num_threads(),
        "blas": blas,
        "seq_len": L,
        "windows": W,
        "batch": args.batch,
        "tokens_source": source,
        "scored_tokens": scored,
        "mean_nll": mean_nll,
        "perplexity": math.exp(mean_nll) if seconds else float("nan"),
        "load_seconds": load_s,
        "warmup": args.warmup,
        "seconds": seconds,
        "median_seconds": med,
        "min_seconds": min(seconds) if seconds else float("nan"),
        "max_seconds": max(seconds) if seconds else float("nan"),
        "tokens_per_second": W * L / med if seconds else float("nan"),
        "tokens_per_second_note": "forward tokens: windows*seq_len / median_seconds",
        "nll_repeatable": len(set(nll_sums)) <= 1,
    }
    if args.json:
        print(json.dumps(res))
    else:
        print("torch %s, %d threads, L=%d, %d windows, %d scored tokens"
              % (res["torch_version"], res["threads"], L, W, scored))
        print("mean NLL %.5f  ppl %.4f" % (mean_nll, res["perplexity"]))
        print("seconds %s  median %.3f  -> %.1f tokens/s (forward tokens)"
              % (["%.3f" % s for s in seconds], med, res["tokens_per_second"]))


if __name__ == "__main__":
    main()
