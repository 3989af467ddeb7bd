"""fer-tui: a terminal dashboard for facial-expression recognition on FER-2013.

This module imports nothing heavy: the first screen must not wait for torch.
"""

__version__ = "0.1.0"
