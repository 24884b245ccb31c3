"""One module per pipeline stage: each `run(ctx) -> metrics` reads earlier stages' files and writes its own."""
