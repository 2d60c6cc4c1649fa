"""Tokenisation and constrained decoding over a cached declarations prefix.

Shared by training and inference so both see exactly the same token sequences:
- the prefix (`<bos>` + developer turn with every declaration) is computed ONCE into a KV cache
  with the BASE weights (a LoRA adapter disabled) and copied per query, never mutated;
- a completion is encoded in the same pieces that decoding produces (call head up to the
  argument's `<escape>`, argument + closing tokens, `<end_of_turn>`).

Decoding is constrained: after `<start_function_call>call:` only token paths of declared names
are allowed (a prefix trie), the rest of each call is forced, and after a call the only choices
are another call or the end of the turn. The model decides only at the trie's branching points,
so the confidence of a call is the product of the model's probabilities at those points,
renormalised over the declared alternatives (= the probability mass of that call's name among
all declared names).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from orchestrator.routing.functiongemma.format import (
    ARG,
    END_CALL,
    END_TURN,
    ESCAPE,
    PSEUDO_FUNCTIONS,
    START_CALL,
    FormatError,
    FunctionCall,
    FunctionDeclaration,
    clean_text,
    render_prefix,
    render_query,
)


@dataclass
class TrieNode:
    children: dict[int, TrieNode] = field(default_factory=dict)
    names: set[str] = field(default_factory=set)  # names whose token path passes here
    leaf: str | None = None


def build_trie(paths: dict[str, list[int]]) -> TrieNode:
    """Prefix trie over token paths; a path that is a strict prefix of another is rejected (the
    decoder could not tell where one name ends)."""
    root = TrieNode()
    for name, ids in paths.items():
        if not ids:
            raise FormatError(f"empty token path for {name!r}")
        node = root
        node.names.add(name)
        for t in ids:
            node = node.children.setdefault(t, TrieNode())
            node.names.add(name)
        if node.leaf is not None or node.children:
            raise FormatError(f"token path of {name!r} is ambiguous with another declared name")
        node.leaf = name
    for name, ids in paths.items():
        node = root
        for t in ids[:-1]:
            node = node.children[t]
            if node.leaf is not None:
                raise FormatError(f"token path of {node.leaf!r} is a prefix of {name!r}")
    return root


class TrieConstraint:
    """Which tokens may come next while spelling a declared name (a logits processor in spirit:
    `mask` returns -inf for every other token). Works on any vocabulary, so it is unit-tested
    with a fake one."""

    def __init__(self, paths: dict[str, list[int]]) -> None:
        self.paths = dict(paths)
        self.root = build_trie(self.paths)

    def allowed(self, prefix: Sequence[int], exclude: set[str] | frozenset[str] = frozenset()) -> list[int]:
        node = self.root
        for t in prefix:
            if t not in node.children:
                raise FormatError(f"token {t} leaves every declared name")
            node = node.children[t]
        return [t for t, child in node.children.items() if child.names - exclude]

    def mask(
        self, scores: torch.Tensor, prefix: Sequence[int], exclude: set[str] | frozenset[str] = frozenset()
    ) -> torch.Tensor:
        keep = self.allowed(prefix, exclude)
        out = torch.full_like(scores, -math.inf)
        out[..., keep] = scores[..., keep]
        return out

    def __call__(self, prefix: Sequence[int], scores: torch.Tensor) -> torch.Tensor:
        return self.mask(scores, prefix)


@dataclass
class DecodedCall:
    name: str
    probability: float  # mass of this name among the declared (not yet called) names
    raw_probability: float | None  # same product over the full vocabulary (full_vocab only)
    step_probs: list[dict[str, float]]  # per branching step: name group -> probability


@dataclass
class Decoded:
    calls: list[DecodedCall]
    more_probability: list[float]  # P(another call) after each call (2-way: call vs end of turn)
    query_tokens: int
    forward_passes: int


def _split_head(model: Any) -> tuple[Any, Any]:
    """(decoder body, output projection) when the head is a plain float Linear (base, merged
    or LoRA-wrapped model); (None, None) otherwise (e.g. int8), meaning "use the full head"."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    body, head = getattr(base, "model", None), getattr(base, "lm_head", None)
    if body is None or type(head) is not torch.nn.Linear or not head.weight.is_floating_point():
        return None, None
    return body, head


