"""The commented starter file that `quillmate templates new NAME` writes."""

from __future__ import annotations

from assistant.errors import TemplateError
from assistant.templates.common import NAME_PATTERN, NAME_RULE

_STARTER = '''\
# A quillmate prompt template. Check it with `quillmate templates validate FILE`
# and run it with `quillmate run NAME --var subject="..."` (or pipe the subject in).
#
# In the prompts below, {subject} is replaced by the value of the variable
# `subject`. To write a literal brace, double it: {{ or }}.
# A line whose variables are all empty is left out, so "Tone: {tone}"
# disappears when no tone is given.

name = "NAME"                # must match the file name: NAME.toml
description = "One line saying what this template writes."
input = "subject"            # the variable that takes piped text or the editor's selection
output = "list"              # "cursor" (continue the text), "selection" (replace it) or "list"
format = "f-string"          # or "mustache", written {{subject}}

# One table per variable. kind is "text" (the default), "choice" or "integer".
[variables.subject]
description = "What to write about"
required = true
multiline = true

[variables.tone]
description = "How it should sound, e.g. wry, tender, urgent"
default = ""                 # optional: empty unless given

[variables.form]
kind = "choice"
options = ["paragraph", "list of lines", "dialogue"]
default = "paragraph"

[variables.words]
kind = "integer"
default = 100
min = 10
max = 1000

# Default generation settings; options such as --temperature still override them.
[params]
temperature = 0.8
max_new_tokens = 200

# For chat models (OpenAI and other instruction models).
[chat]
system = "You are a thoughtful writing partner. Reply with only the text asked for."
user = """Write a {form} of about {words} words about {subject}.
Tone: {tone}"""

# For base models such as the bundled GPT-2: write the start of a document
# and let the model carry on. Delete this section if you only use chat models.
[completion]
prompt = """Story: {subject}

"""
'''


def starter_template(name: str) -> str:
    """The text of a commented starter file for a new template called ``name``."""
    if not NAME_PATTERN.fullmatch(name):
        raise TemplateError(f"'{name}' cannot be a template name.", NAME_RULE)
    return _STARTER.replace("NAME", name)
