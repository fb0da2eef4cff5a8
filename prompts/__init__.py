"""Built-in prompt templates, one TOML file each."""
