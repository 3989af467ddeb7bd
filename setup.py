"""Packages for setuptools; everything else is in pyproject.toml.

A built package (a wheel, `pip install .`, pipx) carries the repository's `configs/` and
`checkpoints/` as the sub-packages `fer_tui.shipped_configs` and `fer_tui.shipped_checkpoints`,
so that `fer-tui train` finds its recipes and `fer-tui live` its model from any folder, while
the two folders stay where users and docs expect them (fer_tui/paths.py looks in both places).
pyproject.toml cannot list found packages and mapped ones together, hence this file.
"""

from setuptools import find_packages, setup

SHIPPED = {"fer_tui.shipped_configs": "configs", "fer_tui.shipped_checkpoints": "checkpoints"}

setup(
    packages=[*find_packages(include=["fer_tui", "fer_tui.*"]), *SHIPPED],
    package_dir=SHIPPED,
    package_data={
        "fer_tui": ["tui/*.tcss", "reference/*.json", "live/models/*"],
        "fer_tui.shipped_configs": ["*.toml"],
        "fer_tui.shipped_checkpoints": ["*.pt"],
    },
)
