"""Data: the release format, its loading and validation, registration and safe picture opening."""
