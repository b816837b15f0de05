"""Mask backends side by side: outlines-core (a token Index per regex) against llguidance (an LLMatcher),
on the embedded model's vocabulary (SmolLM2, 49152 tokens).

    python bench/bench_masks.py [--walks N] [--steps N]

Rows: every content constraint of every shipped spec (specs/*.yaml: model segments other than choices;
regular content, so both backends can take it: llguidance gets the same regex), JSON objects whose fields
are enums of 2, 5, 10 and 20 ids (what per-step data constraints need: a new schema every step), and the
recursive content only llguidance decodes (a nested-expression grammar, a JSON tree), where the
shortest-completion chart (runtime/cfg.py) is timed too.

Columns:
  index ms     outlines: Index(regex, vocabulary) built fresh, no cache (what a new value set costs); the
               Vocabulary made once beforehand
  paths ms     outlines: the IndexPaths table budgets need (a Python reverse BFS over the transitions)
  llg compile  llguidance: LLMatcher(tokenizer, grammar) (lazy: the rest is paid per token)
  first us     per token, the first visit of each state: outlines: the state's allowed ids as a sorted
               numpy array (then cached per state: later visits are a dict lookup, "cached us");
               llguidance: compute_bitmask + unpack to ids (never cached: the matcher is lazy)
  cached us    outlines: the same state again (the decode loop's case after the first episode)
  advance us   llguidance recursive rows: the runtime's GrammarCursor.advance per token (matcher + chart
               + the finish plan checked by the matcher)
Per-token figures are medians over random walks (seeded; each step a uniformly random allowed token).
Timings are wall-clock on whatever machine runs this (``uptime`` is printed); the script exits 0.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f}"


def us(seconds: float) -> str:
    return f"{seconds * 1e6:.0f}"


def bits_to_ids(bitmask: bytes, size: int) -> np.ndarray:
    return np.flatnonzero(np.unpackbits(np.frombuffer(bitmask, dtype=np.uint8), bitorder="little")[:size])


def walks(index, eos: int, count: int, steps: int, seed: int) -> list[list[int]]:
    """Random token walks through an outlines index (uniform among allowed tokens, EOS left out)."""
    rng, found = random.Random(seed), []
    for _ in range(count):
        state, path = index.get_initial_state(), []
        for _ in range(steps):
            allowed = [t for t in index.get_allowed_tokens(state) if t != eos]
            if not allowed:
                break
            token = rng.choice(allowed)
            path.append(token)
            state = index.get_next_state(state, token)
            if index.is_final_state(state) and rng.random() < 0.3:
                break
        found.append(path)
    return found


def outlines_row(regex: str, vocab, outlines_vocab, count: int, steps: int):
    from outlines_core import Index

    from ltlagent.runtime.index import IndexPaths

    started = time.perf_counter()
    index = Index(regex, outlines_vocab)
    built = time.perf_counter()
    IndexPaths.compute(index, vocab.eos_id)
    compile_s = (built - started, time.perf_counter() - built)
    first, cached, cache = [], [], {}
    paths = walks(index, vocab.eos_id, count, steps, 0)
    for path in paths:
        state = index.get_initial_state()
        for token in path:
            t0 = time.perf_counter()
            if state in cache:
                _ = cache[state]
                cached.append(time.perf_counter() - t0)
            else:
                ids = np.sort(np.asarray(index.get_allowed_tokens(state), dtype=np.int64))
                cache[state] = ids[ids != vocab.eos_id]
                first.append(time.perf_counter() - t0)
            state = index.get_next_state(state, token)
    return compile_s, first, cached, paths


def llguidance_row(grammar: str, tokenizer, paths, size: int):
    import llguidance

    started = time.perf_counter()
    matcher = llguidance.LLMatcher(tokenizer, grammar, log_level=0)
    compile_s = time.perf_counter() - started
    if matcher.is_error():
        return compile_s, None, matcher.get_error()
    per = []
    for path in paths:
        matcher.reset()
        for token in path:
            t0 = time.perf_counter()
            bits_to_ids(matcher.compute_bitmask(), size)
            per.append(time.perf_counter() - t0)
            if not matcher.consume_token(token):
                return compile_s, per, f"refused a token outlines allowed: {matcher.get_error()[:80]}"
    return compile_s, per, None


def med(values) -> str:
    return us(statistics.median(values)) if values else "-"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--walks", type=int, default=5)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--runtime-only", action="store_true", help="only the runtime's grammar-constraint rows")
    args = parser.parse_args()

    import llguidance

    import ltlagent
    from ltlagent.runtime.constraints import content_regex
    from ltlagent.runtime.masks import ll_tokenizer
    from ltlagent.runtime.models import load_tokenizer
    from ltlagent.runtime.vocab import Vocab

    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    tok, _, eos = load_tokenizer(None, progress=lambda m: None)
    vocab = Vocab.of_tokenizer(tok, eos[0], eos)
    lltok = ll_tokenizer(vocab)
    size = len(vocab.token_bytes)

    rows = []
    seen = set()
    for path in sorted((REPO / "specs").glob("*.yaml")):
        spec = ltlagent.load(path.read_text())
        for segment in spec.segments:
            if segment.by != "model" or segment.content.kind == "choice":
                continue
            regex = content_regex(segment)
            if regex in seen:
                continue
            seen.add(regex)
            rows.append((f"{path.stem}.{segment.name} ({segment.content.kind})", regex))
    from outlines_core.json_schema import build_regex_from_schema

    enum_schemas = []
    for n in (2, 5, 10, 20):
        ids = [f"#W{1000000 + 7 * i}" for i in range(n)]
        schema = {"type": "object", "properties": {"order_id": {"enum": ids},
                                                   "item_ids": {"type": "array", "items": {"enum": ids[: max(2, n // 2)]}},
                                                   "reason": {"enum": ["no longer needed", "ordered by mistake"]}},
                  "required": ["order_id", "item_ids", "reason"], "additionalProperties": False}
        enum_schemas.append((n, schema))
        regex = " " + build_regex_from_schema(json.dumps(schema), whitespace_pattern=r"[ ]?") + "\n"
        rows.append((f"json enum {n} ids", regex))

    outlines_vocab = None if args.runtime_only else vocab.outlines()
    header = (f"{'content':32} {'states':>6} | {'outl. index ms':>14} {'paths ms':>8} {'first us':>8} {'cached us':>9} | "
              f"{'llg compile ms':>14} {'mask us':>7}  note")
    print(header)
    print("-" * len(header))
    for name, regex in ([] if args.runtime_only else rows):
        compile_o, first, cached, paths = outlines_row(regex, vocab, outlines_vocab, args.walks, args.steps)
        grammar = llguidance.grammar_from("regex", regex)
        compile_l, per, note = llguidance_row(grammar, lltok, paths, size)
        from outlines_core import Index

        states = len(Index(regex, outlines_vocab).get_transitions())
        print(f"{name[:32]:32} {states:>6} | {ms(compile_o[0]):>14} {ms(compile_o[1]):>8} {med(first):>8} {med(cached):>9} | "
              f"{ms(compile_l):>14} {med(per or []):>7}  {note or ''}")

    print()
    print("through the runtime's GrammarConstraint (compile: BNF -> matcher + chart tables + first finish plan)")
    from ltlagent.compiler.cfg import json_bnf, lark_bnf
    from ltlagent.runtime.masks import GrammarConstraint
    from ltlagent.runtime.engines.arrays import NumpyOps

    arith = 'start: expr\n?expr: term (("+"|"*") term)*\n?term: NUMBER | "(" expr ")" | "[" [expr ("," expr)*] "]"\nNUMBER: /[0-9]+/\n%ignore " "\n'
    tree = {"$defs": {"node": {"type": "object", "properties": {"name": {"type": "string"}, "kids": {
        "type": "array", "items": {"$ref": "#/$defs/node"}}}, "required": ["name"]}}, "$ref": "#/$defs/node"}
    print(f"{'content':44} {'compile ms':>10} {'mask us':>8} {'advance us':>10} {'tokens':>6}")
    cases = [("nested expressions (Lark)", lark_bnf(arith, "\n")),
             ("JSON tree ($ref recursion)", json_bnf(json.dumps(tree, sort_keys=True), "\n"))]
    cases += [(f"json enum {n} ids (the runtime's grammar)", json_bnf(json.dumps(schema, sort_keys=True), "\n"))
              for n, schema in enum_schemas]
    for name, bnf in cases:
        started = time.perf_counter()
        constraint = GrammarConstraint(bnf, vocab, NumpyOps())
        compile_s = time.perf_counter() - started
        masks, advances, tokens = [], [], 0
        rng = random.Random(0)
        for _ in range(args.walks):
            cursor = constraint.start()
            for _ in range(args.steps):
                if cursor.done:
                    break
                t0 = time.perf_counter()
                allowed = cursor.allowed(1 << 20)
                masks.append(time.perf_counter() - t0)
                token = int(allowed[rng.randrange(len(allowed))])
                t0 = time.perf_counter()
                ok = cursor.advance(token, 1 << 20)
                advances.append(time.perf_counter() - t0)
                if not ok:
                    cursor.advance(cursor.shortest()[0], 1 << 20)
                tokens += 1
        print(f"{name:44} {ms(compile_s):>10} {med(masks):>8} {med(advances):>10} {tokens:>6}")


if __name__ == "__main__":
    main()
