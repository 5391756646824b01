#!/usr/bin/python3
"""PyTorch baseline for `llmc distill`: training tokens per second of a full knowledge-distillation
step (teacher forward, student forward, loss, backward, gradient clipping, AdamW step).

Teacher: every layer of a Hugging Face Llama folder (config.json + safetensors, read by hand as in
torch_llama_eval.py), run under torch.no_grad(). Student: the decoder layers --keep-layers of the
same weights, renumbered, with every parameter trainable (embedding, which is also the lm_head when
tied, each layer's seven linear weights and two norms, the final norm). Float32 throughout.

Loss, as llmc's DistillLoss with a forward KL: over the B*(L-1) scored positions,
alpha T^2 mean KL(softmax(z_t / T) || softmax(z_s / T)) + (1 - alpha) mean CE(z_s, next token).
Optimizer: torch.optim.AdamW(betas (0.9, 0.95), eps 1e-8), weight decay on the 2-D parameters only,
torch.nn.utils.clip_grad_norm_ before each step, a constant learning rate (the schedule does not
change the cost of a step). Windows: random ids, uniform in [0, vocab), from a seeded generator
(the ids do not change the cost either).

Dependencies: Debian's python3-torch (1.13) and, for a fair baseline, libopenblas0-openmp selected
with LD_LIBRARY_PATH (see bench/README.md). Run with /usr/bin/python3. Prints one JSON object.
"""

import os
import sys


def _pin_blas_threads():
    """OpenBLAS sizes its pool from the environment when it is loaded: export --threads first."""
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

try:
    import torch  # noqa: E402
    import torch.nn.functional as F  # noqa: E402
except ImportError:
    sys.exit("kd_step_torch.py: no torch for %s. Install Debian's: apt-get install -y python3-torch "
             "libopenblas0-openmp, and run with /usr/bin/python3 (see bench/README.md)" % sys.executable)

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_llama_eval import load_checkpoint, loaded_blas, rms_norm, rope_inv_freq, rotate_half  # noqa: E402


