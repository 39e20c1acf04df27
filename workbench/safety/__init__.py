"""What keeps a public Space safe below the UI: names that reach the file system (`names`) and secrets kept
out of what is written or shown (`redact`). Torch-free and light; everything above may use it."""
