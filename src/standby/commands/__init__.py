"""CLI sub-commands, one module per part."""
