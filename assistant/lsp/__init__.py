"""quillmate's language server (``quillmate lsp``): ghost text, rewrites and provenance in any editor.

``server`` holds the LSP features (thin); ``engine`` keeps the model loaded and builds the
prompts; ``streaming`` reports text as it is written; ``documents`` maps documents to
co-writing sessions; ``actions`` lists the code actions. Only ``server`` imports pygls.
The wire format is ``editors/PROTOCOL.md``.
"""
