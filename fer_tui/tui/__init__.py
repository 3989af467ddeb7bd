"""The Textual UI. Only this package imports textual; it reaches torch only in workers."""
