"""Serving benchmark: many episodes at once on a vLLM server, beside the local engines, in one run.

    python bench/bench_serving.py [--url http://127.0.0.1:8011/v1] [--items 16] [--quick]

Without --url a vLLM CPU server on the embedded model is started (scripts/vllm_server.sh, port 8013) and
stopped by its PID at the end. Items: the first N HotpotQA items of ../shared/data, each with its own
paragraphs as the document store; spec specs/react.yaml; greedy.

1. Raw engine throughput: one plain 128-token completion alone, and 8 at once (tok/s), the server's
   ceiling without ltlagent.
2. Items per minute and model tokens/s over the same items at concurrency 1, 2, 4, 8 on the vllm engine
   (a thread pool of episodes, as ``ltlagent eval --concurrency N`` runs them), the openai engine at 8,
   and the local engines one episode at a time (llama.cpp when installed, transformers float32).
   Target: >= 2.5x items/min at concurrency 8 over concurrency 1 on vllm. Every run is re-checked by the
   verdict (column sat).
3. Prefix cache: prompt tokens sent per episode, how many the server served from its cache, and so how
   many it computed.
4. Requests: per-request latency (p50) and requests per episode; one episode's wall time against one
   request generating as many tokens, which is what a single whole-episode request could at best save.

The load average is printed before each measurement (the server is another process, so the CPU share of
"other processes" does not apply here). The script always exits 0.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench_runtime import guarded, quiet_warnings, rule, table  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "hotpotqa_distractor_dev70.jsonl"
PORT = "8013"
SPEEDUP_TARGET = 2.5


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "?"


def start_server() -> str:
    env = {**os.environ, "PORT": PORT, "VLLM_STATE": str(REPO / ".vllm" / "bench"),
           "VLLM_ARGS": "--enable-prompt-tokens-details"}
    started = time.perf_counter()
    done = subprocess.run(["bash", str(REPO / "scripts" / "vllm_server.sh"), "start"], env=env, cwd=REPO,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the vLLM server did not start:\n{done.stderr[-2000:]}")
    print(f"vLLM server started in {time.perf_counter() - started:.0f} s")
    return done.stdout.strip().splitlines()[-1]


def stop_server() -> None:
    env = {**os.environ, "VLLM_STATE": str(REPO / ".vllm" / "bench")}
    subprocess.run(["bash", str(REPO / "scripts" / "vllm_server.sh"), "stop"], env=env, cwd=REPO)


def items(n: int) -> list[dict]:
    with open(DATA, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()][:n]


def raw_throughput(url: str, model: str) -> list[list[str]]:
    """tok/s of plain completions: one alone, then 8 at once."""
    from ltlagent.runtime.engines.http import Client

    client = Client(url)
    body = {"model": model, "prompt": "Write a long story about a lighthouse keeper.", "max_tokens": 128,
            "temperature": 0.0, "ignore_eos": True}
    rows = []
    for n in (1, 8):
        print(f"  raw, {n} at once (load {load()})")
        started = time.perf_counter()
        with ThreadPoolExecutor(n) as pool:
            answers = list(pool.map(lambda _: client.post("/completions", body), range(n)))
        wall = time.perf_counter() - started
        tokens = sum(a["usage"]["completion_tokens"] for a in answers)
        rows.append([f"{n} plain completion(s) of 128 tokens", f"{wall:.2f}", str(tokens), f"{tokens / wall:.1f}"])
    return rows


def episodes(agent, batch: list[dict], concurrency: int) -> dict:
    """Run every item's episode, ``concurrency`` at once; the wall time and the runs."""
    from ltlagent.runtime.tools import DocStore, ToolBox
    from ltlagent.runtime.trace import verdict

    def one(item):
        toolbox = ToolBox.for_spec(agent.compiled.spec, docs=DocStore.from_context(item["context"]),
                                   builtins=("search", "lookup", "calculator"))
        return agent.run(item["question"], toolbox)

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        runs = list(pool.map(one, batch))
    wall = time.perf_counter() - started
    return {"wall": wall, "runs": runs, "satisfied": sum(verdict(agent.compiled, r)["satisfied"] for r in runs)}


