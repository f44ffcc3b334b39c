"""Policy packs, their schema and the release gate."""
