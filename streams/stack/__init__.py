"""typostream package."""
