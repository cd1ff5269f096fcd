"""mmbench vs lmms-eval 0.7.3 (``llava_hf``) on easy-VQA questions with a realistic-size LLaVA,
side by side: the same checkpoint, questions, prompts and greedy settings, interleaved runs,
identical generated strings asserted.

    /work/venvs/lmms-eval/bin/python benchmarks/vs_lmms_eval.py                  # 50 images (~480 questions)
    /work/venvs/lmms-eval/bin/python benchmarks/vs_lmms_eval.py --images 5 --rounds 1   # quick (~50 questions)

Runs in the lmms-eval venv (``bash benchmarks/install_peers.sh lmms-eval``), where mmbench is
installed from this checkout (editable), so both harnesses run on one interpreter, one torch
and one transformers.  Each side is its own CLI in a fresh process:

* lmms-eval: ``python -m lmms_eval --model llava_hf --model_args
  pretrained=<dir>,device=cpu,device_map=cpu --tasks vs_easyvqa --include_path <dir> --batch_size 1 --log_samples`` (``llava_hf``
  asserts batch size 1), with a local task (``vs_easyvqa.yaml`` + ``utils.py``, written by
  this script) over the same questions (``device_map=cpu``: its default ``""`` is refused by
  transformers 5's ``from_pretrained``);
* mmbench: ``python -m mmbench eval --model <dir> --tasks vs_easyvqa --include <dir>
  --batch-size auto --no-cache``, everything else at its defaults (prefix reuse included).

The model: ``LlavaForConditionalGeneration`` from a config with random weights (seed 0): a
CLIP ViT-B/16 vision tower at 224 px (12 layers, hidden 768; 196 image tokens, the CLS
feature dropped), a 2-layer projector, and a Llama of 134M parameters (hidden 768, 12
layers, 12 heads, MLP 2,048, 32,000-entry byte-level BPE vocabulary, untied head): 221M
parameters.  The Llama's weights are drawn with standard deviation 0.1 instead of the
default 0.02: at 0.02 a random Llama repeats one token chosen mostly by the image ("uol uol
uol ..." for every question on an image), which makes the equal-outputs check weak; at 0.1
the 8 tokens differ between questions.  ``generation_config.json`` sets ``min_new_tokens = 8``, and both harnesses ask
for 8 new tokens greedily, so every question generates exactly 8 tokens.  The chat template
renders "USER: <image>\\n{prompt} ASSISTANT:" whether the user turn is a string (lmms-eval)
or a list of parts (mmbench), so both tokenize the same prompt (about 227 tokens).

The data: every question of the first ``--images`` easy-VQA test images (the ``easy-vqa``
package's 64x64 PNGs and questions, about 10 per image), prompted with the built-in
``easyvqa_vqa`` task's prompt ("{question}\\nAnswer the question using a single word.").

What lmms-eval needs besides its own install: ``decord`` (its ``llava_hf`` module imports it at
the top; ``install_peers.sh`` installs it) and the local task above; nothing in lmms-eval is
patched.

Speed is samples (questions) per second of wall time of the whole command (start-up, model
load, data, generation, scoring); mmbench's model-loop rate (``timing.inference_s``) is
printed beside it.  Order per round: lmms-eval, mmbench; the best of ``--rounds`` per side
is kept and each round's ratio printed.  Every question's generated string (stripped of
surrounding spaces: mmbench strips, lmms-eval does not) must be equal on both sides.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
TASK = "vs_easyvqa"

#: LLaVA-1.5 style; the user turn may be a string ("<image>\n..." already in it, as lmms-eval
#: sends it) or a list of image/text parts (as mmbench sends it): both render the same text
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'user' %}USER: {% else %}ASSISTANT: {% endif %}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<image>\n"
    "{% else %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{% if message['role'] == 'user' %} {% else %}{{ eos_token }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)


def build_llava(path: Path, *, new_tokens: int, vocab_size: int = 32000) -> int:
    """Save the random-weight LLaVA (seed 0) and its processor to ``path``; return its parameter count."""
    import torch
    import transformers
    from transformers import LlamaConfig, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor

    from harness_overhead import padded_bpe_tokenizer

    _repo_tests_package()
    tokenizer = padded_bpe_tokenizer(vocab_size, ("<image>",), bos_token="<s>", eos_token="</s>",
                                     pad_token="<pad>", unk_token="<unk>")
    tokenizer.chat_template = CHAT_TEMPLATE
    text = LlamaConfig(vocab_size=len(tokenizer), hidden_size=768, intermediate_size=2048, num_hidden_layers=12,
                       num_attention_heads=12, num_key_value_heads=12, max_position_embeddings=2048,
                       bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                       pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False,
                       initializer_range=0.1)  # see the module docstring
    vision = dict(model_type="clip_vision_model", hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                  num_attention_heads=12, image_size=224, patch_size=16, projection_dim=512)
    config = LlavaConfig(vision_config=vision, text_config=text,
                         image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
                         vision_feature_select_strategy="default", vision_feature_layer=-2,
                         pad_token_id=tokenizer.pad_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = LlavaForConditionalGeneration(config).eval()
    gen = model.generation_config
    gen.bos_token_id, gen.eos_token_id = tokenizer.bos_token_id, tokenizer.eos_token_id
    gen.pad_token_id = tokenizer.pad_token_id
    gen.min_new_tokens = new_tokens  # never stop early: both sides generate the same number of tokens
    image_cls = getattr(transformers, "CLIPImageProcessorPil", None) or transformers.CLIPImageProcessor
    image_processor = image_cls(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224})
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=16,
                               vision_feature_select_strategy="default", num_additional_image_tokens=1,
                               chat_template=CHAT_TEMPLATE)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return sum(p.numel() for p in model.parameters())


def _repo_tests_package() -> None:
    """Make ``tests`` this checkout's test folder (it has no ``__init__.py``): lmms-eval pulls in
    latex2sympy2, which installs a top-level ``tests`` package, and a regular package found
    anywhere on ``sys.path`` wins over a namespace folder, so ``tests.fixtures`` (the offline
    tokenizer builder) would not be found."""
    import types

    pkg = types.ModuleType("tests")
    pkg.__path__ = [str(REPO / "tests")]
    sys.modules["tests"] = pkg


def write_data(work: Path, n_images: int, new_tokens: int) -> tuple[list[dict], str]:
    """The questions of the first ``n_images`` easy-VQA test images; both harnesses' task files."""
    import yaml

    sys.path.insert(0, str(REPO))
    from mmbench.tasks.datasets.easyvqa_questions import question_rows

    rows = question_rows("test")
    images = list(dict.fromkeys(r["image"] for r in rows))[:n_images]
    keep = set(images)
    rows = [r for r in rows if r["image"] in keep]
    data = work / "questions.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    builtin = yaml.safe_load((REPO / "tasks/vqa/easyvqa_vqa.yaml").read_text())
    prompt = builtin["prompt"]
    tasks = work / "tasks"
    tasks.mkdir(exist_ok=True)
    (tasks / f"{TASK}.yaml").write_text(yaml.safe_dump({  # mmbench's task: the built-in's prompt and columns
        "name": TASK, "family": "vqa", "description": f"easy-VQA test, all questions of {n_images} images",
        "dataset": {"path": "json", "data_files": str(data), "split": "train",
                    "columns": builtin["dataset"]["columns"]},
        "prompt": prompt, "generation": {"max_new_tokens": new_tokens}, "metrics": builtin["metrics"]}))
    peer = work / "lmms_tasks"
    peer.mkdir(exist_ok=True)
    (peer / f"{TASK}.yaml").write_text(textwrap.dedent(f"""\
        task: {TASK}
        dataset_path: json
        dataset_kwargs:
          data_files: {{test: "{data}"}}
        test_split: test
        output_type: generate_until
        doc_to_visual: !function utils.doc_to_visual
        doc_to_text: !function utils.doc_to_text
        doc_to_target: answer
        generation_kwargs:
          max_new_tokens: {new_tokens}
          temperature: 0
          num_beams: 1
          do_sample: false
        metric_list:
          - metric: exact_match
            aggregation: mean
            higher_is_better: true
        metadata:
          - version: 0.0
    """))
    (peer / "utils.py").write_text(textwrap.dedent(f"""\
        from PIL import Image

        PROMPT = {prompt!r}  # the built-in easyvqa_vqa task's prompt


        def doc_to_visual(doc):
            return [Image.open(doc["image"]).convert("RGB")]


        def doc_to_text(doc, lmms_eval_specific_kwargs=None):
            return PROMPT.format(question=doc["question"])
    """))
    return rows, prompt


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def _timed(cmd: list[str], log: Path, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    with log.open("w") as fh:
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=log.parent)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} ... failed (exit {proc.returncode}); its output: {log}\n"
                         + log.read_text()[-3000:])
    return wall


