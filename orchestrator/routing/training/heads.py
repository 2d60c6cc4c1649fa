"""Fitting the router's classification heads (not runtime: the serving path loads this module
only when a head is fitted, at start-up or in `warm_up()`). The heads themselves, their inference
and their save format are in orchestrator/routing/head.py.

- `linear`: multinomial logistic regression on L2-normalised, frozen MiniLM embeddings. Fitted
  in seconds once the examples are embedded; deterministic (lbfgs).
- `finetune`: MiniLM itself is trained (mean pooling → L2 norm → linear layer, cross-entropy),
  for large label sets where frozen embeddings plateau. To fit a 2-core CPU, only the top
  `train_layers` transformer layers learn: the frozen lower layers run ONCE per example and
  their output is cached, so an epoch costs only the top layers' forward and backward. The
  linear layer starts from the logistic-regression fit on the initial embeddings (linear probe,
  then fine-tune), so training starts from the `linear` head's accuracy instead of from chance.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from orchestrator.routing.head_model import (
    Embed,
    FinetuneHead,
    Head,
    HeadConfig,
    LinearHead,
    load_head,
    normalise,
    softmax,
)

MAX_LABELS = 1000


def _check_training_data(texts: Sequence[str], labels: Sequence[str]) -> list[str]:
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    if not texts:
        raise ValueError("no training examples")
    if any(not isinstance(t, str) or not t.strip() for t in texts):
        raise ValueError("training texts must be non-empty strings")
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise ValueError("a head needs at least two labels")
    if len(classes) > MAX_LABELS:
        raise ValueError(f"at most {MAX_LABELS} labels")
    return classes


def fingerprint(texts: Sequence[str], labels: Sequence[str], config: HeadConfig) -> str:
    """Identity of a training run: same data and config → same head (both kinds are seeded)."""
    h = hashlib.sha256(config.model_dump_json().encode())
    for t, lab in zip(texts, labels, strict=True):
        h.update(f"{lab}\x00{t}\x01".encode())
    return h.hexdigest()[:20]


def fit_logreg(x: np.ndarray, y: np.ndarray, config: HeadConfig) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    # lbfgs is multinomial for several classes and deterministic. One BLAS thread: these matrices
    # are small, and on a busy 2-core box threaded BLAS made the fit ~30x slower (4 s vs 0.15 s).
    model = LogisticRegression(C=config.C, max_iter=config.max_iter)
    with threadpool_limits(1):
        model.fit(x, y)
    return model.coef_.astype(np.float32), model.intercept_.astype(np.float32)


def fit_linear(embed: Embed, texts: Sequence[str], labels: Sequence[str], config: HeadConfig) -> LinearHead:
    """Logistic regression on `embed`'s (re-normalised) vectors."""
    classes = _check_training_data(texts, labels)
    t0 = time.perf_counter()
    x = normalise(np.asarray(embed(list(texts)), dtype=np.float32))
    t1 = time.perf_counter()
    coef, intercept = fit_logreg(x, np.asarray(labels), config)
    meta = {
        "n_train": len(texts),
        "embed_s": round(t1 - t0, 2),
        "fit_s": round(time.perf_counter() - t1, 2),
        "train_s": round(time.perf_counter() - t0, 2),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }
    return LinearHead(embed, config, classes, coef, intercept, meta)


