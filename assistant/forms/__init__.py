"""Poetic forms: the checker (syllables, rhymes, line counts) and the rules it checks.

    from assistant.forms import check_form
    report = check_form("An old silent pond\\nA frog jumps into the pond\\nSplash! Silence again.", "haiku")
    report.ok, [line.syllables for line in report.lines]   # True, [5, 7, 5]

Syllables and rhymes come from the CMU pronouncing dictionary (offline, loaded on
first use). Form-aware generation, which uses these rules to steer a backend, lives in
:mod:`assistant.forms.steer`.
"""

from assistant.forms.check import FormReport, LineReport, check_form, detect_form, poem_lines
from assistant.forms.sounds import count_syllables, line_syllables, rhymes, syllable_range
from assistant.forms.specs import FORMS, FormSpec, find_form, get_form

__all__ = [
    "FORMS",
    "FormReport",
    "FormSpec",
    "LineReport",
    "check_form",
    "count_syllables",
    "detect_form",
    "find_form",
    "get_form",
    "line_syllables",
    "poem_lines",
    "rhymes",
    "syllable_range",
]
