"""Engine benchmark: every engine against its own plain generation, mask cost, and ReAct episodes, side by
side in one run.

    python bench/bench_engines.py [--quick]

Engines (the embedded SmolLM2-135M-Instruct on each, THREADS CPU threads, greedy): transformers float32 on
the CPU (today's engine), transformers bfloat16 on the CPU, llama.cpp on the shipped Q4_1 GGUF (when
llama-cpp-python is installed), and transformers bfloat16 on CUDA when a GPU is visible.

1. Tokens/s on one free-text segment (bench_runtime's essay spec, max_tokens 128): our constrained run
   against the same engine's plain generation from exactly the prompt tokens our session was fed
   (transformers: ``model.generate`` with min_new_tokens = max_new_tokens = N; llama.cpp: llama-cpp-python's
   own ``Llama.generate`` at temperature 0, N tokens). plain = (N - 1) / (t(N) - t(1)) (both calls pay the
   same prefill); ours = N / the segment's seconds. Medians of repeats, sides alternated. Targets: ours /
   plain >= 0.95 for transformers, >= 0.9 for llama.cpp.
2. Mask + pick per sampled token (RunResult.mask_seconds: building the allowed-token array, when not cached,
   plus the pick), over every essay run and ReAct episode of the engine: p50 / p99 in µs and the share of
   step time sum(mask) / (sum(mask) + sum(forward)). Targets: p50 < 100 µs, share < 3%.
3. The README's three demo questions as ReAct episodes (specs/react.yaml over specs/docs/demo.jsonl) on
   each engine: wall seconds, model tokens, forward passes, verdict; the speed-up of each engine's episodes
   over transformers float32 (target for llama.cpp >= 2.5x).

Every measurement waits for a quiet machine and records the CPU share other processes used meanwhile
(column busy, see bench_runtime.Busy). The script always exits 0.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# OMP_WAIT_POLICY is left as it is: PASSIVE (what `ltlagent run` sets for torch) would slow llama.cpp in this
# process 3.4x, and the measurements wait for a quiet machine anyway.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench_runtime import (DOCS, ESSAY_SPEC, ESSAY_TASK, QUESTIONS, REACT, THREADS, WAITED,  # noqa: E402
                           busy_text, guarded, measured, ok, pct, quiet_warnings, rule, table)

TARGETS = {"transformers": 0.95, "llamacpp": 0.9}
MASK_P50_US, MASK_SHARE, EPISODE_SPEEDUP = 100.0, 0.03, 2.5


# ------------------------------------------------------------------------------------------ engines


def engines(quick: bool) -> list[tuple[str, object]]:
    """(label, engine) for every engine this machine can run."""
    import torch

    from ltlagent.runtime.engines import EngineOptions, open_engine
    from ltlagent.runtime.engines import llamacpp

    wanted = [("transformers fp32 cpu", EngineOptions(engine="transformers", device="cpu", dtype="float32"))]
    if not quick:
        wanted.append(("transformers bf16 cpu", EngineOptions(engine="transformers", device="cpu", dtype="bfloat16")))
    if llamacpp.available():
        wanted.append(("llama.cpp Q4_1", EngineOptions(engine="llamacpp", device="cpu")))
    else:
        print("llama-cpp-python is not installed (make setup-llamacpp): no llama.cpp rows")
    if torch.cuda.is_available():
        wanted.append(("transformers bf16 cuda", EngineOptions(engine="transformers", device="cuda", dtype="bfloat16")))
    out = []
    for label, options in wanted:
        from dataclasses import replace

        started = time.perf_counter()
        engine = open_engine(replace(options, threads=THREADS), lambda message: None)
        print(f"{label}: loaded in {time.perf_counter() - started:.1f} s ({engine.describe()})")
        out.append((label, engine))
    return out


def runtime_for(engine):
    import tempfile
    from pathlib import Path

    from ltlagent.runtime.agent import Runtime

    return Runtime.for_engine(engine, Path(tempfile.mkdtemp(prefix="ltlagent-bench-")))


# ------------------------------------------------------------------------------ plain generation


def plain_generate(engine, prompt: list[int], n: int) -> tuple[float, list[int]]:
    """Seconds and tokens of the engine's own greedy generation of n tokens after ``prompt``."""
    if engine.name == "llamacpp":
        llama, out = engine.llama, []
        engine.session()  # our session is over; generate() manages the context itself
        started = time.perf_counter()
        for token in llama.generate(prompt, temp=0.0, top_k=1, reset=True):
            out.append(token)
            if len(out) >= n:
                break
        return time.perf_counter() - started, out
    import torch

    model = engine.loaded.model
    ids = torch.tensor([prompt], device=engine.device)
    started = time.perf_counter()
    with torch.inference_mode():
        generated = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, min_new_tokens=n,
                                   do_sample=False, pad_token_id=engine.vocab.eos_id)
    if engine.device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started, generated[0, len(prompt):].tolist()


