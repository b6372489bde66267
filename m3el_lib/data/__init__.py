"""The data layer: datasets in the release format and their exports."""
