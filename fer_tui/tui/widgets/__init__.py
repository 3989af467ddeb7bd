"""Widgets of the fer-tui screens."""