def essay_run(engine, decoder, compiled):
    from ltlagent.runtime.adversarial import Recording
    from ltlagent.runtime.agent import prompt_text
    from ltlagent.runtime.engines import Sampling
    from ltlagent.runtime.environment import Environment

    session, mark = Recording(engine.session()), {}

    def on_event(kind, payload):
        if kind == "segment_start" and payload.name == "essay":
            mark["start"] = len(session.fed)

    result = decoder.run(session, engine.ops.sampler(Sampling()), Environment(ESSAY_TASK),
                         prompt_text(compiled.spec), on_event)
    return result, session.fed[:mark["start"]], session.fed[mark["start"]:]


def bench_tokens(label, engine, repeats: int, masks: list) -> dict:
    import ltlagent

    compiled = ltlagent.compile(ltlagent.load(ESSAY_SPEC))
    decoder = runtime_for(engine).decoder(compiled)
    result, prompt, _ = essay_run(engine, decoder, compiled)  # warm-up; greedy: the same prompt every time
    n = result.segments[-1].tokens
    plain_generate(engine, prompt, 2)
    ours, plain, rows = [], [], []
    for rep in range(repeats):
        def one():
            first = rep % 2 == 1
            if first:
                t_n, plain_ids = plain_generate(engine, prompt, n)
                t_1, _ = plain_generate(engine, prompt, 1)
            run = essay_run(engine, decoder, compiled)
            if not first:
                t_n, plain_ids = plain_generate(engine, prompt, n)
                t_1, _ = plain_generate(engine, prompt, 1)
            return run, t_n, t_1, plain_ids

        ((run, _, ids), t_n, t_1, plain_ids), share = measured(one)
        masks.append(run)
        record = run.segments[-1]
        o, p = record.tokens / record.seconds, (n - 1) / max(t_n - t_1, 1e-9)
        ours.append(o)
        plain.append(p)
        same = next((i for i, (a, b) in enumerate(zip(ids, plain_ids)) if a != b), min(len(ids), len(plain_ids)))
        rows.append([label, str(rep + 1), str(len(prompt)), str(record.tokens), f"{o:.1f}", f"{p:.1f}",
                     f"{o / p:.3f}", str(same), busy_text(share)])
    o, p = statistics.median(ours), statistics.median(plain)
    return {"rows": rows, "ours": o, "plain": p, "ratio": o / p}


# ------------------------------------------------------------------------------------- episodes


def react_episodes(engine) -> list:
    import ltlagent
    from ltlagent.runtime.agent import Agent
    from ltlagent.runtime.tools import DocStore, ToolBox
    from ltlagent.runtime.trace import verdict

    compiled = ltlagent.compile(ltlagent.load(REACT))
    agent = Agent(compiled, engine, runtime_for(engine), "completion")  # as measured in the README (the default is chat)
    store = DocStore.from_jsonl(DOCS)
    agent.run(QUESTIONS[0], ToolBox.for_spec(compiled.spec, docs=store))  # warm-up: indexes, first calls
    out = []
    for question in QUESTIONS:
        def episode():
            started = time.perf_counter()
            result = agent.run(question, ToolBox.for_spec(compiled.spec, docs=store))
            return result, time.perf_counter() - started

        (result, wall), share = measured(episode)
        out.append({"question": question, "result": result, "wall": wall, "busy": share,
                    "satisfied": verdict(compiled, result)["satisfied"]})
    return out


