#!/usr/bin/python3
"""PyTorch baseline for llmc's GPTQ: the Hessian (add_batch) and fasterquant of IST-DASLab/gptq,
timed on random data for the shapes of bench/gptq-vs-pytorch.sh. Prints one JSON object:
{"threads": T, "blas": ..., "shapes": {"ROWSxCOLS": {"hessian_s": median, "gptq_s": median, "prep_s": median}}}.

Run with LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp (see bench/README.md).
"""
import argparse
import json
import os
import statistics
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--runs", type=int, default=3)
parser.add_argument("--samples", type=int, default=2048)
parser.add_argument("--shapes", default="1536x576,4096x4096,11008x4096,4096x11008")
parser.add_argument("--bits", type=int, default=4)
parser.add_argument("--group-size", type=int, default=128)
args = parser.parse_args()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "BLIS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(args.threads)

import torch  # noqa: E402

torch.set_num_threads(args.threads)


def blas_library():
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                if "blas" in line:
                    return line.split()[-1]
    except OSError:
        pass
    return "unknown"


def quantize(x, scale, zero, maxq):
    q = torch.clamp(torch.round(x / scale) + zero, 0, maxq)
    return scale * (q - zero)


def find_params(x, maxq):
    """gptq/quant.py Quantizer.find_params, asymmetric, per row of x."""
    tmp = torch.zeros(x.shape[0])
    xmin = torch.minimum(x.min(1)[0], tmp)
    xmax = torch.maximum(x.max(1)[0], tmp)
    tmp = (xmin == 0) & (xmax == 0)
    xmin[tmp] = -1
    xmax[tmp] = +1
    scale = (xmax - xmin) / maxq
    zero = torch.round(-xmin / scale)
    return scale.unsqueeze(1), zero.unsqueeze(1)


def hessian(inp):
    """add_batch for one batch of rows: H = 2/n X^T X."""
    n = inp.shape[0]
    inp = inp.t().float()
    inp = (2 / n) ** 0.5 * inp
    return inp.matmul(inp.t())


def fasterquant(W, H, bits, groupsize, blocksize=128, percdamp=0.01):
    """gptq/gptq.py GPTQ.fasterquant (no act-order), returning (Q, losses, prep seconds)."""
    W = W.clone().float()
    H = H.clone()
    columns = W.shape[1]
    maxq = 2 ** bits - 1
    scale, zero = find_params(W, maxq)
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    Losses = torch.zeros_like(W)
    Q = torch.zeros_like(W)
    t0 = time.perf_counter()
    damp = percdamp * torch.mean(torch.diag(H))
    diag = torch.arange(columns)
    H[diag, diag] += damp
    H = torch.linalg.cholesky(H)
    H = torch.cholesky_inverse(H)
    H = torch.linalg.cholesky(H, upper=True)
    Hinv = H
    prep = time.perf_counter() - t0
    for i1 in range(0, columns, blocksize):
        i2 = min(i1 + blocksize, columns)
        count = i2 - i1
        W1 = W[:, i1:i2].clone()
        Q1 = torch.zeros_like(W1)
        Err1 = torch.zeros_like(W1)
        Losses1 = torch.zeros_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        for i in range(count):
            w = W1[:, i]
            d = Hinv1[i, i]
            if groupsize != -1 and (i1 + i) % groupsize == 0:
                scale, zero = find_params(W[:, (i1 + i):(i1 + i + groupsize)], maxq)
            q = quantize(w.unsqueeze(1), scale, zero, maxq).flatten()
            Q1[:, i] = q
            Losses1[:, i] = (w - q) ** 2 / d ** 2
            err1 = (w - q) / d
            W1[:, i:] -= err1.unsqueeze(1).matmul(Hinv1[i, i:].unsqueeze(0))
            Err1[:, i] = err1
        Q[:, i1:i2] = Q1
        Losses[:, i1:i2] = Losses1 / 2
        W[:, i2:] -= Err1.matmul(Hinv[i1:i2, i2:])
    return Q, torch.sum(Losses).item(), prep


def main():
    torch.manual_seed(0)
    result = {"threads": args.threads, "torch": torch.__version__, "blas": blas_library(), "shapes": {}}
    for shape in args.shapes.split(","):
        rows, cols = (int(v) for v in shape.split("x"))
        x = torch.randn(args.samples, cols)
        w = torch.randn(rows, cols) * 0.02
        hessian_s, gptq_s, prep_s = [], [], []
        with torch.no_grad():
            for run in range(args.runs):
                t0 = time.perf_counter()
                H = hessian(x)
                hessian_s.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                _, loss, prep = fasterquant(w, H, args.bits, args.group_size)
                gptq_s.append(time.perf_counter() - t0)
                prep_s.append(prep)
                print(f"{shape} run {run}: hessian {hessian_s[-1]:.3f} s, gptq {gptq_s[-1]:.3f} s "
                      f"(cholesky prep {prep:.3f} s), loss {loss:.4g}", file=sys.stderr)
        result["shapes"][shape] = {"hessian_s": statistics.median(hessian_s), "gptq_s": statistics.median(gptq_s),
                                   "prep_s": statistics.median(prep_s)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