def run_peer(work: Path, ckpt: Path, tag: str, rows: list[dict]) -> dict:
    out = work / f"lmms_{tag}"
    cmd = [sys.executable, "-m", "lmms_eval", "--model", "llava_hf", "--model_args",
           f"pretrained={ckpt},device=cpu,device_map=cpu", "--tasks", TASK, "--include_path", str(work / "lmms_tasks"),
           "--batch_size", "1", "--output_path", str(out), "--log_samples"]
    wall = _timed(cmd, work / f"lmms_{tag}.log", _env())
    files = sorted(out.rglob(f"*samples_{TASK}*.jsonl"))
    if not files:
        raise SystemExit(f"lmms-eval wrote no samples file under {out}")
    outputs = {}
    for line in files[-1].read_text().splitlines():  # doc_id: the row's index in the task's data file
        row = json.loads(line)
        resp = row.get("resps", row.get("filtered_resps"))  # lmms-eval drops "resps" when equal to the filtered one
        while isinstance(resp, list):
            resp = resp[0]
        outputs[str(rows[row["doc_id"]]["question_id"])] = resp.strip()
    # lmms-eval's own model-loop time ("Metric summary - Total elapsed time: 272.372s")
    found = re.findall(r"Total elapsed time: ([0-9.]+)s", (work / f"lmms_{tag}.log").read_text())
    return {"wall": wall, "outputs": outputs, "loop_s": float(found[-1]) if found else None}