# ------------------------------------------------------------------------------------------ main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fp32 and llama.cpp only, 2 repeats")
    args = parser.parse_args()
    quiet_warnings()
    import torch

    torch.set_num_threads(THREADS)
    began = time.perf_counter()
    print(f"bench_engines: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start, "
          f"threads {THREADS}, torch {torch.__version__}")
    found = engines(args.quick)
    repeats = 2 if args.quick else 4

    rule("1. Tokens/s on one free-text segment: ours (constrained) vs the same engine's plain generation")
    tokens, masks = {}, {label: [] for label, _ in found}
    for label, engine in found:
        tokens[label] = bench_tokens(label, engine, repeats, masks[label])
    table(["engine", "rep", "prompt tok", "N", "ours tok/s", "plain tok/s", "ratio", "same first", "busy"],
          [row for t in tokens.values() for row in t["rows"]])
    for (label, engine) in found:
        t, target = tokens[label], TARGETS.get(engine.name, 0.95)
        print(f"{label}: median ours {t['ours']:.1f} tok/s, plain {t['plain']:.1f} tok/s, ratio {t['ratio']:.3f} "
              f"{ok(t['ratio'] >= target)} (target >= {target})")

    rule("3. ReAct episodes on the README's demo questions (greedy, specs/react.yaml, demo document store)")
    episodes = {label: react_episodes(engine) for label, engine in found}
    rows = []
    for label, runs in episodes.items():
        for e in runs:
            r = e["result"]
            rows.append([label, e["question"][:38], f"{e['wall']:.2f}", str(r.model_tokens), str(r.forward_passes),
                         str(len(r.segments)), "yes" if e["satisfied"] else "NO", busy_text(e["busy"])])
            masks[label].append(r)
    table(["engine", "question", "wall s", "model tok", "forward", "segments", "satisfied", "busy"], rows, left=2)
    base = sum(e["wall"] for e in episodes[found[0][0]])
    for label, engine in found:
        total = sum(e["wall"] for e in episodes[label])
        toks = sum(e["result"].model_tokens for e in episodes[label])
        speedup = base / total
        verdict = f" {ok(speedup >= EPISODE_SPEEDUP)} (target >= {EPISODE_SPEEDUP})" if engine.name == "llamacpp" else ""
        print(f"{label}: {total:.2f} s for the 3 episodes, {toks} model tokens, {toks / total:.1f} tok/s; "
              f"speed-up over {found[0][0]} {speedup:.2f}x{verdict}")

    rule("2. Mask + pick per sampled token, over every run above (essay runs and ReAct episodes)")
    rows = []
    for label, runs in masks.items():
        mask = [s for r in runs for s in r.mask_seconds]
        forward = [s for r in runs for s in r.forward_seconds]
        share = sum(mask) / (sum(mask) + sum(forward))
        p50, p99 = pct(mask, 0.5) * 1e6, pct(mask, 0.99) * 1e6
        rows.append([label, str(len(mask)), f"{p50:.0f}", f"{p99:.0f}", f"{1e3 * statistics.median(forward):.1f}",
                     f"{100 * share:.2f}%", f"{ok(p50 < MASK_P50_US)} {ok(share < MASK_SHARE)}"])
    table(["engine", "picks", "p50 µs", "p99 µs", "forward p50 ms", "share of step", "targets"], rows)
    print(f"targets: p50 < {MASK_P50_US:.0f} µs, share < {100 * MASK_SHARE:.0f}%")
    if not torch.cuda.is_available():
        print("\nNo GPU visible here: no CUDA rows (run this script on a GPU machine for them).")
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end; waited {WAITED[0]:.0f} s for a quiet machine; "
          f"total {time.perf_counter() - began:.0f} s")
    return 0


if __name__ == "__main__":
    guarded(main)
