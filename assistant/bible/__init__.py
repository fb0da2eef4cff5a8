"""The story bible: memory, author's note and keyed entries, and what a prompt was given.

* :mod:`~assistant.bible.model`: :class:`Bible`, :class:`Entry`, :class:`BibleSettings`, checked when built.
* :mod:`~assistant.bible.triggers`: which entries a text brings in (:func:`find_triggers`).
* :mod:`~assistant.bible.assembly`: fitting memory, entries, author's note and the draft's tail
  into the context (:func:`assemble`), recorded as a :class:`PromptReport`.
* :mod:`~assistant.bible.prompting`: the bible in a template (``Assistant.prepare(..., bible=)``).
* :mod:`~assistant.bible.files`: the bible file format, imports and exports.

A Bible tab needs only this package: ``session.bible`` to read, a changed copy
(``with_entry``, ``without``, ``toggled``, ``replaced``) assigned back to save,
:func:`find_triggers` to mark the entries the current text brings in, and the last
generation's ``event.prompt`` (``PromptReport.from_dict``) for a context panel.
"""

from assistant.bible.assembly import Assembly, DroppedPart, PromptPart, PromptReport, assemble
from assistant.bible.model import Bible, BibleError, BibleSettings, Entry
from assistant.bible.triggers import Trigger, find_triggers, text_tail

__all__ = [
    "Assembly",
    "Bible",
    "BibleError",
    "BibleSettings",
    "DroppedPart",
    "Entry",
    "PromptPart",
    "PromptReport",
    "Trigger",
    "assemble",
    "find_triggers",
    "text_tail",
]