def run_mmbench(work: Path, ckpt: Path, tag: str, batch_size: str) -> dict:
    out = work / f"mmbench_{tag}"
    cmd = [sys.executable, "-m", "mmbench", "eval", "--model", str(ckpt), "--tasks", TASK,
           "--include", str(work / "tasks"), "--batch-size", batch_size, "--no-cache", "--output", str(out)]
    wall = _timed(cmd, work / f"mmbench_{tag}.log", _env())
    res = json.loads((out / "results.json").read_text())
    entry = res["tasks"][TASK]
    outputs = {}
    for line in (out / entry["predictions"]).read_text().splitlines():
        row = json.loads(line)
        outputs[str(row["id"])] = (row.get("raw_output") or "").strip()
    return {"wall": wall, "outputs": outputs, "inference_s": entry["timing"].get("inference_s"),
            "batch_size": entry.get("batch_size"), "prefix_reuse": res["model"].get("prefix_reuse")}


def prompt_lengths(ckpt: Path, rows: list[dict], prompt: str) -> tuple[float, int, int]:
    """Mean, min and max prompt length in tokens (image tokens included), as the processor makes them."""
    from PIL import Image
    from transformers import AutoProcessor

    proc = AutoProcessor.from_pretrained(ckpt)
    image = Image.open(rows[0]["image"]).convert("RGB")
    lengths = []
    for row in rows:
        msgs = [{"role": "user", "content": [{"type": "image"},
                                             {"type": "text", "text": prompt.format(question=row["question"])}]}]
        text = proc.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
        lengths.append(int(proc(text=[text], images=[image], return_tensors="pt")["input_ids"].shape[1]))
    return sum(lengths) / len(lengths), min(lengths), max(lengths)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=50, help="easy-VQA test images; all their questions are asked")
    parser.add_argument("--new-tokens", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--mmbench-batch-size", default="auto")
    parser.add_argument("--workdir", help="keep the checkpoint, tasks and run folders here (default: a temp dir)")
    args = parser.parse_args()
    try:
        import lmms_eval  # noqa: F401
    except ImportError as exc:
        raise SystemExit(f"{exc}: run this with the lmms-eval venv's python "
                         "(bash benchmarks/install_peers.sh lmms-eval)") from None
    import torch
    import transformers

    tmp = tempfile.TemporaryDirectory(prefix="mmbench-vs-lmms-")
    work = Path(args.workdir or tmp.name).resolve()
    work.mkdir(parents=True, exist_ok=True)
    ckpt = work / "llava-221m"
    n_params = build_llava(ckpt, new_tokens=args.new_tokens)
    rows, prompt = write_data(work, args.images, args.new_tokens)
    mean_len, min_len, max_len = prompt_lengths(ckpt, rows, prompt)
    print(f"LLaVA (CLIP ViT-B/16 224px, 196 image tokens + Llama 768x12), {n_params / 1e6:.1f}M parameters, "
          f"random weights; {len(rows)} questions on {args.images} easy-VQA test images; prompts {mean_len:.0f} "
          f"tokens (min {min_len}, max {max_len}); {args.new_tokens} greedy tokens each; torch "
          f"{torch.__version__}, transformers {transformers.__version__}, {torch.get_num_threads()} threads; "
          f"load avg {_load()}", flush=True)

    runs: dict[str, list[dict]] = {"lmms-eval": [], "mmbench": []}
    for r in range(args.rounds):
        for side in ("lmms-eval", "mmbench"):
            res = (run_peer(work, ckpt, f"r{r}", rows) if side == "lmms-eval"
                   else run_mmbench(work, ckpt, f"r{r}", args.mmbench_batch_size))
            runs[side].append(res)
            extra = ""
            if side == "lmms-eval" and res["loop_s"]:
                extra = f" (model loop {len(rows) / res['loop_s']:.2f} samples/s)"
            if side == "mmbench":
                extra = (f" (model loop {len(rows) / res['inference_s']:.2f} samples/s, batch {res['batch_size']}, "
                         f"prefix reuse {res['prefix_reuse']})")
            print(f"round {r + 1} {side:<9} {res['wall']:7.1f}s  {len(rows) / res['wall']:6.2f} samples/s{extra}  "
                  f"load avg {_load()}", flush=True)

    best = {side: len(rows) / min(x["wall"] for x in v) for side, v in runs.items()}
    each = " ".join(f"{p['wall'] / m['wall']:.2f}x" for p, m in zip(runs["lmms-eval"], runs["mmbench"]))
    print(f"\nsamples/s (best of {args.rounds}, wall): lmms-eval {best['lmms-eval']:.3f}, mmbench "
          f"{best['mmbench']:.3f}: {best['mmbench'] / best['lmms-eval']:.2f}x  (per round: {each})")

    failures = []
    ref = runs["lmms-eval"][0]["outputs"]
    if set(ref) != {str(r["question_id"]) for r in rows}:
        failures.append(f"lmms-eval answered {len(ref)} of {len(rows)} questions")
    for side, side_runs in runs.items():
        for i, run in enumerate(side_runs):
            differ = [q for q in ref if run["outputs"].get(q) != ref[q]]
            if differ:
                q = differ[0]
                failures.append(f"{side} round {i + 1}: {len(differ)} of {len(ref)} outputs differ from lmms-eval "
                                f"round 1 (first: {q}: {run['outputs'].get(q)!r} vs {ref[q]!r})")
    print(f"load avg at the end {_load()}")
    if failures:
        raise SystemExit("outputs differ: " + "; ".join(failures))
    print(f"identical greedy outputs: {len(ref)}/{len(ref)} questions, every run")


def _load() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


if __name__ == "__main__":
    main()