def fit_finetune(
    texts: Sequence[str], labels: Sequence[str], config: HeadConfig, *, progress: bool = False
) -> FinetuneHead:
    """MiniLM's top `train_layers` layers and the linear layer, trained with cross-entropy; the
    frozen lower layers run once per example (cached), the linear layer starts from a probe."""
    import torch
    from tqdm.auto import tqdm

    classes = _check_training_data(texts, labels)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    head = FinetuneHead(config, classes)
    index = {c: i for i, c in enumerate(classes)}
    y_all = torch.tensor([index[lab] for lab in labels])
    started = time.perf_counter()

    # 1. Tokenise once; batches group similar lengths so little compute goes to padding.
    ids = [head.tokenizer(t, truncation=True, max_length=config.max_seq_length)["input_ids"] for t in texts]
    lengths = np.array([len(i) for i in ids])

    def batches(jitter: bool) -> list[np.ndarray]:
        key = lengths + (rng.random(len(ids)) * 4 if jitter else 0)
        order = np.argsort(key, kind="stable")
        out = [order[i : i + config.batch_size] for i in range(0, len(order), config.batch_size)]
        if jitter:
            rng.shuffle(out)
        return out

    def collate(idx: np.ndarray):
        width = int(lengths[idx].max())
        input_ids = torch.zeros((len(idx), width), dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for r, i in enumerate(idx):
            input_ids[r, : lengths[i]] = torch.tensor(ids[i])
            mask[r, : lengths[i]] = 1
        return {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(mask)}

    # 2. The frozen lower layers, once per example (cached unpadded, as float16 to halve memory).
    cache: list[torch.Tensor | None] = [None] * len(ids)
    fixed = batches(jitter=False)
    with torch.inference_mode():
        for idx in tqdm(fixed, desc="caching frozen layers", disable=not progress):
            enc = collate(idx)
            hidden = head._lower(enc)
            for r, i in enumerate(idx):
                cache[i] = hidden[r, : lengths[i]].to(torch.float16).clone()

    def lower_batch(idx: np.ndarray):
        width = int(lengths[idx].max())
        hidden = torch.zeros((len(idx), width, head.bert.config.hidden_size))
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for r, i in enumerate(idx):
            hidden[r, : lengths[i]] = cache[i].float()
            mask[r, : lengths[i]] = 1
        return hidden, mask

    # 3. Linear probe on the initial embeddings: the linear layer's starting point.
    with torch.inference_mode():
        feats = np.zeros((len(ids), head.bert.config.hidden_size), np.float32)
        for idx in fixed:
            hidden, mask = lower_batch(idx)
            feats[idx] = head._upper(hidden, mask).numpy()
    coef, intercept = fit_logreg(feats, np.asarray(labels), config)
    if coef.shape[0] == 1:  # binary: sklearn keeps one logit; spread it over two classes
        coef = np.concatenate([-coef / 2, coef / 2])
        intercept = np.concatenate([-intercept / 2, intercept / 2])
    with torch.no_grad():
        head.linear.weight.copy_(torch.from_numpy(coef))
        head.linear.bias.copy_(torch.from_numpy(intercept))
    probe_s = time.perf_counter() - started

    def training_loss() -> float:
        """Mean cross-entropy over the training set, dropout off (before vs after)."""
        total = 0.0
        with torch.inference_mode():
            for idx in fixed:
                hidden, mask = lower_batch(idx)
                logits = head.linear(head._upper(hidden, mask))
                total += torch.nn.functional.cross_entropy(logits, y_all[idx], reduction="sum").item()
        return round(total / len(ids), 5)

    # Before fine-tuning, the features are exactly those the probe was fitted on.
    probs = softmax(feats @ coef.T + intercept)
    initial_loss = round(
        float(-np.log(np.maximum(probs[np.arange(len(ids)), y_all.numpy()], 1e-12)).mean()), 5
    )

    # 4. Fine-tune the top layers and the linear layer together.
    trainable = [p for p in head.bert.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(
        [
            {"params": trainable, "lr": config.lr},
            {"params": head.linear.parameters(), "lr": config.head_lr},
        ],
        weight_decay=config.weight_decay,
    )
    steps = config.epochs * len(fixed)
    warmup = int(steps * config.warmup_ratio)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser,
        lambda s: (s + 1) / max(1, warmup) if s < warmup else max(0.0, (steps - s) / max(1, steps - warmup)),
    )
    head.bert.encoder.layer[head.split :].train()  # dropout in the trained layers only
    bar = tqdm(total=steps, desc="fine-tuning", disable=not progress)
    for _epoch in range(config.epochs):
        total, seen = 0.0, 0
        for idx in batches(jitter=True):
            hidden, mask = lower_batch(idx)
            logits = head.linear(head._upper(hidden, mask))
            loss = torch.nn.functional.cross_entropy(logits, y_all[idx])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item() * len(idx)
            seen += len(idx)
            bar.update(1)
            bar.set_postfix(loss=f"{total / seen:.3f}")
        head.losses.append(round(total / seen, 5))
    bar.close()
    head.bert.eval()
    head.meta = {
        "initial_loss": initial_loss,
        "final_loss": training_loss(),
        "n_train": len(texts),
        "probe_s": round(probe_s, 1),
        "train_s": round(time.perf_counter() - started, 1),
        "losses": head.losses,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "torch_threads": torch.get_num_threads(),
    }
    return head


def fit_head(
    texts: Sequence[str],
    labels: Sequence[str],
    config: HeadConfig | None = None,
    *,
    embed: Embed | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = False,
) -> Head:
    """Train a head; with `cache_dir`, reuse the head saved there for the same data and config."""
    config = config or HeadConfig()
    _check_training_data(texts, labels)
    target = None
    if cache_dir is not None:
        target = Path(cache_dir) / f"{config.kind}-{fingerprint(texts, labels, config)}"
        if (target / "config.json").is_file():
            try:
                head = load_head(target, embed=embed)
                head.meta = {**getattr(head, "meta", {}), "cached": True}
                return head
            except (ValueError, OSError, KeyError):
                pass  # a partial or stale save: train again and overwrite it
    head: Head
    if config.kind == "linear":
        if embed is None:
            raise ValueError("a linear head needs an embedder")
        head = fit_linear(embed, texts, labels, config)
    else:
        head = fit_finetune(texts, labels, config, progress=progress)
    if target is not None:
        head.save(target)
    return head


def memo(embed: Embed) -> Embed:
    """`embed` with a cache by text (for one fit: training and calibration share texts)."""
    cache: dict[str, np.ndarray] = {}

    def run(texts: list[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in cache))
        if missing:
            for t, v in zip(missing, np.asarray(embed(missing), dtype=np.float32), strict=True):
                cache[t] = v
        if not texts:
            return np.zeros((0, 0), np.float32)
        return np.stack([cache[t] for t in texts])

    return run