def blas_kernel():
    """threadpoolctl's view of the BLAS torch calls (library, version, core type, threads)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    return [{k: p.get(k) for k in ("internal_api", "version", "architecture", "num_threads",
                                   "threading_layer", "filepath")}
            for p in threadpool_info() if p.get("user_api") == "blas"]


class Llama:
    """A plain float32 Llama forward over a dict of tensors (HF names) and a list of layer ids."""

    def __init__(self, cfg, tensors, layer_ids, trainable):
        self.cfg = cfg
        self.hidden = cfg["hidden_size"]
        self.n_heads = cfg["num_attention_heads"]
        self.n_kv = cfg.get("num_key_value_heads") or self.n_heads
        self.head_dim = cfg.get("head_dim") or self.hidden // self.n_heads
        self.vocab = cfg["vocab_size"]
        self.eps = float(cfg.get("rms_norm_eps", 1e-6))
        self.inv_freq = rope_inv_freq(cfg, self.head_dim)
        if cfg.get("hidden_act", "silu") != "silu":
            raise ValueError("unsupported hidden_act " + cfg["hidden_act"])

        def take(name):
            t = tensors.get(name)
            if t is None:
                return None
            if trainable:
                # The student trains a copy; the teacher uses the loaded tensors as they are.
                t = t.clone().requires_grad_(True)
            return t

        self.embed = take("model.embed_tokens.weight")
        tied = cfg.get("tie_word_embeddings", False) or "lm_head.weight" not in tensors
        self.lm_head = self.embed if tied else take("lm_head.weight")
        self.norm = take("model.norm.weight")
        names = ("input_layernorm", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                 "self_attn.o_proj", "post_attention_layernorm", "mlp.gate_proj", "mlp.up_proj",
                 "mlp.down_proj")
        self.layers = []
        for i in layer_ids:
            p = "model.layers.%d." % i
            layer = {}
            for n in names:
                layer[n] = take(p + n + ".weight")
                if layer[n] is None:
                    raise ValueError("missing " + p + n + ".weight")
                layer[n + ".bias"] = take(p + n + ".bias")
            self.layers.append(layer)
        self._rope = {}
        self._mask = {}

    def parameters(self):
        seen = set()
        out = [self.embed]
        if self.lm_head is not self.embed:
            out.append(self.lm_head)
        for layer in self.layers:
            out.extend(t for t in layer.values() if t is not None)
        out.append(self.norm)
        return [t for t in out if not (id(t) in seen or seen.add(id(t)))]

    def _tables(self, L):
        if L not in self._rope:
            pos = torch.arange(L, dtype=torch.int64).float()
            freqs = torch.outer(pos, self.inv_freq)
            emb = torch.cat((freqs, freqs), dim=-1)
            self._rope[L] = (emb.cos(), emb.sin())
            self._mask[L] = torch.full((L, L), float("-inf")).triu(1)
        return self._rope[L] + (self._mask[L],)

    def logits(self, ids):
        """ids int64 [B, L] -> logits float32 [B, L, V]."""
        B, L = ids.shape
        H, KV, D = self.n_heads, self.n_kv, self.head_dim
        cos, sin, mask = self._tables(L)
        scale = 1.0 / math.sqrt(D)
        x = F.embedding(ids, self.embed)
        for lw in self.layers:
            h = rms_norm(x, lw["input_layernorm"], self.eps)
            q = F.linear(h, lw["self_attn.q_proj"], lw["self_attn.q_proj.bias"]).view(B, L, H, D).transpose(1, 2)
            k = F.linear(h, lw["self_attn.k_proj"], lw["self_attn.k_proj.bias"]).view(B, L, KV, D).transpose(1, 2)
            v = F.linear(h, lw["self_attn.v_proj"], lw["self_attn.v_proj.bias"]).view(B, L, KV, D).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            if H != KV:
                k = k.repeat_interleave(H // KV, dim=1)
                v = v.repeat_interleave(H // KV, dim=1)
            att = torch.softmax(torch.matmul(q, k.transpose(-2, -1)) * scale + mask, dim=-1)
            a = torch.matmul(att, v).transpose(1, 2).reshape(B, L, H * D)
            x = x + F.linear(a, lw["self_attn.o_proj"], lw["self_attn.o_proj.bias"])
            h = rms_norm(x, lw["post_attention_layernorm"], self.eps)
            g = F.silu(F.linear(h, lw["mlp.gate_proj"], lw["mlp.gate_proj.bias"]))
            u = F.linear(h, lw["mlp.up_proj"], lw["mlp.up_proj.bias"])
            x = x + F.linear(g * u, lw["mlp.down_proj"], lw["mlp.down_proj.bias"])
        return F.linear(rms_norm(x, self.norm, self.eps), self.lm_head)


def kd_loss(zt, zs, ids, alpha, temperature):
    """alpha T^2 KL(p_t^T || p_s^T) + (1 - alpha) CE, means over the B*(L-1) scored positions."""
    V = zs.shape[-1]
    zs = zs[:, :-1, :].reshape(-1, V)
    targets = ids[:, 1:].reshape(-1)
    ce = F.cross_entropy(zs, targets)
    loss = (1 - alpha) * ce
    kl = torch.zeros(())
    if alpha > 0:
        zt = zt[:, :-1, :].reshape(-1, V)
        log_pt = torch.log_softmax(zt / temperature, dim=-1)
        log_ps = torch.log_softmax(zs / temperature, dim=-1)
        kl = F.kl_div(log_ps, log_pt, reduction="batchmean", log_target=True)
        loss = loss + alpha * temperature * temperature * kl
    return loss, kl, ce


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model_dir")
    ap.add_argument("--keep-layers", required=True, help="teacher layers of the student, e.g. 0,2,4")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    ap.add_argument("--steps", type=int, default=3, help="timed steps")
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--temperature", type=float, default=2.0)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--grad-clip", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--phases", action="store_true",
                    help="also report each step's phases (wall, CPU, page faults, RSS); adds a little overhead")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    blas = loaded_blas() or []
    if any("/blas/" in b for b in blas) and not any("openblas" in b or "blis" in b for b in blas):
        print("warning: reference (netlib) BLAS in use, ~20x slower matmuls: set LD_LIBRARY_PATH="
              "/usr/lib/x86_64-linux-gnu/openblas-openmp (bench/README.md)", file=sys.stderr)

    t0 = time.perf_counter()
    with open(os.path.join(args.model_dir, "config.json")) as f:
        cfg = json.load(f)
    keep = sorted(int(i) for i in args.keep_layers.split(","))
    tensors = load_checkpoint(args.model_dir)
    with torch.no_grad():
        teacher = Llama(cfg, tensors, range(cfg["num_hidden_layers"]), trainable=False)
        student = Llama(cfg, tensors, keep, trainable=True)
    del tensors
    params = student.parameters()
    decay = [p for p in params if p.dim() == 2]
    no_decay = [p for p in params if p.dim() != 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    load_s = time.perf_counter() - t0

    gen = torch.Generator().manual_seed(args.seed)
    B, L = args.batch_size, args.seq_len
    seconds, log, phases = [], [], []
    marks = []

    def mark(name):
        if args.phases:  # wall, user, sys, minor faults, RSS: as bench/KdStepPhases.java
            r = resource.getrusage(resource.RUSAGE_SELF)
            with open("/proc/self/status") as f:
                rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")) * 1024
            marks.append((name, time.perf_counter(), r.ru_utime, r.ru_stime, r.ru_minflt, rss))

    for step in range(args.warmup + args.steps):
        ids = torch.randint(0, teacher.vocab, (B, L), generator=gen, dtype=torch.int64)
        marks.clear()
        mark("start")
        t = time.perf_counter()
        with torch.no_grad():
            zt = teacher.logits(ids) if args.alpha > 0 else None
        mark("teacher")
        zs = student.logits(ids)
        mark("student")
        loss, kl, ce = kd_loss(zt, zs, ids, args.alpha, args.temperature)
        mark("loss")
        loss.backward()
        mark("backward")
        norm = torch.nn.utils.clip_grad_norm_(params, args.grad_clip)
        mark("clip")
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        mark("adamw")
        del zt, zs
        seconds.append(time.perf_counter() - t)
        if args.phases:
            phases.append([{"phase": b[0], "seconds": b[1] - a[1], "user": b[2] - a[2], "sys": b[3] - a[3],
                            "minor_faults": b[4] - a[4], "rss_bytes": b[5]} for a, b in zip(marks, marks[1:])])
        log.append({"loss": loss.item(), "divergence": kl.item(), "cross_entropy": ce.item(),
                    "grad_norm": float(norm)})
        del loss, kl, ce

    timed = seconds[args.warmup:]
    res = {
        "tool": "pytorch",
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "blas": blas,
        "blas_kernel": blas_kernel(),
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_WAIT_POLICY")},
        "teacher_layers": cfg["num_hidden_layers"],
        "student_layers": keep,
        "trainable_parameters": sum(p.numel() for p in params),
        "batch_size": B,
        "seq_len": L,
        "warmup": args.warmup,
        "load_seconds": load_s,
        "step_seconds": seconds,
        "median_step_seconds": statistics.median(timed) if timed else None,
        "tokens_per_second": B * L * len(timed) / sum(timed) if timed else None,
        "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "steps": log,
    }
    if args.phases:
        res["phases"] = phases
    print(json.dumps(res))


if __name__ == "__main__":
    main()
