"""Screens of the writing app: help, rewrite preview, template forms, pickers."""
