"""One module per command: its own small request value and a `run_*` function.

Each takes the run context (builder/context.py) and its request, and returns values the
renderers turn into text; the CLI (builder/cli.py) only translates flags and exit codes.
The building commands share builder/pipeline.py: prepare a plan, execute it.
"""
