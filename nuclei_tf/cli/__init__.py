"""Command-line interface (`nuclei-tf`)."""
