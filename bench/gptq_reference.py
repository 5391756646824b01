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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gptq_torch import Quantizer, fasterquant  # noqa: E402

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


def hessian(inp):
    """add_batch for one batch of rows: H = 2/n X^T X."""
    n = inp.shape[0]
    inp = inp.t().float()
    inp = (2 / n) ** 0.5 * inp
    return inp.matmul(inp.t())


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
                quantizer = Quantizer()
                quantizer.configure(args.bits, perchannel=True, sym=False)
                _, loss, prep = fasterquant(w, H, quantizer, args.group_size)
                gptq_s.append(time.perf_counter() - t0)
                prep_s.append(prep)
                print(f"{shape} run {run}: hessian {hessian_s[-1]:.3f} s, gptq {gptq_s[-1]:.3f} s "
                      f"(cholesky prep {prep:.3f} s), loss {loss:.4g}", file=sys.stderr)
        result["shapes"][shape] = {"hessian_s": statistics.median(hessian_s), "gptq_s": statistics.median(gptq_s),
                                   "prep_s": statistics.median(prep_s)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
