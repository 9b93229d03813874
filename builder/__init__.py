"""builder: build only the container images a git change affects, in dependency order."""

__version__ = "0.1.0"
