#!/usr/bin/python3
"""PyTorch baselines for llmc's numerical kernels (bench/run.sh): the same float32 problems as
llmc.quantize.KernelBenchmark, median wall time of --runs after --warmup. Prints one JSON object:
{"threads": T, "torch": version, "blas": library, "openblas_core": name or null,
 "openblas_config": text or null, "probe_gflops": matmul 1024 GFLOPS,
 "kernels": {"gemm_2048": s, "linear_512x4096x4096": s, "xtx_2048": s, "cholesky_4096": s,
 "gptq_inverse_4096": s, "gptq_loop_4096": s, "rtn_4096": s, "pack_4096": s, "q4_0_4096": s}}.

gptq_loop_4096 is IST-DASLab's fasterquant (gptq_torch.py) less its Cholesky preparation;
pack_4096 is compressed-tensors' pack_to_int32 for 4 bits; rtn_4096 and q4_0_4096 are the same
formulas as llmc's, vectorized in PyTorch (llama.cpp's
llama-quantize, the issue's baseline for Q4_0, is not installed on these machines).

Run with LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp (see bench/README.md); the
caller sets OPENBLAS_CORETYPE when OpenBLAS does not recognise the processor.
"""
import argparse
import ctypes
import json
import os
import statistics
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--runs", type=int, default=5)
parser.add_argument("--warmup", type=int, default=2)
args = parser.parse_args()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "BLIS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(args.threads)

import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gptq_torch import Quantizer, fasterquant  # noqa: E402

torch.set_num_threads(args.threads)


def blas_library():
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                if "blas" in line and line.rstrip().endswith(".so.0") or "libblas" in line:
                    return line.split()[-1]
    except OSError:
        pass
    return "unknown"


def openblas_info(path):
    """OpenBLAS's own name for the kernel it chose, and its build configuration (None if not OpenBLAS)."""
    try:
        lib = ctypes.CDLL(path)
        lib.openblas_get_corename.restype = ctypes.c_char_p
        lib.openblas_get_config.restype = ctypes.c_char_p
        return lib.openblas_get_corename().decode(), lib.openblas_get_config().decode()
    except (OSError, AttributeError):
        return None, None


def timed(fn):
    for _ in range(args.warmup):
        fn()
    seconds = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - t0)
    return statistics.median(seconds)


g = torch.Generator().manual_seed(0)
with torch.inference_mode():
    a = torch.randn(2048, 2048, generator=g)
    b = torch.randn(2048, 2048, generator=g)
    probe_a = torch.randn(1024, 1024, generator=g)
    probe = timed(lambda: probe_a @ probe_a)
    gemm = timed(lambda: a @ b)
    # a linear layer: 512 tokens through a 4096 x 4096 float32 weight, y = x W^T
    lx = torch.randn(512, 4096, generator=g)
    lw = torch.randn(4096, 4096, generator=g)
    linear = timed(lambda: torch.nn.functional.linear(lx, lw))
    x = torch.randn(2048, 2048, generator=g)
    xtx = timed(lambda: x.t() @ x)
    n = 4096
    xs = torch.randn(2 * n, n, generator=g)
    h = (xs.t() @ xs) / (2 * n) + torch.eye(n)
    chol = timed(lambda: torch.linalg.cholesky(h))

    def gptq_inverse():
        # IST-DASLab fasterquant: Hinv = cholesky(cholesky_inverse(cholesky(H)), upper=True)
        l = torch.linalg.cholesky(h)
        inv = torch.cholesky_inverse(l)
        return torch.linalg.cholesky(inv, upper=True)

    inverse = timed(gptq_inverse)

    # GPTQ's column loop after the inverse: IST-DASLab fasterquant (bench/gptq_torch.py), 4-bit,
    # group 128, asymmetric, its time less the Cholesky preparation
    lw_gptq = torch.randn(n, n, generator=g)

    def gptq_loop():
        quantizer = Quantizer()
        quantizer.configure(4, perchannel=True, sym=False)
        t0 = time.perf_counter()
        _, _, prep = fasterquant(lw_gptq, h, quantizer, 128)
        return time.perf_counter() - t0 - prep

    for _ in range(min(args.warmup, 1)):
        gptq_loop()
    gptq_loop_seconds = statistics.median(gptq_loop() for _ in range(args.runs))

    w = torch.randn(n, n, generator=g)

    def rtn():
        # 4-bit, group 128, asymmetric (GPTQ's grid): codes uint8, scales and zeros per group
        groups = w.reshape(-1, 128)
        lo = groups.amin(dim=1).clamp(max=0)
        hi = groups.amax(dim=1).clamp(min=0)
        scale = (hi - lo) / 15
        scale = torch.where(scale == 0, torch.ones_like(scale), scale)
        zero = torch.round(-lo / scale)
        codes = torch.clamp(torch.round(groups / scale[:, None]) + zero[:, None], 0, 15)
        return codes.to(torch.uint8), scale.half(), zero.to(torch.int32)

    rtn_seconds = timed(rtn)

    # compressed-tensors' pack_to_int32 for 4 bits: 8 whole codes per int32 word, code i of a word
    # at bits 4 i, the codes being RTN's above ([n][n] uint8)
    codes = rtn()[0].reshape(n, n)

    def pack():
        value = codes.to(torch.int32)
        packed = torch.zeros(n, n // 8, dtype=torch.int32)
        for i in range(8):
            packed |= value[:, i::8] << (4 * i)
        return packed

    pack_seconds = timed(pack)

    def q4_0():
        # llama.cpp's quantize_row_q4_0_ref: d = (signed value of largest |x|) / -8,
        # q = min(15, int(x / d + 8.5)), two codes per byte (j low, j + 16 high) after an f16 d
        blocks = w.reshape(-1, 32)
        idx = blocks.abs().argmax(dim=1, keepdim=True)
        d = blocks.gather(1, idx).squeeze(1) / -8
        inv = torch.where(d == 0, torch.zeros_like(d), 1 / d)
        q = torch.clamp((blocks * inv[:, None] + 8.5).to(torch.int8), max=15).to(torch.uint8)
        packed = q[:, :16] | (q[:, 16:] << 4)
        out = torch.empty(blocks.shape[0], 18, dtype=torch.uint8)
        out[:, :2] = d.half().view(torch.uint8).reshape(-1, 2)
        out[:, 2:] = packed
        return out

    q4_0_seconds = timed(q4_0)

blas = blas_library()
core, config = openblas_info(blas) if "openblas" in blas else (None, None)
print(json.dumps({
    "threads": args.threads,
    "torch": torch.__version__,
    "blas": blas,
    "openblas_core": core,
    "openblas_config": config,
    "probe_gflops": 2 * 1024 ** 3 / probe / 1e9,
    "kernels": {
        "gemm_2048": gemm,
        "linear_512x4096x4096": linear,
        "xtx_2048": xtx,
        "cholesky_4096": chol,
        "gptq_inverse_4096": inverse,
        "gptq_loop_4096": gptq_loop_seconds,
        "rtn_4096": rtn_seconds,
        "pack_4096": pack_seconds,
        "q4_0_4096": q4_0_seconds,
    },
}))
