"""Model adapters: turn requests into outputs.  Never imports from mmbench.tasks."""
