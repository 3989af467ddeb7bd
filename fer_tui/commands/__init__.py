"""CLI subcommands: each module has `add_arguments(parser)` and `run(args) -> int`.

Modules here import nothing heavy at top level; `run()` imports the core it needs.
"""
