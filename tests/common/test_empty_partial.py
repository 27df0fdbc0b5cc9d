"""templates/common/empty.html: the empty-state partial is boxed only when asked.

Its parameter used to be named ``block``, which inside any ``{% block %}`` is Django's own
(truthy) BlockNode in the context, so every include without an explicit value rendered boxed.
"""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.template import Context, Template

INSIDE_BLOCK = '{% block content %}{% include "common/empty.html" with text="Nothing here."ARGS %}{% endblock %}'


def render(args: str) -> str:
    return Template(INSIDE_BLOCK.replace("ARGS", args)).render(Context({})).strip()


def test_default_inside_a_block_is_the_muted_paragraph():
    html = render("")
    assert html == '<p class="muted">Nothing here.</p>'
    assert 'class="empty"' not in html


def test_small_inside_a_block_is_the_small_muted_paragraph():
    assert render(" small=True") == '<p class="muted small">Nothing here.</p>'


def test_boxed_inside_a_block_is_the_empty_div():
    assert render(" boxed=True") == '<div class="empty">Nothing here.</div>'


def test_boxed_false_inside_a_block_is_the_muted_paragraph():
    assert render(" boxed=False") == '<p class="muted">Nothing here.</p>'


def test_text_is_escaped():
    html = Template('{% include "common/empty.html" with text=t boxed=True %}').render(
        Context({"t": "<b>x</b>"})
    )
    assert "<b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html


TEMPLATES_DIR = Path(settings.BASE_DIR) / "templates"
INCLUDE = re.compile(r'\{%\s*include\s+"common/empty\.html"([^%]*)%\}')


@pytest.mark.parametrize("path", sorted(TEMPLATES_DIR.rglob("*.html")), ids=str)
def test_no_template_passes_the_old_block_parameter(path):
    for args in INCLUDE.findall(path.read_text()):
        assert not re.search(r"\bblock\s*=", args), f"{path}: pass boxed=, not block="
