"""Tuning a model on the writer's own texts: reading their files, shaping and splitting the text,
the saved models and their profiles, and the OpenAI fine-tuning path.

Nothing here imports torch, transformers, peft or openai at import time; the training itself
lives in ``backends.tuning`` and ``backends.openai_tuning``.
"""
