"""What a prompt version holds, without the database: validation of templates, chat
messages, params and tool schemas (400s naming the field), `{{ variable }}` extraction,
the content hash, and the YAML prompt-file format used by sync, push and pull."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from jsonschema import exceptions as jsonschema_exceptions
from jsonschema.validators import Draft202012Validator

from llmops.common.errors import InvalidInput

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
PLACEHOLDER_RE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
RESERVED_NAMES = frozenset({"new", "sync"})  # taken by page and API routes
VARIABLE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ROLES = ("system", "user", "assistant", "developer", "tool")
MAX_TEMPLATE_CHARS = 200_000
MAX_MESSAGES = 200
MAX_TOOLS = 128
# Known sampling params and the JSON types they accept; others pass if they are JSON scalars.
PARAM_RULES: dict[str, tuple[type | tuple[type, ...], float | None, float | None]] = {
    "temperature": ((int, float), 0.0, 2.0),
    "top_p": ((int, float), 0.0, 1.0),
    "top_k": (int, 1, None),
    "max_tokens": (int, 1, 2_000_000),
    "presence_penalty": ((int, float), -2.0, 2.0),
    "frequency_penalty": ((int, float), -2.0, 2.0),
    "seed": (int, None, None),
}
FILE_KEYS = {"name", "description", "tags", "model", "template", "messages", "params", "tools"}
FILE_KEYS_OPTIONAL = {"message", "variables", "required_approvals"}


def validate_name(name: Any) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InvalidInput(
            "A prompt name is 1-100 characters of lowercase letters, digits, '-' and '_', "
            "starting with a letter or digit.",
            field="name",
        )
    if name in RESERVED_NAMES:
        raise InvalidInput(f"'{name}' is reserved; choose another name.", field="name")
    return name


def _placeholders(text: str, where: str) -> list[str]:
    found = []
    for match in PLACEHOLDER_RE.finditer(text):
        inner = match.group(1).strip()
        if not VARIABLE_RE.match(inner):
            raise InvalidInput(
                f"{where}: '{{{{{match.group(1)}}}}}' is not a variable placeholder; "
                "use {{ name }} with letters, digits and '_'.",
                field=where,
            )
        found.append(inner)
    return found


def extract_variables(*, template: str | None = None, messages: list | None = None) -> list[str]:
    """Variables in order of first appearance."""
    seen: dict[str, None] = {}
    if template is not None:
        for name in _placeholders(template, "template"):
            seen.setdefault(name)
    for i, msg in enumerate(messages or []):
        for name in _placeholders(msg["content"], f"messages[{i}].content"):
            seen.setdefault(name)
    return list(seen)


def _validate_messages(messages: Any) -> list[dict]:
    if not isinstance(messages, list) or not messages:
        raise InvalidInput(
            'messages must be a non-empty list of {"role", "content"} objects.', field="messages"
        )
    if len(messages) > MAX_MESSAGES:
        raise InvalidInput(f"At most {MAX_MESSAGES} messages.", field="messages")
    clean = []
    for i, msg in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(msg, dict):
            raise InvalidInput(f'{where} must be a {{"role", "content"}} object.', field=where)
        extra = set(msg) - {"role", "content"}
        if extra:
            raise InvalidInput(
                f"{where} has unknown keys: {', '.join(sorted(extra))}.", field=where
            )
        if msg.get("role") not in ROLES:
            raise InvalidInput(
                f"{where}.role must be one of {', '.join(ROLES)}.", field=f"{where}.role"
            )
        content = msg.get("content")
        if not isinstance(content, str) or not content.strip():
            raise InvalidInput(
                f"{where}.content must be a non-empty string.", field=f"{where}.content"
            )
        if len(content) > MAX_TEMPLATE_CHARS:
            raise InvalidInput(f"{where}.content is too long.", field=f"{where}.content")
        clean.append({"role": msg["role"], "content": content})
    return clean


def _validate_params(params: Any) -> dict:
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise InvalidInput('params must be an object, e.g. {"temperature": 0.2}.', field="params")
    for key, value in params.items():
        where = f"params.{key}"
        rule = PARAM_RULES.get(key)
        if rule is None:
            if not (value is None or isinstance(value, str | int | float | bool | list | dict)):
                raise InvalidInput(f"{where} must be a JSON value.", field=where)
            continue
        types, low, high = rule
        if isinstance(value, bool) or not isinstance(value, types):
            raise InvalidInput(f"{where} must be a number.", field=where)
        if (low is not None and value < low) or (high is not None and value > high):
            raise InvalidInput(f"{where} must be between {low} and {high}.", field=where)
    return params


def _validate_tools(tools: Any) -> list[dict]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise InvalidInput("tools must be a list of tool definitions.", field="tools")
    if len(tools) > MAX_TOOLS:
        raise InvalidInput(f"At most {MAX_TOOLS} tools.", field="tools")
    names = set()
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise InvalidInput(
                f'{where} must be an object {{"name", "description", "parameters"}}.', field=where
            )
        name = tool.get("name")
        if not isinstance(name, str) or not re.match(r"^[A-Za-z0-9_.-]{1,64}$", name):
            raise InvalidInput(
                f"{where}.name must be 1-64 letters, digits, '_', '.' or '-'.",
                field=f"{where}.name",
            )
        if name in names:
            raise InvalidInput(f"{where}.name '{name}' is used twice.", field=f"{where}.name")
        names.add(name)
        if "description" in tool and not isinstance(tool["description"], str):
            raise InvalidInput(
                f"{where}.description must be a string.", field=f"{where}.description"
            )
        schema_key = next(
            (k for k in ("parameters", "input_schema", "inputSchema") if k in tool), None
        )
        if schema_key is None:
            raise InvalidInput(
                f"{where} needs a JSON Schema under 'parameters' (or 'input_schema').",
                field=f"{where}.parameters",
            )
        schema = tool[schema_key]
        swhere = f"{where}.{schema_key}"
        if not isinstance(schema, dict):
            raise InvalidInput(f"{swhere} must be a JSON Schema object.", field=swhere)
        if schema.get("type", "object") != "object":
            raise InvalidInput(f'{swhere} must have "type": "object".', field=swhere)
        try:
            Draft202012Validator.check_schema(schema)
        except jsonschema_exceptions.SchemaError as exc:
            path = "/".join(str(p) for p in exc.path) or "(root)"
            raise InvalidInput(
                f"{swhere} is not a valid JSON Schema at {path}: {exc.message}", field=swhere
            )
    return tools


@dataclass
class Content:
    template: str | None
    messages: list[dict] | None
    params: dict
    tools: list[dict]
    variables: list[str] = field(default_factory=list)

    def as_dict(self, model_id: str) -> dict:
        body: dict[str, Any] = {}
        if self.messages is not None:
            body["messages"] = self.messages
        else:
            body["template"] = self.template
        body.update({"model": model_id, "params": self.params, "tools": self.tools})
        return body


def clean_content(
    *,
    template: Any = None,
    messages: Any = None,
    params: Any = None,
    tools: Any = None,
    variables: Any = None,
) -> Content:
    """Validate a version's content; `variables`, when given, lists the only names allowed."""
    if (template is None) == (messages is None):
        raise InvalidInput(
            "Give either a template (text) or messages (chat), not both.",
            field="template" if template is not None else "messages",
        )
    if template is not None:
        if not isinstance(template, str) or not template.strip():
            raise InvalidInput("template must be non-empty text.", field="template")
        if len(template) > MAX_TEMPLATE_CHARS:
            raise InvalidInput(
                f"template is longer than {MAX_TEMPLATE_CHARS} characters.", field="template"
            )
    else:
        messages = _validate_messages(messages)
    found = extract_variables(template=template, messages=messages)
    if variables is not None:
        if not isinstance(variables, list) or not all(
            isinstance(v, str) and VARIABLE_RE.match(v) for v in variables
        ):
            raise InvalidInput("variables must be a list of variable names.", field="variables")
        unknown = [v for v in found if v not in variables]
        if unknown:
            where = "template" if template is not None else "messages"
            raise InvalidInput(
                f"Unknown variable{'s' if len(unknown) > 1 else ''} in {where}: "
                f"{', '.join(unknown)} (declared: {', '.join(variables) or 'none'}).",
                field=where,
            )
    return Content(
        template=template,
        messages=messages,
        params=_validate_params(params),
        tools=_validate_tools(tools),
        variables=found,
    )


