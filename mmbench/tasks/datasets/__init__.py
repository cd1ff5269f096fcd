"""Dataset-specific row loaders (easy-VQA, VQA-Rephrasings): where a dataset's rows come from and
how they are shaped, not how a task family scores them.  Task files name them with ``loader:``."""
