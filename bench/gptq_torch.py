"""GPTQ in PyTorch as the IST-DASLab/gptq repository writes it (quant.py's Quantizer, gptq.py's
fasterquant), shared by the two PyTorch baselines: gptq_reference.py (one matrix) and
gptq_pipeline_reference.py (the layer-sequential walk)."""

import time

import torch


def quantize(x, scale, zero, maxq):
    q = torch.clamp(torch.round(x / scale) + zero, 0, maxq)
    return scale * (q - zero)


class Quantizer:
    def __init__(self):
        self.maxq = 0
        self.scale = torch.zeros(1)
        self.zero = torch.zeros(1)

    def configure(self, bits, perchannel=True, sym=True):
        self.maxq = 2 ** bits - 1
        self.perchannel = perchannel
        self.sym = sym

    def find_params(self, x, weight=True):
        shape = x.shape
        if self.perchannel:
            x = x.flatten(1)  # weight rows
        else:
            x = x.flatten().unsqueeze(0)
        tmp = torch.zeros(x.shape[0])
        xmin = torch.minimum(x.min(1)[0], tmp)
        xmax = torch.maximum(x.max(1)[0], tmp)
        if self.sym:
            xmax = torch.maximum(torch.abs(xmin), xmax)
            tmp = xmin < 0
            if torch.any(tmp):
                xmin[tmp] = -xmax[tmp]
        tmp = (xmin == 0) & (xmax == 0)
        xmin[tmp] = -1
        xmax[tmp] = +1
        self.scale = (xmax - xmin) / self.maxq
        if self.sym:
            self.zero = torch.full_like(self.scale, (self.maxq + 1) / 2)
        else:
            self.zero = torch.round(-xmin / self.scale)
        if not self.perchannel:
            self.scale = self.scale.repeat(shape[0])
            self.zero = self.zero.repeat(shape[0])
        self.scale = self.scale.reshape(-1, 1)
        self.zero = self.zero.reshape(-1, 1)

    def ready(self):
        return bool(torch.all(self.scale != 0))


def fasterquant(W, H, quantizer, groupsize=-1, blocksize=128, percdamp=.01):
    """gptq.py GPTQ.fasterquant without act-order: returns (Q, loss, seconds of the Cholesky preparation).
    The group's scales come from W as it stands outside the current block (the repository's convention)."""
    W = W.clone().float()
    H = H.clone()
    columns = W.shape[1]
    if not quantizer.ready():
        quantizer.find_params(W, weight=True)

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

            if groupsize != -1:
                # As in the repository: the group's scales come from W, which holds the
                # updates of earlier blocks but not those made inside the current block.
                if (i1 + i) % groupsize == 0:
                    quantizer.find_params(W[:, (i1 + i):(i1 + i + groupsize)], weight=True)

            q = quantize(w.unsqueeze(1), quantizer.scale, quantizer.zero,
                         quantizer.maxq).flatten()
            Q1[:, i] = q
            Losses1[:, i] = (w - q) ** 2 / d ** 2

            err1 = (w - q) / d
            W1[:, i:] -= err1.unsqueeze(1).matmul(Hinv1[i, i:].unsqueeze(0))
            Err1[:, i] = err1

        Q[:, i1:i2] = Q1
        Losses[:, i1:i2] = Losses1 / 2

        W[:, i2:] -= Err1.matmul(Hinv[i1:i2, i2:])

    return Q, torch.sum(Losses).item(), prep