def content_hash(*, template, messages, model_id: str, params: dict, tools: list) -> str:
    """Over what the version sends to the model; never the change message."""
    canonical = json.dumps(
        {
            "kind": "messages" if messages is not None else "template",
            "template": template if messages is None else None,
            "messages": messages,
            "model": model_id,
            "params": params or {},
            "tools": tools or [],
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def render_preview(text: str, values: dict[str, str]) -> str:
    """Substitute known variables (for previews); unknown ones stay as placeholders."""

    def sub(match):
        name = match.group(1).strip()
        return values.get(name, match.group(0))

    return PLACEHOLDER_RE.sub(sub, text)


# -- prompt files (YAML) -------------------------------------------------------------------

MAX_FILE_BYTES = 512 * 1024


def parse_prompt_file(text: str, *, path: str) -> dict:
    """One prompt file -> dict with name, description, tags, model, template|messages,
    params, tools, message. Errors name the file."""
    if len(text.encode()) > MAX_FILE_BYTES:
        raise InvalidInput(f"{path}: larger than {MAX_FILE_BYTES // 1024} KB.", field=path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{path}: not valid YAML ({exc.__class__.__name__}).", field=path)
    if not isinstance(data, dict):
        raise InvalidInput(f"{path}: a prompt file is a YAML mapping.", field=path)
    unknown = set(data) - FILE_KEYS - FILE_KEYS_OPTIONAL
    if unknown:
        raise InvalidInput(f"{path}: unknown keys {', '.join(sorted(unknown))}.", field=path)
    for key in ("name", "model"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise InvalidInput(f"{path}: '{key}' is required.", field=path)
    tags = data.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise InvalidInput(f"{path}: 'tags' must be a list of strings.", field=path)
    return {
        "name": data["name"].strip(),
        "description": str(data.get("description") or ""),
        "tags": tags,
        "model": data["model"].strip(),
        "template": data.get("template"),
        "messages": data.get("messages"),
        "params": data.get("params") or {},
        "tools": data.get("tools") or [],
        "variables": data.get("variables"),
        "message": str(data.get("message") or ""),
    }


class _LiteralDumper(yaml.SafeDumper):
    pass


def _str_representer(dumper, value):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_LiteralDumper.add_representer(str, _str_representer)


def dump_prompt_file(*, prompt, version) -> str:
    data: dict[str, Any] = {"name": prompt.name}
    if prompt.description:
        data["description"] = prompt.description
    if prompt.tags:
        data["tags"] = list(prompt.tags)
    data["model"] = version.model.model_id
    if version.messages is not None:
        data["messages"] = version.messages
    else:
        data["template"] = version.template
    if version.params:
        data["params"] = version.params
    if version.tools:
        data["tools"] = version.tools
    return yaml.dump(
        data, Dumper=_LiteralDumper, sort_keys=False, allow_unicode=True, default_flow_style=False
    )
