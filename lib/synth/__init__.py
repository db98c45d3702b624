"""The synthetic data generator (tests, the bundled sample, demos); nothing in the product imports it.

`generate(n, seed)` makes a dataset with planted effects (lib/synth/generator.py); `write` saves it.
"""
from lib.synth.generator import (
    DEFAULT_START,
    MAX_LIST_ITEMS,
    NULL_SHARE,
    PST_COURSE,
    Synthetic,
    generate,
    is_written,
    main,
    write,
)

__all__ = ["DEFAULT_START", "MAX_LIST_ITEMS", "NULL_SHARE", "PST_COURSE", "Synthetic", "generate", "is_written", "main",
           "write"]
