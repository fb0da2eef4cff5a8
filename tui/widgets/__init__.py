"""Widgets of the writing app: the draft editor, the side panel, the status bar."""
