"""emoe-bench: the shared harness (data, metrics, trainer, results store, statistics, CLI).

Nothing in ``bench`` imports a specific model; models register themselves from ``emoe`` and
``baselines`` and are loaded lazily through :func:`bench.registry.load_builtin_methods`.
"""

__version__ = "0.1.0"
