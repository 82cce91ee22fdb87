"""Cloze test of the book's pretrained model on held-out text (chapter 09), written to book/results/.

For each language, every paragraph of the held-out text is cut into windows of at most 126 WordPieces,
15 % of the pieces are replaced by [MASK] (seeded), and the model's top-1 and top-5 accuracy at those
positions is compared with a unigram baseline that always guesses the five most frequent pieces of the
same text (bert_annotated.probing.cloze_evaluation).

    python benchmarks/cloze_eval.py --corpora ../shared/corpora            # the full run (minutes on a CPU)
    python benchmarks/cloze_eval.py --corpora ../shared/corpora --max-windows 50 --output /tmp/cloze.json

English: WikiText-2 test (raw), Chinese: the DRCD passages; neither was in the model's training data.
"""
from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from bert_annotated.checkpoints import book_model_dir
from bert_annotated.corpora import CLOZE_CORPORA
from bert_annotated.probing import cloze_evaluation, cloze_windows, load_book_model

REPOSITORY = Path(__file__).resolve().parents[1]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", type=Path, default=REPOSITORY.parent / "shared" / "corpora",
                        help="the folder holding wikitext-2/ and drcd-contexts/")
    parser.add_argument("--output", type=Path, default=REPOSITORY / "book" / "results" / "cloze-bert-mini-bilingual.json")
    parser.add_argument("--max-windows", type=int, default=None, help="windows per language (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)

    model, tokenizer = load_book_model(device=args.device)
    results = {}
    for language, (relative, read_paragraphs) in CLOZE_CORPORA.items():
        started = time.perf_counter()
        windows = cloze_windows(tokenizer, read_paragraphs(args.corpora / relative), max_windows=args.max_windows,
                                seed=args.seed)
        figures = cloze_evaluation(model, tokenizer, windows, seed=args.seed)
        results[language] = {"corpus": relative, **figures, "seconds": round(time.perf_counter() - started, 1)}
        print(f"{language}: {figures['masked']:,} masked pieces, top-1 {figures['top1']:.1%}, top-5 {figures['top5']:.1%}; "
              f"unigram top-1 {figures['unigram_top1']:.1%}, top-5 {figures['unigram_top5']:.1%}", flush=True)
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} thread(s))"
    record = {
        "model": str(book_model_dir().relative_to(REPOSITORY)) if book_model_dir().is_relative_to(REPOSITORY) else str(book_model_dir()),
        "device": device,
        "command": "python " + " ".join(shlex.quote(arg) for arg in [sys.argv[0], *(argv if argv is not None else sys.argv[1:])]),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "torch": torch.__version__,
        "seed": args.seed,
        "mask_fraction": 0.15,
        "results": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")
    return record


if __name__ == "__main__":
    main()