class Engine:
    """Tokenizer-level format + cached-prefix decoding for one set of declarations."""

    def __init__(self, model: Any, tokenizer: Any, decls: Sequence[FunctionDeclaration]) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.decls = list(decls)
        self.names = [d.name for d in self.decls]
        self.prefix_text = render_prefix(self.decls)
        self.prefix_ids: list[int] = tokenizer(self.prefix_text, add_special_tokens=True).input_ids
        self.start_call_id = self._single(START_CALL)
        self.end_turn_id = self._single(END_TURN)
        # Heads spell `<start_function_call>call:NAME{query:<escape>`: the trie covers the
        # whole head, so once a name is unique the rest of it is simply forced.
        self.heads = {n: self.encode(f"{START_CALL}call:{n}{{{ARG}:{ESCAPE}") for n in self.names}
        self.constraint = TrieConstraint(self.heads)
        self._prefix_cache: Any = None

    # --- encoding (training and inference) ------------------------------------------------
    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False).input_ids

    def _single(self, token: str) -> int:
        ids = self.encode(token)
        if len(ids) != 1:
            raise FormatError(f"{token} is not a single token in this tokenizer; add the control tokens")
        return ids[0]

    def encode_query(self, query: str) -> list[int]:
        return self.encode(render_query(query))

    def encode_tail(self, value: str) -> list[int]:
        return self.encode(f"{clean_text(value)}{ESCAPE}}}{END_CALL}")

    def encode_completion(self, calls: Sequence[FunctionCall]) -> list[int]:
        """A completion in exactly the pieces the decoder produces."""
        if not calls:
            raise FormatError("at least one call is needed")
        ids: list[int] = []
        for c in calls:
            if c.name not in self.heads:
                raise FormatError(f"unknown function {c.name!r}")
            ids += self.heads[c.name] + self.encode_tail(c.args.get(ARG, ""))
        return [*ids, self.end_turn_id]

    def decision_points(
        self, calls: Sequence[FunctionCall], max_calls: int = 3
    ) -> list[tuple[int, list[int], int]]:
        """Where constrained decoding of `encode_completion(calls)` asks the model, as
        (index of the target token in the completion, allowed token ids, target id) — the same
        branching points, in the same order, with the same allowed sets as `decode`."""
        out: list[tuple[int, list[int], int]] = []
        used: set[str] = set()
        pos = 0
        for i, c in enumerate(calls):
            if c.name not in self.heads:
                raise FormatError(f"unknown function {c.name!r}")
            if c.name in used:
                raise FormatError(f"{c.name!r} is called twice")
            if i > 0:
                out.append((pos, [self.start_call_id, self.end_turn_id], self.start_call_id))
            node = self.constraint.root
            for tok in self.heads[c.name]:
                options = [t for t, child in node.children.items() if child.names - used]
                if len(options) > 1:
                    out.append((pos, options, tok))
                node = node.children[tok]
                pos += 1
            used.add(c.name)
            pos += len(self.encode_tail(c.args.get(ARG, "")))
            last = c.name in PSEUDO_FUNCTIONS or len(used) == len(self.names) or i + 1 == max_calls
            if last and i + 1 < len(calls):
                raise FormatError("decoding would stop before the remaining calls")
        if not (
            calls[-1].name in PSEUDO_FUNCTIONS or len(used) == len(self.names) or len(calls) == max_calls
        ):
            out.append((pos, [self.start_call_id, self.end_turn_id], self.end_turn_id))
        return out

    # --- prefix cache -----------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def tensor(self, ids: Sequence[int] | Sequence[Sequence[int]]) -> torch.Tensor:
        return torch.tensor(ids, device=self.device)

    @torch.no_grad()  # not inference_mode: training attends to these tensors with autograd on
    def compute_prefix_cache(self) -> Any:
        """The declarations' KV cache, computed with the base weights (adapter disabled)."""
        ids = self.tensor([self.prefix_ids])
        disable = getattr(self.model, "disable_adapter", None)
        if disable is not None and getattr(self.model, "peft_config", None):
            with disable():
                out = self.model(input_ids=ids, use_cache=True, logits_to_keep=1)
        else:
            out = self.model(input_ids=ids, use_cache=True, logits_to_keep=1)
        return out.past_key_values

    @property
    def prefix_cache(self) -> Any:
        if self._prefix_cache is None:
            self._prefix_cache = self.compute_prefix_cache()
        return self._prefix_cache

    def set_prefix_cache(self, cache: Any) -> None:
        self._prefix_cache = cache

    def fresh_cache(self, batch: int = 1) -> Any:
        """A private copy of the prefix cache (the shared one is never mutated)."""
        cache = copy.deepcopy(self.prefix_cache)
        if batch > 1:
            cache.batch_repeat_interleave(batch)
        return cache

    # --- decoding ---------------------------------------------------------------------------
    @torch.inference_mode()
    def next_logits(self, query: str, *, cached: bool = True) -> torch.Tensor:
        """Next-token logits after the query (for tests and latency measurements)."""
        q = self.encode_query(query)
        if cached:
            out = self.model(
                input_ids=self.tensor([q]),
                past_key_values=self.fresh_cache(),
                use_cache=True,
                logits_to_keep=1,
            )
        else:
            out = self.model(input_ids=self.tensor([self.prefix_ids + q]), use_cache=True, logits_to_keep=1)
        return out.logits[0, -1].float()

    @torch.inference_mode()
    def decode(
        self,
        query: str,
        *,
        max_calls: int = 3,
        cached: bool = True,
        model: Any = None,
        full_vocab: bool = False,
    ) -> Decoded:
        """Constrained greedy decoding of up to `max_calls` calls. `model` overrides the
        model used for the query tokens (e.g. a merged or int8 copy); the prefix cache always
        comes from the base weights. `full_vocab` also reports each call's unrenormalised
        probability over the whole vocabulary (slower)."""
        model = model or self.model
        q = self.encode_query(query)
        passes = 0
        if cached:
            cache = self.fresh_cache()
            pending = q
        else:
            cache = None
            pending = self.prefix_ids + q

        body, head = _split_head(model) if not full_vocab else (None, None)

        def feed(tokens: list[int], need: list[int]) -> tuple[torch.Tensor, torch.Tensor | None]:
            """Logits of the `need` tokens, and full-vocabulary log-probs when asked for.
            Only the allowed rows of the output projection are computed by default: the full
            262k-row projection costs ~60 ms per step on 2 cores, for a number nobody needs."""
            nonlocal cache, passes
            passes += 1
            ids = self.tensor([tokens])
            if body is not None:
                out = body(input_ids=ids, past_key_values=cache, use_cache=True)
                cache = out.past_key_values
                h = out.last_hidden_state[0, -1]
                logits = (head.weight[need] @ h).float()
                cap = getattr(model.config, "final_logit_softcapping", None)
                if cap:
                    logits = torch.tanh(logits / cap) * cap
                return logits, None
            out = model(input_ids=ids, past_key_values=cache, use_cache=True, logits_to_keep=1)
            cache = out.past_key_values
            full = out.logits[0, -1].float()
            return full[need], torch.log_softmax(full, -1)

        calls: list[DecodedCall] = []
        more: list[float] = []
        used: set[str] = set()
        for i in range(max_calls):
            if i > 0:
                logits, _ = feed(pending, [self.start_call_id, self.end_turn_id])
                pending = []
                pair = torch.softmax(logits, -1)
                more.append(float(pair[0]))
                if pair[0] <= pair[1]:
                    break
            node = self.constraint.root
            path: list[int] = []
            prob = 1.0
            raw: float | None = 1.0 if full_vocab else None
            steps: list[dict[str, float]] = []
            while node.leaf is None:
                options = {t: c for t, c in node.children.items() if c.names - used}
                if not options:
                    raise FormatError("no declared name left to call")
                if len(options) == 1:
                    (tok, node) = next(iter(options.items()))
                else:
                    ids = list(options)
                    logits, logp = feed(pending, ids)
                    pending = []
                    sub = torch.softmax(logits, -1)
                    best = int(torch.argmax(sub))
                    tok = ids[best]
                    prob *= float(sub[best])
                    raw = raw * float(logp[tok].exp()) if logp is not None and raw is not None else None
                    steps.append(
                        {
                            "/".join(sorted(options[t].names - used)): round(float(p), 4)
                            for t, p in zip(ids, sub, strict=True)
                        }
                    )
                    node = options[tok]
                path.append(tok)
                pending.append(tok)
            name = node.leaf
            used.add(name)
            calls.append(DecodedCall(name, prob, raw, steps))
            pending += self.encode_tail(query)
            if name in PSEUDO_FUNCTIONS or len(used) == len(self.names):
                break
        return Decoded(calls, more, len(q), passes)
