"""Prompt templates: loading, checking, safety, rendering, the library."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from assistant.errors import TemplateError, UsageError
from assistant.templates import (
    ChatForm,
    RenderedPrompt,
    Template,
    TemplateFileError,
    TemplateLibrary,
    VariableSpec,
    builtin_templates_dir,
    check_template_file,
    load_template_file,
    starter_template,
)
from backends.base import GenerationParams, GenerationRequest, TextPart, fit_parts, join_parts

BUILTINS = ["continue", "image-prompt", "poem", "rewrite", "slogan"]
MINIMAL = {
    "poem": {"topic": "the sea at night"},
    "continue": {"text": "It was late when the bell rang."},
    "slogan": {"product": "a bicycle repair shop"},
    "image-prompt": {"scene": "a lighthouse in fog"},
    "rewrite": {"passage": "She walked to the door.", "instruction": "more vivid"},
}


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUILLMATE_HOME", str(tmp_path / "home"))


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def simple(tmp_path: Path, user: str, *, fmt: str = "f-string", variables: str = "", name: str = "t") -> Template:
    """A one-variable-or-more template whose chat user message is ``user``."""
    body = f'name = "{name}"\nformat = "{fmt}"\n'
    body += variables or '[variables.x]\ndefault = ""\n'
    body += f"[chat]\nuser = '''{user}'''\n"
    return load_template_file(write(tmp_path, f"{name}.toml", body))


def library(tmp_path: Path) -> TemplateLibrary:
    return TemplateLibrary(user_dir=tmp_path / "user", builtin_dir=builtin_templates_dir())


# --------------------------------------------------------------------------------------
# Import cost
# --------------------------------------------------------------------------------------


def test_import_is_light() -> None:
    code = (
        "import sys, assistant.templates\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('langchain_core', 'torch', 'transformers', 'openai')]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


# --------------------------------------------------------------------------------------
# Built-ins
# --------------------------------------------------------------------------------------


def test_builtins_are_all_there(tmp_path: Path) -> None:
    lib = library(tmp_path)
    found = lib.list()
    assert [t.name for t in found] == BUILTINS
    assert lib.errors == []
    assert all(t.origin == "builtin" and not t.overrides_builtin for t in found)
    assert all(t.forms == ("chat", "completion") for t in found)
    assert all(check_template_file(t.path) == [] for t in found if t.path)


@pytest.mark.parametrize("name", BUILTINS)
@pytest.mark.parametrize("form", ["chat", "completion"])
def test_every_builtin_renders_both_forms(tmp_path: Path, name: str, form: str) -> None:
    template = library(tmp_path).get(name)
    values = MINIMAL[name]
    rendered = template.render(values, form)
    assert rendered.template == name and rendered.form == form
    text = rendered.text
    assert values[template.input_variable] in text
    assert "{" + template.input_variable + "}" not in text
    request = rendered.request()
    assert isinstance(request, GenerationRequest)
    assert request.is_chat == (form == "chat")
    if form == "chat":
        assert rendered.prompt is None
        assert [m.role for m in rendered.messages] == ["system", "user"]
    else:
        assert rendered.messages is None
        assert join_parts(rendered.prompt) == text
    # The template's settings become the request's defaults.
    assert request.params.max_new_tokens == template.params["max_new_tokens"]
    assert request.params.stop == tuple(template.params.get("stop", ()))


@pytest.mark.parametrize(
    ("name", "output", "input_variable"),
    [
        ("poem", "list", "topic"),
        ("continue", "cursor", "text"),
        ("slogan", "list", "product"),
        ("image-prompt", "list", "scene"),
        ("rewrite", "selection", "passage"),
    ],
)
def test_builtin_outputs_and_inputs(tmp_path: Path, name: str, output: str, input_variable: str) -> None:
    template = library(tmp_path).get(name)
    assert template.output == output
    assert template.input_variable == input_variable
    assert template.variables[input_variable].required


def test_poem_completion_has_the_training_shape(tmp_path: Path) -> None:
    poem = library(tmp_path).get("poem")
    plain = poem.render({"topic": "the sea at night"}, "completion")
    assert plain.text == "Poem: the sea at night\nForm: free verse\nKeywords: sea, night\n\n"
    titled = poem.render({"topic": "the sea", "title": "Night Tide", "form": "Sonnet"}, "completion")
    assert titled.text == "Poem: Night Tide\nForm: sonnet\nKeywords: sea\n\n"
    assert poem.variables["form"].options[-2:] == ["couplets", "blank verse"]
    moody = poem.render({"topic": "the sea", "mood": "eerie", "style": "like a sea shanty"}, "completion")
    assert moody.text == "Poem: the sea\nForm: free verse\nKeywords: sea\nMood: eerie\nStyle: like a sea shanty\n\n"


def test_poem_completion_keywords_come_from_the_topic(tmp_path: Path) -> None:
    poem = library(tmp_path).get("poem")
    haiku = poem.render({"topic": "my grandmother's kitchen", "form": "haiku"}, "completion")
    assert haiku.text == "Poem: my grandmother's kitchen\nForm: haiku\nKeywords: grandmother, kitchen\n\n"
    many = poem.render({"topic": "the clocks and the clock of rain on a tin roof at night"}, "completion")
    assert "\nKeywords: clocks, rain, tin, roof\n" in many.text  # one per stem, at most four
    given = poem.render({"topic": "the sea", "keywords": "salt, gulls"}, "completion")
    assert "\nKeywords: salt, gulls\n" in given.text  # the writer's own words win
    none = poem.render({"topic": "it", "form": "haiku"}, "completion")
    assert none.text == "Poem: it\nForm: haiku\n\n"  # nothing to derive: the line is left out
    assert "Keywords" not in poem.render({"topic": "my grandmother's kitchen"}, "chat").text


def test_image_prompt_completion_is_few_shot_and_ends_on_the_prompt(tmp_path: Path) -> None:
    template = library(tmp_path).get("image-prompt")
    rendered = template.render({"scene": "a lighthouse in fog", "style": "ukiyo-e"}, "completion")
    assert rendered.text.count("\nPrompt: ") == 2  # two worked examples
    assert rendered.text.endswith("Scene: a lighthouse in fog\nStyle: ukiyo-e\nPrompt:")
    assert "\nScene:" in rendered.params["stop"]
    assert rendered.params["max_lines"] == 2  # Stable Diffusion: the prompt and its negative prompt
    assert template.render({"scene": "x", "target": "midjourney"}, "chat").params["max_lines"] == 1
    assert "max_lines" not in template.render({"scene": "x", "target": "dall-e"}, "chat").params


def test_poem_chat_leaves_out_empty_optional_lines(tmp_path: Path) -> None:
    poem = library(tmp_path).get("poem")
    plain = poem.render({"topic": "rain"}, "chat").messages[-1].text
    assert "Mood:" not in plain and "Style:" not in plain
    full = poem.render({"topic": "rain", "mood": "wistful", "style": "in the manner of Dickinson"}, "chat")
    user = full.messages[-1].text
    assert "Mood: wistful" in user and "Style: in the manner of Dickinson" in user
    assert "only the poem" in full.messages[0].text


def test_continue_completion_ends_with_elastic_text(tmp_path: Path) -> None:
    template = library(tmp_path).get("continue")
    assert template.variables["text"].elastic and template.variables["text"].multiline
    assert not template.variables["notes"].elastic
    story = "The fog came in at noon.\n\nBy three, the harbour was gone and"
    parts = template.render({"text": story}, "completion").prompt
    assert parts == (TextPart("Story: Untitled\n\n"), TextPart(story, elastic=True))
    with_notes = template.render({"text": story, "notes": "Mara: the harbourmaster.", "title": "Fog"}, "completion")
    assert with_notes.prompt == (
        TextPart("Story: Fog\n\nMara: the harbourmaster.\n\n"),
        TextPart(story, elastic=True),
    )
    assert "\nStory:" in template.params["stop"]


def test_continue_chat_keeps_notes_fixed_and_text_elastic(tmp_path: Path) -> None:
    template = library(tmp_path).get("continue")
    values = {"text": "Once", "notes": "Keep it eerie.", "length": "200", "pov": "First Person"}
    rendered = template.render(values, "chat")
    user = rendered.messages[-1]
    assert user.content[-1] == TextPart("Once", elastic=True)
    fixed = "".join(p.text for p in user.content if not p.elastic)
    assert "Notes: Keep it eerie." in fixed and "about 200 words" in fixed and "Point of view: first person" in fixed


def test_slogan_completion_uses_sayings_shape(tmp_path: Path) -> None:
    template = library(tmp_path).get("slogan")
    text = template.render({"product": "oat milk"}, "completion").text
    assert text.startswith("Sayings:\n- ")
    assert text.endswith("<|endoftext|>Sayings about oat milk:\n")
    chat = template.render({"product": "oat milk", "count": 3, "max_words": "6"}, "chat").messages[-1].text
    assert "Write 3 different slogans for oat milk." in chat and "6 words or fewer" in chat


def test_image_prompt_chat_explains_each_target(tmp_path: Path) -> None:
    template = library(tmp_path).get("image-prompt")
    rendered = template.render({"scene": "a fox in snow", "target": "Midjourney", "aspect": "16:9"}, "chat")
    user = rendered.messages[-1].text
    assert "Image generator: midjourney" in user and "Aspect ratio: 16:9" in user
    assert "Negative prompt:" in user and "--ar 16:9 --v 6" in user and "dall-e" in user
    with pytest.raises(TemplateError, match="'target' must be one of"):
        template.render({"scene": "x", "target": "photoshop"}, "chat")


def test_rewrite_passage_is_not_elastic(tmp_path: Path) -> None:
    template = library(tmp_path).get("rewrite")
    assert not any(spec.elastic for spec in template.variables.values())
    rendered = template.render(MINIMAL["rewrite"], "chat")
    assert all(not p.elastic for m in rendered.messages for p in m.content)
    with pytest.raises(TemplateError, match="needs a value for 'instruction'"):
        template.render({"passage": "x"}, "chat")


# --------------------------------------------------------------------------------------
# Variables
# --------------------------------------------------------------------------------------

VARIABLES = """
[variables.topic]
description = "What it is about"
required = true
[variables.form]
kind = "choice"
options = ["haiku", "free verse"]
default = "haiku"
[variables.lines]
kind = "integer"
default = 4
min = 1
max = 40
[variables.mood]
default = ""
[variables.title]
default = ""
fallback = "topic"
[variables.level]
kind = "choice"
options = ["low", "high"]
"""
USER = "{topic}|{form}|{lines}|{mood}|{title}|{level}"


@pytest.fixture
def vtemplate(tmp_path: Path) -> Template:
    return simple(tmp_path, USER, variables=VARIABLES, name="v")


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"topic": "rain"}, "rain|haiku|4||rain|"),
        ({"topic": "rain", "form": "Free Verse"}, "rain|free verse|4||rain|"),
        ({"topic": "rain", "lines": "12"}, "rain|haiku|12||rain|"),
        ({"topic": "rain", "lines": 40}, "rain|haiku|40||rain|"),
        ({"topic": "rain", "lines": " 7 "}, "rain|haiku|7||rain|"),
        ({"topic": "rain", "mood": "grey", "title": "Drizzle"}, "rain|haiku|4|grey|Drizzle|"),
        ({"topic": "rain", "mood": None, "level": "HIGH"}, "rain|haiku|4||rain|high"),
        ({"topic": "  rain  "}, "  rain  |haiku|4||  rain  |"),
    ],
)
def test_resolve_applies_defaults_and_normalises(vtemplate: Template, values: dict, expected: str) -> None:
    resolved = vtemplate.resolve(values)
    assert "|".join(resolved[k] for k in vtemplate.variables) == expected
    assert vtemplate.render(values, "chat").messages[0].text == expected


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "Template 'v' needs a value for 'topic' (--var topic=...)."),
        ({"topic": "   "}, "Template 'v' needs a value for 'topic' (--var topic=...)."),
        ({"topic": None}, "Template 'v' needs a value for 'topic' (--var topic=...)."),
        ({"topic": "x", "form": "sonnet"}, "Template 'v': 'form' must be one of 'haiku', 'free verse' (got 'sonnet')."),
        ({"topic": "x", "form": "hiaku"}, "Did you mean 'haiku'?"),
        ({"topic": "x", "lines": "five"}, "Template 'v': 'lines' must be a whole number (got 'five')."),
        ({"topic": "x", "lines": 2.5}, "'lines' must be a whole number (got 2.5)"),
        ({"topic": "x", "lines": True}, "'lines' must be a whole number (got True)"),
        ({"topic": "x", "lines": 0}, "Template 'v': 'lines' must be at least 1 (got 0)."),
        ({"topic": "x", "lines": "41"}, "Template 'v': 'lines' must be at most 40 (got 41)."),
        ({"topic": "x", "topc": "y"}, "Template 'v' has no variable 'topc'. Did you mean 'topic'?"),
        ({"topic": "x", "colour": "y"}, "Its variables are: topic, form, lines, mood, title, level."),
    ],
)
def test_resolve_rejects_bad_values(vtemplate: Template, values: dict, message: str) -> None:
    with pytest.raises(TemplateError) as caught:
        vtemplate.resolve(values)
    assert message in str(caught.value)
    assert isinstance(caught.value, UsageError)


def test_missing_input_variable_hints_at_stdin(tmp_path: Path) -> None:
    poem = library(tmp_path).get("poem")
    with pytest.raises(TemplateError) as caught:
        poem.render({}, "chat")
    assert caught.value.message == "Template 'poem' needs a value for 'topic' (--var topic=...)."
    assert "standard input" in caught.value.hint


def test_required_variables_property(vtemplate: Template) -> None:
    assert vtemplate.required_variables == ("topic",)
    assert list(vtemplate.variables) == ["topic", "form", "lines", "mood", "title", "level"]
    assert vtemplate.variables["lines"] == VariableSpec(name="lines", kind="integer", default=4, min=1, max=40)


# --------------------------------------------------------------------------------------
# Empty lines
# --------------------------------------------------------------------------------------

LINES_VARS = '[variables.a]\ndefault = ""\n[variables.b]\ndefault = ""\n[variables.c]\ndefault = ""\n'


@pytest.mark.parametrize(
    ("user", "values", "expected"),
    [
        ("Start\nMood: {a}\nEnd", {}, "Start\nEnd"),
        ("Start\nMood: {a}\nEnd", {"a": "calm"}, "Start\nMood: calm\nEnd"),
        ("Start\n{a} and {b}\nEnd", {"b": "x"}, "Start\n and x\nEnd"),
        ("Start\n\n{a}\n\nEnd", {}, "Start\n\nEnd"),
        ("Start\n\n{a}\n{b}\n\nEnd", {}, "Start\n\nEnd"),
        ("{a}\n\nEnd", {}, "End"),
        ("Start\nA: {a}\n\nEnd", {}, "Start\n\nEnd"),
        ("Literal {{braces}} stay: {c}\nok", {}, "ok"),
        ("Start\nMood: {a}", {}, "Start"),
        ("Start\n\n{a}", {}, "Start"),
        ("Start\n{a}\n", {}, "Start\n"),
        ("Start\n{a}\nEnd\n\n", {}, "Start\nEnd\n\n"),
        ("{a}", {}, ""),
        ("Literal {{braces}}\n{c}", {"c": "v"}, "Literal {braces}\nv"),
    ],
)
def test_lines_whose_variables_are_all_empty_are_left_out(
    tmp_path: Path, user: str, values: dict, expected: str
) -> None:
    template = simple(tmp_path, user, variables=LINES_VARS)
    assert template.render(values, "chat").messages[0].text == expected


def test_empty_lines_rule_in_mustache(tmp_path: Path) -> None:
    template = simple(tmp_path, "Start\nMood: {{a}}\n{{! a comment }}End", fmt="mustache", variables=LINES_VARS)
    assert template.render({}, "chat").messages[0].text == "Start\nEnd"
    assert template.render({"a": "calm"}, "chat").messages[0].text == "Start\nMood: calm\nEnd"


# --------------------------------------------------------------------------------------
# Safety: unsafe fields are refused at load time, with file and line
# --------------------------------------------------------------------------------------

FSTRING_PAYLOADS = [
    ("{x.__class__}", "reaches into a value"),
    ("{x.__class__.__mro__}", "reaches into a value"),
    ("{x[0]}", "reaches into a value"),
    ("{x['key']}", "reaches into a value"),
    ("{x!r}", "conversion"),
    ("{x!s}", "conversion"),
    ("{x:>10}", "format spec"),
    ("{x:{x.__class__}}", "field inside a field"),
    ("{0}", "is a number"),
    ("{}", "is empty"),
    ("{ x }", "spaces"),
    ("{% if x %}", "jinja2"),
    ("{x", "never closed"),
    ("x }", "a lone '}'"),
    ("{y}", "'{y}' is not a declared variable"),
]


@pytest.mark.parametrize(("payload", "message"), FSTRING_PAYLOADS)
def test_fstring_payloads_are_rejected_with_file_and_line(tmp_path: Path, payload: str, message: str) -> None:
    text = f'name = "evil"\n[variables.x]\ndefault = ""\n[chat]\nuser = """Hello,\nthen {{x}} and {payload}\n"""\n'
    path = write(tmp_path, "evil.toml", text)
    with pytest.raises(TemplateFileError) as caught:
        load_template_file(path)
    assert caught.value.message.startswith(f"{path}:6: ")
    assert message in caught.value.message


MUSTACHE_PAYLOADS = [
    ("{{ ''.__class__.__mro__ }}", "reaches into a value"),
    ("{{x.__class__}}", "reaches into a value"),
    ("{{x.y}}", "reaches into a value"),
    ("{{{x.y}}}", "reaches into a value"),
    ("{{&x.y}}", "reaches into a value"),
    ("{{.}}", "reaches into a value"),
    ("{{#x}}a{{/x}}", "section"),
    ("{{^x}}a{{/x}}", "section"),
    ("{{>x}}", "partial"),
    ("{{=<% %>=}}", "delimiters"),
    ("{{x", "never closed"),
    ("{{}}", "is empty"),
    ("{{y}}", "'{{y}}' is not a declared variable"),
    ("{{ & x }}", "not a variable name"),
    ("{{ &x }}", "not a variable name"),
    ("{{ !x.__class__ }}", "reaches into a value"),
]


@pytest.mark.parametrize(("payload", "message"), MUSTACHE_PAYLOADS)
def test_mustache_payloads_are_rejected_with_file_and_line(tmp_path: Path, payload: str, message: str) -> None:
    text = (
        'name = "evil"\nformat = "mustache"\n[variables.x]\ndefault = ""\n'
        f"[completion]\nprompt = '''\nfirst {{{{x}}}}\nsecond {payload}\n'''\n"
    )
    path = write(tmp_path, "evil.toml", text)
    with pytest.raises(TemplateFileError) as caught:
        load_template_file(path)
    assert caught.value.message.startswith(f"{path}:8: ")
    assert message in caught.value.message


def test_payload_in_single_line_system_string_names_its_line(tmp_path: Path) -> None:
    text = 'name = "evil"\n[variables.x]\n\n[chat]\nuser = "ok {x}"\nsystem = "You are {x.__init__.__globals__}"\n'
    path = write(tmp_path, "evil.toml", text)
    problems = check_template_file(path)
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}:6: in chat.system:")


def test_allowed_mustache_tags_render(tmp_path: Path) -> None:
    template = simple(tmp_path, "{{x}} {{{x}}} {{& x}} {{ x }}{{! note }} { } {% raw %}", fmt="mustache")
    assert template.render({"x": "a<b"}, "chat").messages[0].text == "a<b a<b a<b a<b { } {% raw %}"


def test_jinja2_format_is_not_offered(tmp_path: Path) -> None:
    path = write(tmp_path, "j.toml", 'name = "j"\nformat = "jinja2"\n[chat]\nuser = "{{ x }}"\n')
    with pytest.raises(TemplateFileError) as caught:
        load_template_file(path)
    assert caught.value.message.startswith(f"{path}:2: ")
    assert "jinja2" in caught.value.message and "not offered" in caught.value.message


def test_direct_construction_runs_the_same_checks() -> None:
    with pytest.raises(ValidationError, match="reaches into a value"):
        Template(name="t", variables={"x": VariableSpec()}, chat=ChatForm(user="{x.__class__}"))
    with pytest.raises(ValidationError, match="not a declared variable"):
        Template(name="t", completion="{nope}")
    made = Template(name="t", variables={"x": {"default": "d"}}, completion="[{x}]")
    assert made.variables["x"].name == "x"
    assert made.render({}, "completion").text == "[d]"


# --------------------------------------------------------------------------------------
# Values are plain strings
# --------------------------------------------------------------------------------------

NASTY_VALUES = [
    "{",
    "}",
    "{{",
    "}}",
    "{x}",
    "{{x}}",
    "{{{x}}}",
    "{x.__class__}",
    "{x.__class__.__mro__[1].__subclasses__()}",
    "{% for a in b %}{{ a }}{% endfor %}",
    "{{#x}}section{{/x}}",
    "{{> partial}}",
    "<b>bold</b> & \"quotes\" 'single'",
    "\\n literal backslash-n and {0} and %s",
    "\ue000deadbeef0\ue001",
]


@pytest.mark.parametrize("fmt", ["f-string", "mustache"])
@pytest.mark.parametrize("value", NASTY_VALUES)
def test_values_come_out_verbatim(tmp_path: Path, fmt: str, value: str) -> None:
    user = "Before [{x}] after" if fmt == "f-string" else "Before [{{x}}] after"
    template = simple(tmp_path, user, fmt=fmt)
    assert template.render({"x": value}, "chat").messages[0].text == f"Before [{value}] after"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.text(min_size=1, max_size=40).filter(lambda v: v.strip()))
def test_any_value_comes_out_verbatim(tmp_path: Path, value: str) -> None:
    for fmt, user in (("f-string", "<{x}|{x}>"), ("mustache", "<{{x}}|{{{x}}}>")):
        template = simple(tmp_path, user, fmt=fmt, name=f"h{fmt[0]}")
        assert template.render({"x": value}, "chat").messages[0].text == f"<{value}|{value}>"


# --------------------------------------------------------------------------------------
# Elastic parts
# --------------------------------------------------------------------------------------

ELASTIC_VARS = """
[variables.notes]
default = ""
[variables.before]
elastic = true
required = true
[variables.after]
elastic = true
default = ""
"""


def test_elastic_variables_become_elastic_parts(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "e.toml",
        'name = "e"\n' + ELASTIC_VARS + '[completion]\nprompt = "Notes: {notes}\\n{before}<HOLE>{after}!"\n',
    )
    template = load_template_file(path)
    parts = template.render({"notes": "n {x}", "before": "B {y}", "after": "A"}, "completion").prompt
    assert parts == (
        TextPart("Notes: n {x}\n"),
        TextPart("B {y}", elastic=True),
        TextPart("<HOLE>"),
        TextPart("A", elastic=True),
        TextPart("!"),
    )
    empty_after = template.render({"before": "B"}, "completion").prompt
    assert empty_after == (TextPart("B", elastic=True), TextPart("<HOLE>!"))


def test_elastic_text_is_what_gets_cut(tmp_path: Path) -> None:
    template = library(tmp_path).get("continue")
    story = " ".join(f"word{i}" for i in range(300))
    request = template.render({"text": story, "notes": "KEEP THESE NOTES"}, "completion").request()
    fitted = fit_parts(request.prompt, 200, lambda s: len(s.split()), lambda s, n: " ".join(s.split()[-n:]))
    assert "KEEP THESE NOTES" in fitted.text and fitted.text.startswith("Story: Untitled")
    assert fitted.text.endswith("word299") and "word0 " not in fitted.text
    assert fitted.dropped_words > 0


def test_only_text_variables_can_be_elastic(tmp_path: Path) -> None:
    text = 'name = "e"\n[variables.n]\nkind = "integer"\nelastic = true\n[completion]\nprompt = "{n}"\n'
    path = write(tmp_path, "e.toml", text)
    assert check_template_file(path) == [f"{path}:4: only text variables can be elastic ([variables.n] is integer)"]


# --------------------------------------------------------------------------------------
# Malformed files: every error names the file and the line
# --------------------------------------------------------------------------------------

MALFORMED = [
    ("bad TOML", 'name = "t"\ndescription = "unclosed\n[chat]\nuser = "x"\n', 2, "not valid TOML"),
    ("bad table header", 'name = "t"\n[chat\nuser = "x"\n', 2, "not valid TOML"),
    ("unknown top key", 'name = "t"\ndescrption = "x"\n[chat]\nuser = "x"\n', 2, "unknown key 'descrption'"),
    (
        "unknown variable key",
        'name = "t"\n[variables.x]\nrequried = true\n[chat]\nuser = "{x}"\n',
        3,
        "Did you mean 'required'?",
    ),
    ("unknown chat key", 'name = "t"\n[chat]\nuser = "x"\nsytem = "y"\n', 4, "unknown key 'sytem' in [chat]"),
    ("missing user", 'name = "t"\n[chat]\nsystem = "y"\n', 2, "'user' is missing in [chat]"),
    ("bad output", 'name = "t"\noutput = "inline"\n[chat]\nuser = "x"\n', 2, "output must be 'cursor', 'selection'"),
    ("bad kind", 'name = "t"\n[variables.x]\nkind = "number"\n[chat]\nuser = "{x}"\n', 3, "kind in [variables.x]"),
    ("required not bool", 'name = "t"\n[variables.x]\nrequired = "yes"\n[chat]\nuser = "{x}"\n', 3, "true or false"),
    ("field not declared", 'name = "t"\n[variables.x]\n[chat]\nuser = """a\nb {y}\n"""\n', 5, "'{y}' is not"),
    ("bad param value", 'name = "t"\n[params]\ntop_p = 0.5\ntemperature = -2\n[chat]\nuser = "x"\n', 4, "temperature"),
    ("bad param type", 'name = "t"\n[params]\nmax_new_tokens = "lots"\n[chat]\nuser = "x"\n', 3, "max_new_tokens"),
    ("bad stop", 'name = "t"\n[params]\nstop = [""]\n[chat]\nuser = "x"\n', 3, "stop sequences"),
    ("unknown param", 'name = "t"\n[params]\ntemprature = 1\n[chat]\nuser = "x"\n', 3, "Did you mean 'temperature'?"),
    ("name mismatch", 'name = "other"\n[chat]\nuser = "x"\n', 1, "does not match the file name t.toml"),
    ("no prompt", 'name = "t"\ndescription = "nothing"\n', 1, "has no prompt"),
    ("input undeclared", 'name = "t"\ninput = "text"\n[chat]\nuser = "x"\n', 2, "input = 'text' is not a declared"),
    ("choice no options", 'name = "t"\n[variables.c]\nkind = "choice"\n[chat]\nuser = "{c}"\n', 3, "has no options"),
    (
        "bad choice default",
        'name = "t"\n[variables.c]\nkind = "choice"\noptions = ["a"]\ndefault = "b"\n[chat]\nuser = "{c}"\n',
        5,
        "is not one of its options",
    ),
    (
        "required and default",
        'name = "t"\n[variables.x]\nrequired = true\ndefault = "d"\n[chat]\nuser = "{x}"\n',
        4,
        "cannot also have a default",
    ),
    (
        "integer default quoted",
        'name = "t"\n[variables.n]\nkind = "integer"\ndefault = "5"\n[chat]\nuser = "{n}"\n',
        4,
        "whole number without quotes",
    ),
    (
        "min above max",
        'name = "t"\n[variables.n]\nkind = "integer"\nmin = 5\nmax = 1\n[chat]\nuser = "{n}"\n',
        4,
        "min (5) is larger than max (1)",
    ),
    (
        "options on text",
        'name = "t"\n[variables.x]\noptions = ["a"]\n[chat]\nuser = "{x}"\n',
        3,
        "options only apply to kind",
    ),
    ("bad fallback", 'name = "t"\n[variables.x]\nfallback = "y"\n[chat]\nuser = "{x}"\n', 3, "fallback = 'y'"),
    ("variable name key", 'name = "t"\n[variables.x]\nname = "x"\n[chat]\nuser = "{x}"\n', 3, "remove the name key"),
    ("empty user", 'name = "t"\n[chat]\nuser = "  "\n', 3, "chat.user is empty"),
    (
        "settings for a missing option",
        'name = "t"\n[variables.c]\nkind = "choice"\noptions = ["a"]\n[variables.c.params]\nb = { max_lines = 2 }\n'
        '[chat]\nuser = "{c}"\n',
        6,
        "'b' in [variables.c.params] is not one of the options",
    ),
    (
        "bad setting for an option",
        'name = "t"\n[variables.c]\nkind = "choice"\noptions = ["a"]\n[variables.c.params]\na = { max_lines = 0 }\n'
        '[chat]\nuser = "{c}"\n',
        6,
        "max_lines must be a whole number of at least 1",
    ),
    (
        "settings by option on text",
        'name = "t"\n[variables.x]\nparams = { a = { max_lines = 2 } }\n[chat]\nuser = "{x}"\n',
        3,
        "settings by option only apply to kind",
    ),
    ("completion as string", 'name = "t"\ncompletion = "x"\n', 2, "completion must be a section: a line [completion]"),
    (
        "unknown derivation",
        'name = "t"\n[variables.t]\n[variables.k]\nderive = "keyword"\nfrom = "t"\n[chat]\nuser = "{t} {k}"\n',
        4,
        "derive = 'keyword' in [variables.k] is not something quillmate can work out. Did you mean 'keywords'?",
    ),
    (
        "derivation as code",
        'name = "t"\n[variables.t]\n[variables.k]\nderive = "__import__(\'os\')"\nfrom = "t"\n[chat]\nuser = "{k}"\n',
        4,
        "is not something quillmate can work out",
    ),
    (
        "derive from nothing",
        'name = "t"\n[variables.k]\nderive = "keywords"\nfrom = "topic"\n[chat]\nuser = "{k}"\n',
        4,
        "from = 'topic' in [variables.k] must name another declared variable",
    ),
    (
        "derive without from",
        'name = "t"\n[variables.k]\nderive = "keywords"\n[chat]\nuser = "{k}"\n',
        3,
        'but not from which variable; add from = "NAME"',
    ),
    (
        "from without derive",
        'name = "t"\n[variables.t]\n[variables.k]\nfrom = "t"\n[chat]\nuser = "{k}"\n',
        4,
        "from = 't' in [variables.k] only goes with derive",
    ),
    (
        "derived and required",
        'name = "t"\n[variables.t]\n[variables.k]\nrequired = true\nderive = "keywords"\nfrom = "t"\n'
        '[chat]\nuser = "{k}"\n',
        4,
        "[variables.k] is derived, so it cannot be required",
    ),
    (
        "from as number",
        'name = "t"\n[variables.k]\nfrom = 3\n[chat]\nuser = "{k}"\n',
        3,
        "from in [variables.k] must be text",
    ),
    (
        "finish for a missing option",
        'name = "t"\n[variables.c]\nkind = "choice"\noptions = ["a"]\n[variables.c.finish]\nb = " --v 6"\n'
        '[chat]\nuser = "{c}"\n',
        6,
        "'b' in [variables.c.finish] is not one of the options of [variables.c]",
    ),
    (
        "finish of no shape",
        'name = "t"\n[variables.c]\nkind = "choice"\noptions = ["a"]\n[variables.c.finish]\na = "and more"\n'
        '[chat]\nuser = "{c}"\n',
        6,
        "in [variables.c.finish] for 'a': 'and more' is neither of the shapes a finish takes",
    ),
    (
        "finish reaching an attribute",
        'name = "t"\n[variables.c]\nkind = "choice"\noptions = ["a"]\n[variables.c.finish]\n'
        'a = " --ar {c.__class__}"\n[chat]\nuser = "{c}"\n',
        6,
        "in [variables.c.finish] for 'a': ",
    ),
    (
        "finish with an undeclared variable",
        'name = "t"\n[variables.c]\nkind = "choice"\noptions = ["a"]\n[variables.c.finish]\na = " --ar {aspect}"\n'
        '[chat]\nuser = "{c}"\n',
        6,
        "'{aspect}' is not a declared variable",
    ),
    (
        "finish on text",
        'name = "t"\n[variables.x]\nfinish = { a = "--v 6" }\n[chat]\nuser = "{x}"\n',
        3,
        'a finish by option only applies to kind = "choice"',
    ),
    (
        "finish not text",
        'name = "t"\n[variables.c]\nkind = "choice"\noptions = ["a"]\n[variables.c.finish]\na = 6\n'
        '[chat]\nuser = "{c}"\n',
        6,
        "a in [variables.c.finish] must be text in quotes",
    ),
]


@pytest.mark.parametrize(("label", "text", "line", "message"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_files_name_file_and_line(tmp_path: Path, label: str, text: str, line: int, message: str) -> None:
    path = write(tmp_path, "t.toml", text)
    with pytest.raises(TemplateFileError) as caught:
        load_template_file(path)
    error = caught.value
    assert error.message.startswith(f"{path}:{line}: "), error.message
    assert message in error.message
    assert "\n" not in error.message
    assert error.problems[0] == error.message
    assert isinstance(error, UsageError)


def test_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_bytes(b'name = "t"\n[chat]\nuser = "caf\xe9"\n')
    assert check_template_file(path) == [f"{path}:3: the file is not valid UTF-8 text; save it as UTF-8"]


def test_several_problems_are_all_reported_in_file_order(tmp_path: Path) -> None:
    text = 'name = "t"\ninput = "nope"\n[variables.x]\n[params]\ntemperature = -1\n[chat]\nuser = "{x.y} {z}"\n'
    path = write(tmp_path, "t.toml", text)
    problems = check_template_file(path)
    assert [p.split(":")[1] for p in problems] == ["2", "5", "7", "7"]
    with pytest.raises(TemplateFileError) as caught:
        load_template_file(path)
    assert "3 more problems" in caught.value.hint


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="No template file at"):
        load_template_file(tmp_path / "nope.toml")
    assert check_template_file(tmp_path / "nope.toml") == [f"No template file at {tmp_path / 'nope.toml'}."]


def test_name_is_optional_and_defaults_to_the_file_name(tmp_path: Path) -> None:
    path = write(tmp_path, "my-haiku.toml", '[chat]\nuser = "Write a haiku."\n')
    template = load_template_file(path)
    assert template.name == "my-haiku" and template.output == "list" and template.forms == ("chat",)
    assert template.path == path and template.origin == "file"


def test_inline_tables_and_dotted_keys_still_get_lines(tmp_path: Path) -> None:
    text = 'name = "t"\nvariables.x = { default = "", kidn = "text" }\nchat.user = "{x}"\n'
    path = write(tmp_path, "t.toml", text)
    assert check_template_file(path)[0].startswith(f"{path}:2: unknown key 'kidn'")


# --------------------------------------------------------------------------------------
# Forms and requests
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("has_chat", "has_completion", "backend_chat", "backend_completion", "expected"),
    [
        (True, True, True, True, "chat"),
        (True, True, True, False, "chat"),
        (True, True, False, True, "completion"),
        (True, False, True, True, "chat"),
        (False, True, True, True, "completion"),
        (False, True, False, True, "completion"),
        (True, False, False, True, "only a chat form"),
        (False, True, True, False, "only a completion form"),
        (True, True, False, False, "neither chat"),
    ],
)
def test_pick_form(
    has_chat: bool, has_completion: bool, backend_chat: bool, backend_completion: bool, expected: str
) -> None:
    template = Template(
        name="t",
        chat=ChatForm(user="hi") if has_chat else None,
        completion="hi" if has_completion else None,
    )
    if expected in ("chat", "completion"):
        assert template.pick_form(chat=backend_chat, completion=backend_completion) == expected
    else:
        with pytest.raises(TemplateError, match=expected):
            template.pick_form(chat=backend_chat, completion=backend_completion)


def test_render_refuses_a_missing_form() -> None:
    template = Template(name="t", chat=ChatForm(user="hi"))
    with pytest.raises(TemplateError, match="has no completion form"):
        template.render({}, "completion")


def test_request_uses_given_params_verbatim_or_the_templates(tmp_path: Path) -> None:
    rendered = library(tmp_path).get("poem").render({"topic": "moss"}, "completion")
    assert isinstance(rendered, RenderedPrompt)
    default = rendered.request()
    assert default.params.temperature == 0.9 and "\nPoem:" in default.params.stop
    mine = GenerationParams(temperature=0.1)
    assert rendered.request(mine).params is mine
    merged = rendered.merged_params(GenerationParams(seed=3), temperature=0.2, top_p=None)
    assert (merged.seed, merged.temperature, merged.top_p) == (3, 0.2, 0.95)


def test_a_chosen_option_brings_its_settings(tmp_path: Path) -> None:
    from assistant.config import Config
    from assistant.core import Assistant
    from tests.support.scripted_backend import ScriptedBackend

    poem = library(tmp_path).get("poem")
    assert poem.render({"topic": "moss", "form": "haiku"}, "completion").params["max_lines"] == 3
    assert "max_lines" not in poem.render({"topic": "moss"}, "completion").params
    assistant = Assistant(ScriptedBackend("local"), config=Config())
    assert assistant.prepare(poem, {"topic": "moss", "form": "sonnet"}).request.params.max_lines == 14
    assert assistant.prepare(poem, {"topic": "moss", "form": "ode"}).request.params.max_lines is None
    # The writer's own settings still win over the option's.
    mine = assistant.prepare(poem, {"topic": "moss", "form": "haiku"}, {"max_lines": 5})
    assert mine.request.params.max_lines == 5 and mine.request.params.max_new_tokens == 60


def test_system_message_is_optional(tmp_path: Path) -> None:
    template = simple(tmp_path, "Just {x}")
    rendered = template.render({"x": "this"}, "chat")
    assert [m.role for m in rendered.messages] == ["user"]
    assert rendered.text == "[user]\nJust this"


# --------------------------------------------------------------------------------------
# The library
# --------------------------------------------------------------------------------------


def test_user_file_overrides_builtin_and_listing_says_so(tmp_path: Path) -> None:
    lib = library(tmp_path)
    write(lib.user_dir, "poem.toml", 'name = "poem"\ndescription = "My poem"\n[chat]\nuser = "Mine."\n')
    write(lib.user_dir, "aaa.toml", 'description = "Mine too"\n[completion]\nprompt = "x"\n')
    found = {t.name: t for t in lib.list()}
    assert list(found) == ["aaa", *BUILTINS]
    assert found["poem"].origin == "user" and found["poem"].overrides_builtin
    assert found["poem"].description == "My poem"
    assert found["aaa"].origin == "user" and not found["aaa"].overrides_builtin
    assert found["slogan"].origin == "builtin"
    got = lib.get("poem")
    assert got.origin == "user" and got.overrides_builtin and got.path == lib.user_dir / "poem.toml"


def test_broken_user_file_does_not_break_listing(tmp_path: Path) -> None:
    lib = library(tmp_path)
    broken = write(lib.user_dir, "broken.toml", 'name = "broken"\n[chat]\nuser = "{x.__class__}"\n')
    write(lib.user_dir, "fine.toml", '[chat]\nuser = "ok"\n')
    write(lib.user_dir, "notes.txt", "not a template")
    names = [t.name for t in lib.list()]
    assert "fine" in names and "broken" not in names and "poem" in names
    assert len(lib.errors) == 1
    assert lib.errors[0].message.startswith(f"{broken}:3: ")
    with pytest.raises(TemplateError, match="reaches into a value"):
        lib.get("broken")


def test_broken_override_is_reported_not_silently_replaced(tmp_path: Path) -> None:
    lib = library(tmp_path)
    write(lib.user_dir, "poem.toml", 'name = "poem"\n[chat]\nuser = "{topic}"\n')
    assert "poem" not in [t.name for t in lib.list()]
    assert "'{topic}' is not a declared variable" in lib.errors[0].message
    with pytest.raises(TemplateError):
        lib.get("poem")


def test_lookup_order_file_then_user_then_builtin(tmp_path: Path) -> None:
    lib = library(tmp_path)
    assert lib.get("slogan").origin == "builtin"
    write(lib.user_dir, "slogan.toml", 'name = "slogan"\n[chat]\nuser = "user version"\n')
    assert lib.get("slogan").chat.user == "user version"
    elsewhere = write(tmp_path / "drafts", "slogan.toml", 'name = "slogan"\n[chat]\nuser = "file version"\n')
    from_file = lib.load_file(elsewhere)
    assert from_file.origin == "file" and from_file.chat.user == "file version"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("peom", "Unknown template 'peom'. Did you mean 'poem'? See `quillmate templates list`."),
        ("Poem", "Did you mean 'poem'?"),
        ("zzzzzz", "Unknown template 'zzzzzz'. See `quillmate templates list`."),
        ("../poem", "--template-file"),
        ("my.toml", "--template-file"),
    ],
)
def test_unknown_template(tmp_path: Path, name: str, message: str) -> None:
    with pytest.raises(TemplateError) as caught:
        library(tmp_path).get(name)
    assert message in str(caught.value)


def test_default_user_folder_follows_quillmate_home(tmp_path: Path) -> None:
    lib = TemplateLibrary()
    assert lib.user_dir == tmp_path / "home" / "config" / "templates"
    assert lib.builtin_dir == builtin_templates_dir()
    write(lib.user_dir, "home-made.toml", '[chat]\nuser = "hello"\n')
    assert lib.get("home-made").origin == "user"


# --------------------------------------------------------------------------------------
# The starter file
# --------------------------------------------------------------------------------------


def test_starter_template_is_valid_and_commented(tmp_path: Path) -> None:
    text = starter_template("my-idea")
    assert text.count("#") > 5 and 'name = "my-idea"' in text
    path = write(tmp_path, "my-idea.toml", text)
    template = load_template_file(path)
    assert template.forms == ("chat", "completion")
    assert template.render({"subject": "owls"}, "chat").messages[-1].text.startswith("Write a paragraph of about 100")
    assert template.render({"subject": "owls"}, "completion").text == "Story: owls\n\n"


@pytest.mark.parametrize("bad", ["", "my poem", "../x", "-x", "a/b"])
def test_starter_template_refuses_bad_names(bad: str) -> None:
    with pytest.raises(TemplateError):
        starter_template(bad)
