"""Prompt templates: small TOML files a writer can read and edit.

A template names its variables, says where its results go, carries default
generation settings, and holds a prompt in up to two forms: ``[chat]`` for
instruction models (OpenAI) and ``[completion]`` for base models such as the
bundled GPT-2. Built-ins live in the ``prompts`` package; a file of the same
name in the writer's templates folder overrides one.

Templates can never run code: at load time every ``{field}`` (f-string) or
``{{tag}}`` (mustache) must be a plain name of a declared variable, and
variable values are inserted verbatim, never interpreted or HTML-escaped.

Importing this package is cheap: langchain-core is imported only to render.

The modules, each with one job (each imports only those above it):

- ``common``: the literal kinds, the name rule, "did you mean".
- ``derivations``: the closed set of ways a variable is worked out from another (``derive``).
- ``schema``: the shape of a file, and how a shape error reads.
- ``scanners``: the ``{field}`` / ``{{tag}}`` slots of a prompt, and unsafe ones.
- ``finish``: what an output must end with, by option (``[variables.NAME.finish]``).
- ``validation``: the checks every template passes (``check_params`` judges ``[params]``).
- ``values``: checking the writer's values and filling in defaults.
- ``render``: filling a prompt in (through langchain-core) and :class:`RenderedPrompt`.
- ``model``: :class:`Template`.
- ``toml_lines``: reading TOML and finding the line of each key.
- ``files``: loading one file, problems as "FILE:LINE: ...".
- ``library``: built-ins plus the writer's own folder.
- ``starter``: the starter file for ``quillmate templates new``.
"""

from __future__ import annotations

from assistant.templates.common import NAME_PATTERN, Form, Origin, Output, TemplateFormat
from assistant.templates.files import TemplateFileError, check_template_file, load_template_file
from assistant.templates.library import TemplateLibrary, builtin_templates_dir
from assistant.templates.model import Template
from assistant.templates.render import RenderedPrompt
from assistant.templates.schema import ChatForm, VariableSpec
from assistant.templates.starter import starter_template

__all__ = [
    "NAME_PATTERN",
    "ChatForm",
    "Form",
    "Origin",
    "Output",
    "RenderedPrompt",
    "Template",
    "TemplateFileError",
    "TemplateFormat",
    "TemplateLibrary",
    "VariableSpec",
    "builtin_templates_dir",
    "check_template_file",
    "load_template_file",
    "starter_template",
]
