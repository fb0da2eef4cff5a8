"""The code actions quillmate offers on a selection or at the cursor, as plain data.

Each action is a title and a command with its arguments; the server wraps them in LSP
types. Executing the command runs the model and applies the result as one edit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from assistant.lsp.engine import DEDICATED_TEMPLATES, PRESET_REWRITES, template_output
from assistant.templates import Template

CONTINUE = "quillmate.continue"
REWRITE = "quillmate.rewrite"
RUN_TEMPLATE = "quillmate.runTemplate"
SWITCH_BACKEND = "quillmate.switchBackend"
ACCEPT = "quillmate.accept"
COMMANDS = (CONTINUE, REWRITE, RUN_TEMPLATE, SWITCH_BACKEND, ACCEPT)

KIND_CONTINUE = "quickfix.quillmate.continue"  # offered at a bare cursor, so it shows in every client's menu
KIND_REWRITE = "refactor.rewrite.quillmate"
KIND_TEMPLATE = "refactor.quillmate.template"


@dataclass(frozen=True)
class Action:
    """A code action: what the menu shows and the command it runs."""

    title: str
    kind: str
    command: str
    arguments: list[Any]


def actions_for(uri: str, selection: dict[str, Any], has_selection: bool, templates: list[Template]) -> list[Action]:
    """The actions for a cursor (continue) or a selection (rewrites and templates that take it).

    Args:
        uri: The document.
        selection: The LSP range (plain dict) of the selection or cursor.
        has_selection: True when the range is not empty.
        templates: The templates the writer can run.
    """
    end = selection["end"]
    actions = [Action("quillmate: continue here", KIND_CONTINUE, CONTINUE, [uri, end])]
    if not has_selection:
        return actions
    for preset, words in PRESET_REWRITES.items():
        actions.append(Action(f"quillmate: rewrite {words}", KIND_REWRITE, REWRITE, [uri, selection, preset]))
    for template in templates:
        if template.name in DEDICATED_TEMPLATES or not template.input_variable:
            continue
        if any(spec.required and name != template.input_variable for name, spec in template.variables.items()):
            continue  # needs values the menu cannot ask for; plugins use quillmate/runTemplate
        verb = "replace with" if template_output(template) == "edit" else "add"
        actions.append(
            Action(
                f"quillmate: {verb} {template.name} ({template.description.rstrip('.')})",
                KIND_TEMPLATE,
                RUN_TEMPLATE,
                [{"template": template.name, "variables": {}, "uri": uri, "range": selection}],
            )
        )
    return actions
