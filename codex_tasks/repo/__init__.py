"""Pure repository logic behind the repository step kinds: patch parsing and applying, secret
scanning, audit scanning. Nothing here imports Prefect, the CLI or the TUI."""
