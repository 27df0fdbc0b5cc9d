"""What the reviewer screen shows of a generation (chat messages, retrieved documents,
pretty JSON) and a rubric's questions as form fields with what is chosen."""

from __future__ import annotations

import json

from . import rubric as rubric_mod


def _pretty(value) -> str:
    if value in (None, "", [], {}):
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _messages(value) -> list[dict] | None:
    """Chat-style input as [{role, content}], or None when it is something else."""
    if isinstance(value, dict) and isinstance(value.get("messages"), list):
        value = value["messages"]
    if (
        isinstance(value, list)
        and value
        and all(isinstance(m, dict) and "role" in m for m in value)
    ):
        return [{"role": str(m.get("role")), "content": _pretty(m.get("content"))} for m in value]
    return None


def _documents(value) -> list[dict] | None:
    if isinstance(value, dict) and isinstance(value.get("documents"), list):
        value = value["documents"]
    if not isinstance(value, list) or not value:
        return None
    docs = []
    for d in value:
        if isinstance(d, str):
            docs.append({"title": "", "text": d})
        elif isinstance(d, dict):
            title = d.get("title") or d.get("source") or d.get("id") or ""
            text = d.get("content") or d.get("text") or d.get("page_content")
            docs.append({"title": str(title), "text": _pretty(text if text is not None else d)})
        else:
            return None
    return docs


def present(gen) -> dict:
    return {
        "messages": _messages(gen.input),
        "input": _pretty(gen.input),
        "documents": _documents(gen.context),
        "context": _pretty(gen.context),
        "tool_calls": _pretty(gen.tool_calls),
        "metadata": _pretty(gen.metadata),
        "output": gen.output or "",
    }


def _form_value(value) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def questions_for(rubric: dict, answers: dict | None = None) -> list[dict]:
    """The rubric's questions with their options, keys, and what is chosen (stored answers
    or a re-shown draft, whose values are still form strings)."""
    answers = answers or {}
    out = []
    for q in rubric.get("questions", []):
        chosen = answers.get(q["key"])
        picked = (
            set()
            if chosen is None
            else {_form_value(v) for v in chosen}
            if isinstance(chosen, list)
            else {_form_value(chosen)}
        )
        options = [
            {
                **opt,
                "form_value": _form_value(opt["value"]),
                "selected": _form_value(opt["value"]) in picked,
            }
            for opt in rubric_mod.shortcuts(q)
        ]
        out.append({**q, "choices": options, "answer": chosen if chosen is not None else ""})
    return out
