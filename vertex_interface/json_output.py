"""Parsing controlled-generation output: strip markdown fences, parse, validate against the schema."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ValidationError

_FENCE = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\r?\n?(.*?)```", re.DOTALL)


class JsonProblem(ValueError):
    """Why a model's text is not a valid instance of the schema (fed back in the repair prompt)."""


def clean_json_text(text: str) -> str:
    """The JSON inside ``text``: a fenced block if there is one, else the outermost {...} or [...]."""
    text = text.strip().lstrip("\ufeff")
    fenced = _FENCE.search(text)
    if fenced:
        return fenced.group(1).strip()
    if text[:1] in "{[":
        return text
    # Prose around the object ("Here is the JSON: {...}"): keep the outermost braces.
    start, end = text.find("{"), text.rfind("}")
    if start != -1 and end > start:
        return text[start : end + 1]
    return text


def parse_and_validate(text: str, schema: type[BaseModel]) -> dict[str, Any]:
    cleaned = clean_json_text(text)
    if not cleaned:
        raise JsonProblem("the reply was empty")
    try:
        data = json.loads(cleaned)
    except json.JSONDecodeError as exc:
        raise JsonProblem(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    try:
        model = schema.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in exc.errors()[:8]
        )
        raise JsonProblem(f"does not match the schema: {problems}") from exc
    return model.model_dump(mode="json")


def repair_prompt(problem: str) -> str:
    return (
        "Your previous reply could not be used: "
        f"{problem}. Reply again with only the corrected JSON object that matches the response schema, "
        "without markdown or commentary."
    )
