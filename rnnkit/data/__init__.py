"""Data: vocabularies, readers and batch layouts."""