def row(label: str, concurrency: int, result: dict, n: int) -> list[str]:
    tokens = sum(r.model_tokens for r in result["runs"])
    return [label, str(concurrency), f"{result['wall']:.1f}", f"{60 * n / result['wall']:.1f}",
            f"{tokens / result['wall']:.1f}", f"{result['satisfied']}/{n}"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", help="a running vLLM server (default: start one)")
    parser.add_argument("--items", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="4 items, concurrency 1 and 4, no local engines")
    args = parser.parse_args()
    quiet_warnings()
    import ltlagent
    from ltlagent.runtime.agent import Agent
    from ltlagent.runtime.engines import EngineOptions
    from ltlagent.runtime.engines import llamacpp

    if not DATA.exists():
        print(f"no data at {DATA}: this benchmark needs ../shared/data")
        return 0
    n = 4 if args.quick else args.items
    levels = (1, 4) if args.quick else (1, 2, 4, 8)
    url = args.url or start_server()
    try:
        compiled = ltlagent.compile(ltlagent.load(REPO / "specs" / "react.yaml"))
        batch = items(n)
        # completion prompts, as measured in the README (the default prompt format is chat)
        vllm = Agent.load(compiled, EngineOptions(engine="vllm", urls=(url,)), prompt_format="completion")
        print(f"machine: {os.cpu_count()} CPUs, load {load()}; server {url} serving {vllm.engine.served_name}")
        rule("1. raw engine throughput (no ltlagent)")
        table(["requests", "wall s", "tokens", "tok/s"], raw_throughput(url, vllm.engine.served_name))

        rule(f"2. {n} HotpotQA items, specs/react.yaml, greedy: items per minute")
        rows, results = [], {}
        episodes(vllm, batch[:2], 2)  # warm: the server compiles each content regex once
        for c in levels:
            print(f"  vllm, concurrency {c} (load {load()})")
            results[c] = episodes(vllm, batch, c)
            rows.append(row("vllm", c, results[c], n))
        openai = Agent.load(compiled, EngineOptions(engine="openai", urls=(url,)), prompt_format="completion")
        print(f"  openai, concurrency {levels[-1]} (load {load()})")
        free = episodes(openai, batch, levels[-1])
        rows.append(row("openai (checked, no grammar)", levels[-1], free, n))
        retries = sum(r.engine["retries"] for r in free["runs"])
        completed = sum(r.engine["completed"] for r in free["runs"])
        if not args.quick:
            local = [("transformers fp32 cpu", EngineOptions(engine="transformers", device="cpu", dtype="float32"))]
            if llamacpp.available():
                local.insert(0, ("llama.cpp Q4_1", EngineOptions(engine="llamacpp")))
            for label, options in local:
                agent = Agent.load(compiled, options, prompt_format="completion")
                print(f"  {label} (load {load()})")
                rows.append(row(label, 1, episodes(agent, batch, 1), n))
                del agent
        table(["engine", "concurrency", "wall s", "items/min", "model tok/s", "sat"], rows)
        speedup = results[levels[-1]]["wall"] and results[1]["wall"] / results[levels[-1]]["wall"]
        print(f"vllm items/min at concurrency {levels[-1]} over 1: {speedup:.2f}x (target >= {SPEEDUP_TARGET}x: "
              f"{'met' if speedup >= SPEEDUP_TARGET else 'NOT met'})")
        print(f"openai engine: {retries} resampled answers, {completed} completed by the client over {n} episodes")

        rule("3. prefix cache (vllm, concurrency 1): prompt tokens per episode")
        runs = results[1]["runs"]
        sent = [r.engine["prompt_tokens"] for r in runs]
        cached = [r.engine["cached_prompt_tokens"] or 0 for r in runs]
        table(["", "mean per episode", "total"],
              [["prompt tokens sent", f"{statistics.mean(sent):.0f}", str(sum(sent))],
               ["served from the prefix cache", f"{statistics.mean(cached):.0f}", str(sum(cached))],
               ["computed by the server", f"{statistics.mean(sent) - statistics.mean(cached):.0f}",
                str(sum(sent) - sum(cached))],
               ["model tokens written", f"{statistics.mean(r.model_tokens for r in runs):.0f}",
                str(sum(r.model_tokens for r in runs))]])
        print(f"cache hit rate: {sum(cached) / max(1, sum(sent)):.1%}")

        rule("4. requests (vllm, concurrency 1)")
        latencies = sorted(s for r in runs for s in r.forward_seconds)
        requests = [r.engine["requests"] for r in runs]
        tokens = int(statistics.mean(r.model_tokens for r in runs))
        from ltlagent.runtime.engines.http import Client

        body = {"model": vllm.engine.served_name, "prompt": "Question: what?\n", "max_tokens": tokens,
                "temperature": 0.0, "ignore_eos": True}
        started = time.perf_counter()
        Client(url).post("/completions", body)
        single = time.perf_counter() - started
        mean_wall = statistics.mean(r.seconds for r in runs)
        table(["", "value"],
              [["requests per episode (mean)", f"{statistics.mean(requests):.1f}"],
               ["request latency p50 / p90 (ms)",
                f"{1000 * latencies[len(latencies) // 2]:.0f} / {1000 * latencies[int(len(latencies) * 0.9)]:.0f}"],
               ["episode wall (mean, s)", f"{mean_wall:.2f}"],
               [f"one request writing {tokens} tokens (s)", f"{single:.2f}"],
               ["episode / one request", f"{mean_wall / single:.2f}x"]])
    finally:
        if not args.url:
            stop_server()
    return 0


if __name__ == "__main__":
    guarded(main)
