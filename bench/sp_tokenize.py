#!/usr/bin/python3
"""Tokenize a .jsonl (one document per line, text in a field) or .txt file with a SentencePiece
model, P1 style: BOS in front of every document, no EOS, all documents concatenated into one
stream. Writes the ids, whitespace-separated, to OUT.

Needs Debian's python3-sentencepiece (apt-get install -y python3-sentencepiece); run with
/usr/bin/python3.

  /usr/bin/python3 bench/sp_tokenize.py TOKENIZER.model DATA.jsonl OUT.txt [--field text] [--bos 1]
"""

import argparse
import json
import sys

import sentencepiece as spm


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("data")
    ap.add_argument("out")
    ap.add_argument("--field", default="text")
    ap.add_argument("--bos", type=int, default=None, help="BOS id (default: the model's bos_id)")
    args = ap.parse_args()

    sp = spm.SentencePieceProcessor(model_file=args.model)
    bos = sp.bos_id() if args.bos is None else args.bos
    if args.data.endswith(".jsonl"):
        docs = []
        with open(args.data, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    docs.append(json.loads(line)[args.field])
    else:
        with open(args.data, encoding="utf-8") as f:
            docs = [f.read()]
    ids = []
    for d in docs:
        ids.append(bos)
        ids.extend(sp.encode(d))
    with open(args.out, "w") as f:
        f.write(" ".join(map(str, ids)))
        f.write("\n")
    print("%d documents, %d tokens -> %s" % (len(docs), len(ids), args.out), file=sys.stderr)


if __name__ == "__main__":
    main()
