"""forgejo-runner-guard: keep a self-hosted Forgejo Actions runner healthy."""

__version__ = "0.1.0"
